"""Writes lstm_saved/ (a Keras LSTM saved as a TF2 SavedModel, whose recurrence is a `While` op
with `cond` and `body` functions) and control_facts.json: what TensorFlow's own protos say of that
While (its functions, their arguments and op kinds) and the LSTM cell's variables.

Run from this folder with tensorflow installed (2.21 wrote the committed files):
    python3 make_control.py
"""
import collections
import json
import os
import shutil

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

HERE = os.path.dirname(os.path.abspath(__file__))
# Ops modelmap folds into weights or values (constants, variable reads, identities, control deps).
FOLDED = {"Const", "ReadVariableOp", "Identity", "NoOp"}


def main():
    tf.random.set_seed(0)
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((6, 4), name="seq")
    lstm = tf.keras.layers.LSTM(8, name="lstm")
    out = tf.keras.layers.Dense(3, name="head")(lstm(inp))
    model = tf.keras.Model(inp, out)
    path = os.path.join(HERE, "lstm_saved")
    shutil.rmtree(path, ignore_errors=True)
    tf.saved_model.save(model, path)
    shutil.rmtree(os.path.join(path, "assets"), ignore_errors=True)

    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    graph = sm.meta_graphs[0].graph_def
    library = {f.signature.name: f for f in graph.library.function}
    whiles = []
    for f in graph.library.function:
        for n in f.node_def:
            if n.op not in ("While", "StatelessWhile"):
                continue
            entry = {"name": n.name, "op": n.op, "in": f.signature.name,
                     "operand_types": [tf.dtypes.as_dtype(t).name for t in n.attr["T"].list.type],
                     "functions": {}}
            for key in ("cond", "body"):
                fn = library[n.attr[key].func.name]
                ops = collections.Counter(x.op for x in fn.node_def if x.op not in FOLDED)
                entry["functions"][key] = {
                    "name": fn.signature.name,
                    "args": [a.name for a in fn.signature.input_arg],
                    "results": [a.name for a in fn.signature.output_arg],
                    "ops": dict(sorted(ops.items())),
                }
            whiles.append(entry)
    variables = {v.path: {"shape": list(v.shape),
                          "first": [float(x) for x in v.numpy().reshape(-1)[:4]]}
                 for v in lstm.weights}
    facts = {"tensorflow": tf.__version__, "whiles": whiles,
             "lstm_variables": variables}
    with open(os.path.join(HERE, "control_facts.json"), "w") as f:
        json.dump(facts, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
