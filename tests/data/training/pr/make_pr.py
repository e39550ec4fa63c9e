"""Writes precision-recall curves with PyTorch's `SummaryWriter.add_pr_curve` (TensorBoard's
`pr_curves` plugin: a [6, thresholds] tensor of TP, FP, TN, FN, precision and recall), and
facts.json with what TensorBoard's EventAccumulator reads back.

    python make_pr.py                # torch 2.14, tensorboard 2.21 wrote the files
"""

import glob
import json
import os
import shutil

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import TENSORS, EventAccumulator
from tensorboard.util import tensor_util
from torch.utils.tensorboard import SummaryWriter

HERE = os.path.dirname(os.path.abspath(__file__))
facts = {}
for run, sharpness in [("classifier_a", 2.0), ("classifier_b", 4.0)]:
    path = os.path.join(HERE, run)
    shutil.rmtree(path, ignore_errors=True)
    writer = SummaryWriter(path)
    rng = np.random.default_rng(int(sharpness))
    for step in range(3):
        labels = rng.integers(0, 2, 400)
        scores = 1 / (1 + np.exp(-(labels * 2 - 1) * sharpness * (step + 1) / 3 - rng.normal(0, 1, 400)))
        writer.add_pr_curve("val/pr", labels, scores, step, num_thresholds=33)
        writer.add_scalar("val/loss", 1.0 / (step + 1), step)
    writer.close()
    (events,) = glob.glob(os.path.join(path, "events.out.tfevents.*"))
    acc = EventAccumulator(events, size_guidance={TENSORS: 0})
    acc.Reload()
    facts[run] = {
        "val/pr": [
            {"step": e.step, "data": tensor_util.make_ndarray(e.tensor_proto).tolist()}
            for e in acc.Tensors("val/pr")
        ]
    }
with open(os.path.join(HERE, "facts.json"), "w") as f:
    json.dump(facts, f)
    f.write("\n")
