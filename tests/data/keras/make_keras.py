"""Writes .keras files with Keras 3 (torch backend) and facts.json: what Keras reports for them
(every layer with its class and the tensors each call read; every variable with its path, shape
and values), for tests/keras.rs.

    pip install keras h5py torch && KERAS_BACKEND=torch python3 tests/data/keras/make_keras.py
"""
import json
import os
import shutil
import tempfile
import zipfile

os.environ.setdefault("KERAS_BACKEND", "torch")
import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
L = keras.layers


def functional():
    inp = keras.Input((16, 16, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inp)
    x = L.BatchNormalization(name="bn")(x)
    x = L.DepthwiseConv2D(3, name="dw")(x)
    y = L.GlobalAveragePooling2D(name="gap")(x)
    a = L.Dense(16, name="fc1")(y)
    b = L.Dense(16, name="fc2")(y)
    z = L.Add(name="add")([a, b])
    z = L.PReLU(name="prelu")(z)
    out = L.Dense(10, activation="softmax", name="head")(z)
    m = keras.Model(inp, out, name="cnn")
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sequential():
    return keras.Sequential(
        [
            keras.Input((12,), dtype="int32"),
            L.Embedding(100, 8, name="embed"),
            L.LayerNormalization(name="ln"),
            L.Flatten(name="flat"),
            L.Dropout(0.1, name="drop"),
            L.Dense(32, activation="gelu", name="up"),
            L.Dense(4, name="down"),
        ],
        name="mlp",
    )


def nested():
    # A Sequential block used as a layer, a layer shared by two calls, and attention.
    block = keras.Sequential([keras.Input((16, 16)), L.Dense(16, name="inner")], name="block")
    shared = L.Dense(16, name="shared")
    a_in = keras.Input((8, 16), name="a")
    b_in = keras.Input((8, 16), name="b")
    a = shared(a_in)
    b = shared(b_in)
    x = L.Concatenate(axis=1, name="cat")([a, b])
    x = block(x)
    x = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(x, x)
    return keras.Model([a_in, b_in], x, name="nested")


def layer_facts(model):
    layers = []
    for layer in model.layers:
        calls = []
        for node in layer._inbound_nodes:
            calls.append([[t._keras_history.operation.name, t._keras_history.node_index,
                           t._keras_history.tensor_index] for t in node.input_tensors])
        weights = []
        for w in layer.weights:
            v = np.asarray(keras.ops.convert_to_numpy(w.value), dtype=np.float64).ravel()
            weights.append({
                "path": w.path, "shape": list(w.shape), "mean": float(v.mean()),
                "std": float(v.std()), "min": float(v.min()), "max": float(v.max()),
                "first": [float(x) for x in v[:6]],
            })
        layers.append({"name": layer.name, "class": type(layer).__name__, "calls": calls,
                       "weights": weights})
    return layers


def relatest(src, dst):
    """The same model with its weights file rewritten by h5py with libver='latest' (superblock
    v3, v2 object headers, link messages, compact datasets for small ones). A group of more than
    8 links is then stored densely (a fractal heap), which modelmap reports and does not read."""
    tmp = tempfile.mkdtemp()
    with zipfile.ZipFile(src) as z:
        z.extractall(tmp)
    old = os.path.join(tmp, "model.weights.h5")
    new = os.path.join(tmp, "new.h5")
    with h5py.File(old, "r") as a, h5py.File(new, "w", libver="latest") as b:
        def copy(name, obj):
            if isinstance(obj, h5py.Group):
                g = b.require_group(name)
                for k, v in obj.attrs.items():
                    g.attrs[k] = v
            else:
                layout = h5py.h5d.COMPACT if obj.size * obj.dtype.itemsize < 4096 else None
                if layout is not None:
                    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
                    dcpl.set_layout(h5py.h5d.COMPACT)
                    space = h5py.h5s.create_simple(obj.shape)
                    tid = h5py.h5t.py_create(obj.dtype)
                    ds = h5py.h5d.create(b.id, name.encode(), tid, space, dcpl=dcpl)
                    ds.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(obj[()]))
                else:
                    b.create_dataset(name, data=obj[()])
        a.visititems(copy)
    os.replace(new, old)
    with zipfile.ZipFile(dst, "w") as z:
        for n in ["metadata.json", "config.json", "model.weights.h5"]:
            z.write(os.path.join(tmp, n), n)
    shutil.rmtree(tmp)


def main():
    keras.utils.set_random_seed(3)
    facts = {}
    for name, make in [("cnn", functional), ("mlp", sequential), ("nested", nested)]:
        m = make()
        path = os.path.join(HERE, f"{name}.keras")
        m.save(path)
        m = keras.saving.load_model(path)
        facts[f"{name}.keras"] = {
            "class": type(m).__name__, "name": m.name, "layers": layer_facts(m),
            "parameters": int(m.count_params()),
        }
    relatest(os.path.join(HERE, "mlp.keras"), os.path.join(HERE, "mlp_latest.keras"))
    facts["mlp_latest.keras"] = facts["mlp.keras"]
    # cnn's `layers` group has 10 links: dense storage.
    relatest(os.path.join(HERE, "cnn.keras"), os.path.join(HERE, "dense_links.keras"))
    with open(os.path.join(HERE, "facts.json"), "w") as f:
        json.dump(facts, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
