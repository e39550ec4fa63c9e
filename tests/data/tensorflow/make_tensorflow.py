"""Writes the TensorFlow fixtures of tests/tensorflow.rs and what TensorFlow itself reports for them.

Run from this folder with tensorflow installed (2.21 wrote the committed files):
    python3 make_tensorflow.py

- cnn_frozen.pb: a Keras CNN (Conv2D, DepthwiseConv2D, BatchNormalization, pooling, Dense) frozen
  with convert_variables_to_constants_v2, as TF2 users freeze models;
- mlp_v1.pb: a TF1-style graph (tf.compat.v1 placeholders, variables, tf.split into two heads),
  frozen with graph_util.convert_variables_to_constants and written with `_output_shapes`, and
  the same graph as text (mlp_v1.pbtxt);
- attention_frozen.pb: a Keras model with MultiHeadAttention and LayerNormalization, frozen;
- cnn_saved/, attention_saved/: the same two Keras models as TF2 SavedModels (tf.saved_model.save):
  ops in library functions, weights in the variables checkpoint;
- mlp_v1_saved/: the TF1 graph as a TF1 SavedModel (simple_save): ops in the main graph,
  reference variables.

facts.json records, from the GraphDef as TensorFlow parses it: every node's op and inputs in file
order, and every constant's dtype, shape and first values (tf.make_ndarray); for each SavedModel,
the op kinds of its serving function as TensorFlow freezes it, its signature's input and output
names, and every Keras variable's values.
"""
import json
import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

tf.random.set_seed(0)
np.random.seed(0)


def freeze_keras(model, spec, name):
    f = tf.function(lambda x: model(x)).get_concrete_function(spec)
    gd = convert_variables_to_constants_v2(f).graph.as_graph_def()
    with open(name, "wb") as fh:
        fh.write(gd.SerializeToString())


cnn = tf.keras.Sequential([
    tf.keras.Input((16, 16, 3)),
    tf.keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
    tf.keras.layers.DepthwiseConv2D(3, padding="same", name="dw"),
    tf.keras.layers.BatchNormalization(name="bn"),
    tf.keras.layers.MaxPool2D(name="pool"),
    tf.keras.layers.GlobalAveragePooling2D(name="gap"),
    tf.keras.layers.Dense(10, activation="softmax", name="fc"),
])
# Non-trivial BatchNorm statistics, so the folded constants differ.
bn = cnn.get_layer("bn")
bn.set_weights([w + np.random.rand(*w.shape).astype(np.float32) for w in bn.get_weights()])
freeze_keras(cnn, tf.TensorSpec([1, 16, 16, 3], tf.float32), "cnn_frozen.pb")

inp = tf.keras.Input((6, 16))
x = tf.keras.layers.MultiHeadAttention(2, 8, name="mha")(inp, inp)
x = tf.keras.layers.LayerNormalization(name="ln")(x + inp)
out = tf.keras.layers.Dense(4, name="head")(x)
att = tf.keras.Model(inp, out)
freeze_keras(att, tf.TensorSpec([1, 6, 16], tf.float32), "attention_frozen.pb")

g = tf.Graph()
with g.as_default():
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, [None, 12], name="features")
    rate = v1.placeholder_with_default(tf.constant(1.0), [], name="scale")
    with v1.variable_scope("hidden"):
        w = v1.get_variable("w", [12, 16], initializer=v1.random_normal_initializer(seed=1))
        b = v1.get_variable("b", [16], initializer=v1.constant_initializer(0.25))
        h = tf.nn.relu(tf.matmul(x, w) + b)
    left, right = tf.split(h * rate, 2, axis=1, name="split")
    with v1.variable_scope("heads"):
        wl = v1.get_variable("wl", [8, 3], initializer=v1.random_normal_initializer(seed=2))
        wr = v1.get_variable("wr", [8, 2], initializer=v1.random_normal_initializer(seed=3))
        tf.identity(tf.matmul(left, wl), name="class_logits")
        tf.identity(tf.matmul(right, wr), name="box")
    with v1.Session(graph=g) as sess:
        sess.run(v1.global_variables_initializer())
        frozen = v1.graph_util.convert_variables_to_constants(
            sess, g.as_graph_def(add_shapes=True), ["heads/class_logits", "heads/box"])
        # The same graph as a TF1 SavedModel: ops in the main graph, reference variables whose
        # checkpoint keys are their names.
        import shutil
        shutil.rmtree("mlp_v1_saved", ignore_errors=True)
        v1.saved_model.simple_save(
            sess, "mlp_v1_saved", inputs={"features": x},
            outputs={"class_logits": g.get_tensor_by_name("heads/class_logits:0"),
                     "box": g.get_tensor_by_name("heads/box:0")})
        v1_weights = {v.op.name: sess.run(v) for v in v1.global_variables()}
        v1_ops = {}
        for n in frozen.node:
            if n.op not in {"Const", "NoOp", "Placeholder", "Identity", "IdentityN", "ReadVariableOp"}:
                v1_ops[n.op] = v1_ops.get(n.op, 0) + 1
with open("mlp_v1.pb", "wb") as fh:
    fh.write(frozen.SerializeToString())
# The same frozen graph in protobuf text format.
tf.io.write_graph(frozen, ".", "mlp_v1.pbtxt", as_text=True)


# TF2 SavedModels of the same Keras models: ops in functions, weights in the variables bundle.
import shutil
for model, dirname in [(cnn, "cnn_saved"), (att, "attention_saved")]:
    shutil.rmtree(dirname, ignore_errors=True)
    tf.saved_model.save(model, dirname)
    shutil.rmtree(os.path.join(dirname, "assets"), ignore_errors=True)

SKIP = {"Const", "NoOp", "Placeholder", "Identity", "IdentityN", "ReadVariableOp"}


def saved_facts(dirname, model):
    """What TensorFlow computes for the serving signature: the signature's function frozen by
    TensorFlow itself (its calls inlined, variables turned to constants), its ops counted by kind
    (bar constants, identities and variable reads, which modelmap folds), and every variable's
    values."""
    loaded = tf.saved_model.load(dirname)
    fn = loaded.signatures["serving_default"]
    gd = convert_variables_to_constants_v2(fn).graph.as_graph_def()
    ops = {}
    for n in gd.node:
        if n.op not in SKIP:
            ops[n.op] = ops.get(n.op, 0) + 1
    weights = {}
    for w in model.weights:
        a = w.numpy()
        weights[w.path] = {"dtype": str(a.dtype), "shape": list(a.shape),
                           "first": [float(v) for v in a.reshape(-1)[:4]]}
    return {"dir": dirname, "ops": dict(sorted(ops.items())), "weights": weights,
            "inputs": sorted(fn.structured_input_signature[1].keys()),
            "outputs": sorted(fn.structured_outputs.keys())}


def facts(name):
    gd = tf.compat.v1.GraphDef()
    with open(name, "rb") as fh:
        gd.ParseFromString(fh.read())
    nodes, consts = [], {}
    for n in gd.node:
        nodes.append({"name": n.name, "op": n.op, "inputs": list(n.input)})
        if n.op == "Const":
            a = tf.make_ndarray(n.attr["value"].tensor)
            consts[n.name] = {
                "dtype": str(a.dtype),
                "shape": list(a.shape),
                "first": [float(v) for v in a.reshape(-1)[:4]],
            }
    return {"file": name, "nodes": nodes, "constants": consts}


files = [facts(f) for f in ["cnn_frozen.pb", "mlp_v1.pb", "attention_frozen.pb"]]
saved = [saved_facts("cnn_saved", cnn), saved_facts("attention_saved", att)]
saved.append({
    "dir": "mlp_v1_saved",
    "ops": dict(sorted(v1_ops.items())),
    "weights": {k: {"dtype": str(a.dtype), "shape": list(a.shape),
                    "first": [float(v) for v in a.reshape(-1)[:4]]} for k, a in v1_weights.items()},
    "inputs": ["features"],
    "outputs": ["box", "class_logits"],
})
with open("facts.json", "w") as fh:
    json.dump({"tensorflow": tf.__version__, "files": files, "saved_models": saved}, fh, indent=1)
    fh.write("\n")
for f in files:
    print(f["file"], len(f["nodes"]), "nodes", len(f["constants"]), "constants")
