"""Writes unsigned_saved/: a TF2 SavedModel of a tf.Module with no signature (its tf.function has
no input signature and is never traced, so the SavedModel names none), and unsigned_facts.json:
each variable's name, dtype, shape and first values as TensorFlow holds them, for
tests/tensorflow.rs. modelmap shows such a model's variables as a checkpoint's weights.

    python3 tests/data/tensorflow/make_unsigned.py
"""
import json
import os
import shutil

import numpy as np
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)


class Dense(tf.Module):
    def __init__(self, n_in, n_out, name):
        super().__init__(name=name)
        self.kernel = tf.Variable(rng.standard_normal((n_in, n_out)).astype("float32"),
                                  name=name + "/kernel")
        self.bias = tf.Variable(np.zeros(n_out, "float32"), name=name + "/bias")


class Net(tf.Module):
    def __init__(self):
        super().__init__(name="net")
        self.encoder = Dense(8, 16, "encoder")
        self.head = Dense(16, 3, "head")
        self.steps = tf.Variable(np.int64(42), name="steps")

    @tf.function
    def __call__(self, x):
        return self.head.kernel * 0 + x


out = os.path.join(HERE, "unsigned_saved")
shutil.rmtree(out, ignore_errors=True)
net = Net()
tf.saved_model.save(net, out)
loaded = tf.saved_model.load(out)
assert not list(loaded.signatures.keys()), loaded.signatures
facts = {
    v.name.split(":")[0]: {"dtype": v.dtype.name, "shape": list(v.shape),
                          "first": [float(a) for a in np.reshape(v.numpy(), -1)[:4]]}
    for v in net.variables
}
with open(os.path.join(HERE, "unsigned_facts.json"), "w") as fh:
    json.dump({"tensorflow": tf.__version__, "variables": facts}, fh, indent=1, sort_keys=True)
    fh.write("\n")
print(json.dumps(facts, indent=1)[:600])
