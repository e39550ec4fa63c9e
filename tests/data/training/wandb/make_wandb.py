"""Writes two offline W&B runs with wandb's own SDK, and facts.json with what they hold.

Run from this folder with wandb installed (0.31.0 wrote the committed files):

    python make_wandb.py

`wandb.init(mode="offline")` writes `wandb/offline-run-<time>-<id>/run-<id>.wandb`, the binary
log `wandb sync` uploads: W&B's header, then LevelDB log blocks of protobuf `Record`s. Only the
`.wandb` files are kept (the SDK's debug logs and `files/` are deleted). The expected values are
what the script logged, and, for what the SDK adds itself (system metrics, `_timestamp`), what
wandb's own protobuf classes read back from the file.
"""

import glob
import json
import math
import os
import shutil
import struct
import zlib

import numpy as np
import wandb
from wandb.proto import wandb_internal_pb2 as pb

HERE = os.path.dirname(os.path.abspath(__file__))
os.environ["WANDB_SILENT"] = "true"
shutil.rmtree(os.path.join(HERE, "wandb"), ignore_errors=True)

facts = {"runs": {}}


def records(path):
    """wandb's Record messages of one file, read with the LevelDB log framing and zlib's CRC-32."""
    data = open(path, "rb").read()
    assert data[:4] == b":W&B"
    pos, buf = 7, b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        crc, n, kind = struct.unpack("<IHB", data[pos : pos + 7])
        body = data[pos + 7 : pos + 7 + n]
        assert zlib.crc32(body, zlib.crc32(bytes([kind]))) == crc
        pos += 7 + n
        buf = body if kind in (1, 2) else buf + body
        if kind in (1, 4):
            r = pb.Record()
            r.ParseFromString(buf)
            yield r


def one_run(name, lr, seed, stats):
    rng = np.random.default_rng(seed)
    run = wandb.init(
        project="modelmap-demo",
        name=name,
        mode="offline",
        dir=HERE,
        config={"lr": lr, "batch_size": 32, "optimizer": {"name": "adamw", "betas": [0.9, 0.95]}, "amp": True},
        settings=wandb.Settings(x_disable_stats=not stats, x_stats_sampling_interval=0.1),
    )
    scalars, hists, texts, images = {}, {}, {}, {}

    def keep(tag, step, value):
        # NaN as null: JSON has no NaN.
        scalars.setdefault(tag, []).append([step, None if math.isnan(value) else value])

    for step in range(0, 60):
        loss = 2.5 * math.exp(-step * lr * 40) + 0.05 * rng.random()
        if name == "lr-1e-3" and step == 37:
            loss = float("nan")
        d = {"train/loss": loss, "train/tokens": 4096 * (step + 1), "opt": {"lr": lr * min(1.0, (step + 1) / 10)}}
        keep("train/loss", step, loss)
        keep("train/tokens", step, 4096 * (step + 1))
        keep("opt.lr", step, d["opt"]["lr"])
        if step % 10 == 9:
            acc = 1 - math.exp(-step / 25)
            d["eval/accuracy"] = acc
            d["eval/improved"] = step > 9
            keep("eval/accuracy", step, acc)
            keep("eval/improved", step, 1.0 if step > 9 else 0.0)
            w = rng.normal(0, 0.02 * (1 + step / 30), 2000)
            h = wandb.Histogram(w, num_bins=32)
            d["weights/fc1"] = h
            hists.setdefault("weights/fc1", []).append(
                {"step": step, "bins": [float(b) for b in h.bins], "counts": [int(c) for c in h.histogram]}
            )
        if stats and step % 20 == 19:
            # Media: one image, and a list of two (W&B's "images/separated").
            y, x = np.mgrid[0:12, 0:16]
            a = np.stack([x * 16, y * 20, np.full_like(x, step * 4)], -1).astype(np.uint8)
            d["samples"] = wandb.Image(a, caption=f"step {step}")
            d["pair"] = [wandb.Image(a), wandb.Image(255 - a)]
            images.setdefault("samples", []).append([step, 0, a])
            images.setdefault("pair", []).extend([[step, 0, a], [step, 1, 255 - a]])
        if step == 59:
            d["notes"] = f"finished {name}"
            texts["notes"] = [[step, f"finished {name}"]]
        run.log(d, step=step)
    run.summary["best_accuracy"] = max(v for _, v in scalars["eval/accuracy"])
    run_id = run.id
    run.finish()

    path = glob.glob(os.path.join(HERE, "wandb", f"offline-run-*-{run_id}", f"run-{run_id}.wandb"))[0]
    system, timestamps, sample = {}, {}, 0
    for r in records(path):
        kind = r.WhichOneof("record_type")
        if kind == "stats":
            for item in r.stats.item:
                system.setdefault(item.key, []).append([sample, json.loads(item.value_json)])
            sample += 1
        elif kind == "history":
            items = {"/".join(i.nested_key) or i.key: i.value_json for i in r.history.item}
            timestamps[int(items["_step"])] = float(items["_timestamp"])
    folder = os.path.dirname(path)
    for extra in ("logs", "tmp"):
        shutil.rmtree(os.path.join(folder, extra), ignore_errors=True)
    # Keep the logged images (files/media/); drop the rest of files/.
    for f in glob.glob(os.path.join(folder, "files", "*")):
        if os.path.basename(f) != "media":
            os.remove(f) if os.path.isfile(f) else shutil.rmtree(f)
    facts["runs"][f"wandb/{name} ({run_id})"] = {
        "file": os.path.relpath(path, HERE),
        "project": "modelmap-demo",
        "config": {"lr": lr, "batch_size": 32, "optimizer.name": "adamw", "amp": True},
        "scalars": scalars,
        "histograms": hists,
        "texts": texts,
        "system": system,
        "wall_time": {str(k): v for k, v in sorted(timestamps.items())},
        # The pixels logged, as RGBA sums (PNG is lossless).
        "images": {
            tag: [
                {"step": st, "sample": k, "width": a.shape[1], "height": a.shape[0], "rgba_sum": int(a.astype(np.int64).sum()) + 255 * a.shape[0] * a.shape[1]}
                for st, k, a in entries
            ]
            for tag, entries in images.items()
        },
    }


one_run("lr-3e-4", 3e-4, 0, stats=True)
one_run("lr-1e-3", 1e-3, 1, stats=False)
for f in glob.glob(os.path.join(HERE, "wandb", "*")):
    if not os.path.isdir(f) or os.path.islink(f):
        os.remove(f)
with open(os.path.join(HERE, "facts.json"), "w") as f:
    json.dump(facts, f, indent=1, allow_nan=False)
    f.write("\n")
