"""Writes lstm_saved/ (a Keras LSTM saved as a TF2 SavedModel, whose recurrence is a `While` op
with `cond` and `body` functions), lstm_frozen.pb (the same model frozen without lowering its
control flow, the functions in the GraphDef's library) and control_facts.json: what TensorFlow's
own protos say of each While (its functions, their arguments and op kinds) and the LSTM cell's
variables.

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
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

HERE = os.path.dirname(os.path.abspath(__file__))
# Ops modelmap folds into weights or values (constants, variable reads, identities, control deps).
FOLDED = {"Const", "ReadVariableOp", "Identity", "NoOp"}


def whiles_of(graph):
    """Every While of a GraphDef (main graph and library functions), with its functions."""
    library = {f.signature.name: f for f in graph.library.function}
    places = [("", graph.node)] + [(f.signature.name, f.node_def) for f in graph.library.function]
    whiles = []
    for where, nodes in places:
        for n in nodes:
            if n.op not in ("While", "StatelessWhile"):
                continue
            entry = {"name": n.name, "op": n.op, "in": where,
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
    return whiles


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
    saved_whiles = whiles_of(sm.meta_graphs[0].graph_def)

    # The same model frozen without lowering its control flow: the While stays, its functions in
    # the GraphDef's library, the variables constants.
    fn = tf.function(lambda s: model(s)).get_concrete_function(
        tf.TensorSpec((1, 6, 4), tf.float32, name="seq"))
    frozen = convert_variables_to_constants_v2(fn, lower_control_flow=False).graph.as_graph_def()
    with open(os.path.join(HERE, "lstm_frozen.pb"), "wb") as f:
        f.write(frozen.SerializeToString(deterministic=True))
    frozen_whiles = whiles_of(frozen)
    variables = {v.path: {"shape": list(v.shape),
                          "first": [float(x) for x in v.numpy().reshape(-1)[:4]]}
                 for v in lstm.weights}
    facts = {"tensorflow": tf.__version__, "whiles": saved_whiles, "frozen_whiles": frozen_whiles,
             "lstm_variables": variables}
    with open(os.path.join(HERE, "control_facts.json"), "w") as f:
        json.dump(facts, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
