"""Writes an MLflow SQL tracking store (`mlflow.db`, MLflow 3's default backend) with MLflow's own
client, and facts.json with what MLflow's tracking API reads back from it.

    python make_mlflow_db.py         # mlflow-skinny 3.17.2 with SQLAlchemy 2.1 wrote mlflow.db

Two experiments: a sweep of two runs (one logs a NaN) and a deleted run (left out, as MLflow's
UI leaves it), and a second experiment with one run that logs only params.
"""

import json
import math
import os

import mlflow
from mlflow.tracking import MlflowClient

HERE = os.path.dirname(os.path.abspath(__file__))
DB = os.path.join(HERE, "mlflow.db")
if os.path.exists(DB):
    os.remove(DB)
mlflow.set_tracking_uri("sqlite:///" + DB)
mlflow.set_registry_uri("file:" + os.path.join(HERE, "registry"))

mlflow.set_experiment("sweep")
ids = []
for name, lr in [("baseline", 3e-4), ("warm", 1e-3), ("aborted", 5e-3)]:
    with mlflow.start_run(run_name=name) as run:
        ids.append(run.info.run_id)
        mlflow.log_params({"lr": lr, "batch_size": 64, "schedule": "cosine", "amp": True})
        mlflow.set_tag("team", "vision")
        for step in range(30):
            loss = 2.0 * math.exp(-step * lr * 60)
            if name == "warm" and step == 12:
                loss = float("nan")
            mlflow.log_metric("train/loss", loss, step=step)
            if step % 5 == 4:
                mlflow.log_metric("val acc", 1 - math.exp(-step / 9), step=step)
MlflowClient().delete_run(ids[2])
mlflow.set_experiment("probe")
with mlflow.start_run(run_name="params-only"):
    mlflow.log_params({"depth": 4})

client = MlflowClient()
facts = {"runs": {}, "deleted": ids[2]}
for experiment in client.search_experiments():
    for run in client.search_runs([experiment.experiment_id]):
        metrics = {}
        for key in run.data.metrics:
            history = client.get_metric_history(run.info.run_id, key)
            metrics[key] = sorted(
                [m.step, None if math.isnan(m.value) else m.value, m.timestamp / 1000.0] for m in history
            )
        facts["runs"][f"{experiment.name}/{run.info.run_name}"] = {
            "run_id": run.info.run_id,
            "params": run.data.params,
            "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
            "status": run.info.status,
            "metrics": metrics,
        }
with open(os.path.join(HERE, "facts.json"), "w") as f:
    json.dump(facts, f, indent=1, allow_nan=False, sort_keys=True)
    f.write("\n")
