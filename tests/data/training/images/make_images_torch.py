"""Writes TensorBoard image summaries with PyTorch's SummaryWriter (`add_image`, `add_images`),
and facts_torch.json with what TensorBoard's EventAccumulator reads back, decoded by Pillow.

    python make_images_torch.py      # torch 2.14, tensorboard 2.21, Pillow 13 wrote the files

Two tags over four steps: a 28 × 28 grayscale "digit" (CHW, one channel) and an RGB gradient
logged as a batch (`add_images` tiles a batch into one grid image).
"""

import glob
import io
import json
import os
import shutil

import numpy as np
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator
from torch.utils.tensorboard import SummaryWriter

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(HERE, "torch")
shutil.rmtree(RUN, ignore_errors=True)

writer = SummaryWriter(RUN)
rng = np.random.default_rng(7)
for step in range(4):
    digit = np.zeros((1, 28, 28), dtype=np.uint8)
    digit[0, 4 + step : 24, 10 + step : 14 + step] = 255
    digit[0] += rng.integers(0, 40, (28, 28), dtype=np.uint8)
    writer.add_image("samples/digit", digit, step)
    y, x = np.mgrid[0:16, 0:24]
    batch = np.stack(
        [np.stack([x / 23.0, y / 15.0, np.full_like(x, (step + k) / 8.0, dtype=float)]) for k in range(3)]
    ).astype(np.float32)
    writer.add_images("samples/gradients", batch, step)
    writer.add_scalar("loss", 1.0 / (step + 1), step)
writer.close()

(path,) = glob.glob(os.path.join(RUN, "events.out.tfevents.*"))
acc = EventAccumulator(path, size_guidance={IMAGES: 0})
acc.Reload()
facts = {}
for tag in acc.Tags()["images"]:
    entries = []
    for ev in acc.Images(tag):
        img = Image.open(io.BytesIO(ev.encoded_image_string)).convert("RGBA")
        px = np.asarray(img)
        h, w = px.shape[:2]
        entries.append(
            {
                "step": ev.step,
                "sample": 0,
                "width": ev.width,
                "height": ev.height,
                "bytes": len(ev.encoded_image_string),
                "rgba_sum": int(px.astype(np.int64).sum()),
                "first": px[0, 0].tolist(),
                "middle": px[h // 2, w // 2].tolist(),
            }
        )
    facts[tag] = entries
with open(os.path.join(HERE, "facts_torch.json"), "w") as f:
    json.dump({"run": "torch", "images": facts}, f, indent=1)
    f.write("\n")
