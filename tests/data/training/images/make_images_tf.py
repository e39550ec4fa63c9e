"""Writes TensorFlow 2 image summaries (`tf.summary.image`: the images plugin's string tensor of
width, height and up to `max_outputs` PNGs per step), and facts_tf.json with what TensorFlow's
own reader (`summary_iterator`) and PNG decoder read back.

    python make_images_tf.py         # TensorFlow 2.21 wrote the files
"""

import glob
import json
import os
import shutil

import numpy as np
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(HERE, "tf")
shutil.rmtree(RUN, ignore_errors=True)

writer = tf.summary.create_file_writer(RUN)
with writer.as_default():
    for step in range(3):
        y, x = np.mgrid[0:20, 0:30]
        batch = np.stack(
            [
                np.stack([x / 29.0, y / 19.0, np.full_like(x, (step + k) / 6.0, dtype=float), np.full_like(x, 0.5 + 0.25 * k, dtype=float)], -1)
                for k in range(3)
            ]
        ).astype(np.float32)
        tf.summary.image("generated", batch, step=step, max_outputs=3)
        tf.summary.scalar("loss", 1.0 / (step + 1), step=step)
writer.close()

(path,) = glob.glob(os.path.join(RUN, "events.out.tfevents.*"))
facts = {}
for event in tf.compat.v1.train.summary_iterator(path):
    for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name != "images" and value.tag not in facts:
            continue
        strings = tf.make_ndarray(value.tensor)
        width, height = int(strings[0]), int(strings[1])
        for sample, png in enumerate(strings[2:]):
            px = tf.io.decode_png(png, channels=4).numpy()
            facts.setdefault(value.tag, []).append(
                {
                    "step": event.step,
                    "sample": sample,
                    "width": width,
                    "height": height,
                    "bytes": len(png),
                    "rgba_sum": int(px.astype(np.int64).sum()),
                    "first": px[0, 0].tolist(),
                    "middle": px[height // 2, width // 2].tolist(),
                }
            )
with open(os.path.join(HERE, "facts_tf.json"), "w") as f:
    json.dump({"run": "tf", "images": facts}, f, indent=1)
    f.write("\n")
