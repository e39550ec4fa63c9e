"""Writes an MLflow file store (`mlruns/`) with MLflow's own client, and facts.json with what
MLflow's tracking API reads back from it.

Run from this folder with mlflow installed (mlflow-skinny 3.17.2 wrote the committed files):

    MLFLOW_ALLOW_FILE_STORE=true python make_mlflow.py

Two finished runs and a deleted one (which MLflow's UI hides, and so does modelmap) in one
experiment. Metric keys with `/` are folders in the store (`metrics/train/loss`); a NaN is
logged as Python writes it. The artifact folders are empty and are left out of the commit.
"""

import json
import math
import os
import shutil

import mlflow
from mlflow.tracking import MlflowClient

HERE = os.path.dirname(os.path.abspath(__file__))
STORE = os.path.join(HERE, "mlruns")
shutil.rmtree(STORE, ignore_errors=True)
mlflow.set_tracking_uri("file:" + STORE)
mlflow.set_experiment("lm-sweep")

ids = []
for name, lr in [("baseline", 3e-4), ("high-lr", 1e-3), ("aborted", 5e-3)]:
    with mlflow.start_run(run_name=name) as run:
        ids.append(run.info.run_id)
        mlflow.log_params({"lr": lr, "batch_size": 64, "optimizer": "adamw", "amp": True})
        mlflow.set_tag("team", "nlp")
        for step in range(40):
            loss = 3.0 * math.exp(-step * lr * 50)
            if name == "high-lr" and step == 21:
                loss = float("nan")
            mlflow.log_metric("train/loss", loss, step=step)
            mlflow.log_metric("lr", lr * min(1.0, (step + 1) / 8), step=step)
            if step % 8 == 7:
                mlflow.log_metric("val accuracy", 1 - math.exp(-step / 15), step=step)
MlflowClient().delete_run(ids[2])

client = MlflowClient()
experiment = client.get_experiment_by_name("lm-sweep")
facts = {"runs": {}, "deleted": ids[2]}
for run in client.search_runs([experiment.experiment_id]):
    metrics = {}
    for key in run.data.metrics:
        history = client.get_metric_history(run.info.run_id, key)
        metrics[key] = [
            [m.step, None if math.isnan(m.value) else m.value, m.timestamp / 1000.0] for m in history
        ]
    facts["runs"][f"lm-sweep/{run.info.run_name}"] = {
        "run_id": run.info.run_id,
        "params": run.data.params,
        "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
        "status": run.info.status,
        "metrics": metrics,
    }
for root, dirs, files in os.walk(STORE):
    for d in dirs:
        if d == "artifacts":
            shutil.rmtree(os.path.join(root, d))
with open(os.path.join(HERE, "facts.json"), "w") as f:
    json.dump(facts, f, indent=1, allow_nan=False, sort_keys=True)
    f.write("\n")
