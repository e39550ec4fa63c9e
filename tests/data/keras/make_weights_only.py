"""Writes mlp.weights.h5 (Keras 3's `model.save_weights`: the weights without the architecture,
under layers/<name>/vars/<i>) and weights_only_facts.json (each weight's path, shape and first
values as Keras holds them), for tests/keras.rs.

    KERAS_BACKEND=torch python3 tests/data/keras/make_weights_only.py
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")
import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(11)
model = keras.Sequential([
    keras.Input((4,)),
    keras.layers.Dense(3, activation="relu", name="hidden"),
    keras.layers.Dense(2, name="out"),
])
model.set_weights([rng.standard_normal(w.shape).astype("float32") for w in model.get_weights()])
path = os.path.join(HERE, "mlp.weights.h5")
model.save_weights(path)
facts = {}
with h5py.File(path, "r") as f:
    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            a = obj[()]
            facts[name] = {"shape": list(a.shape), "first": [float(v) for v in np.ravel(a)[:4]]}
    f.visititems(visit)
with open(os.path.join(HERE, "weights_only_facts.json"), "w") as fh:
    json.dump({"keras": keras.__version__, "datasets": facts}, fh, indent=1, sort_keys=True)
    fh.write("\n")
print(json.dumps(facts)[:400])
