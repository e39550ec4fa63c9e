"""Writes .keras files (and a legacy .h5) with Keras 3 (torch backend), two .h5 files laid out as
Keras 2 wrote them, and facts.json: what Keras reports for them
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
    x = L.Conv2D(8, 1, use_bias=False, name="pw")(x)  # one variable: kernel
    x = L.BatchNormalization(center=False, name="bn2")(x)  # no beta
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
    8 links is then stored densely: a fractal heap of link messages and a v2 B-tree index."""
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


def stats_of(path, v):
    v = np.asarray(v, dtype=np.float64)
    flat = v.ravel()
    return {"path": path, "shape": list(v.shape), "mean": float(flat.mean()),
            "std": float(flat.std()), "min": float(flat.min()), "max": float(flat.max()),
            "first": [float(x) for x in flat[:6]]}


def keras2_style(path, functional):
    """A model as Keras 2 (TensorFlow) wrote `.h5` files, made with h5py: fixed-length string
    attributes, weight names with `:0`, a Sequential with no InputLayer (its first layer has
    `batch_input_shape`) or a functional model with Keras 2's `inbound_nodes` lists. Returns its
    facts."""
    rng = np.random.default_rng(5)
    w = {
        "dense": [rng.standard_normal((4, 3)).astype(np.float32), np.arange(3, dtype=np.float32)],
        "dense_1": [rng.standard_normal((3, 2)).astype(np.float32), np.zeros(2, np.float32)],
    }
    dense = lambda name, units, inbound: {  # noqa: E731
        "class_name": "Dense", "name": name, "inbound_nodes": inbound,
        "config": {"name": name, "trainable": True, "units": units, "activation": "relu",
                   "use_bias": True},
    }
    if functional:
        config = {"class_name": "Functional", "config": {
            "name": "model", "layers": [
                {"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [],
                 "config": {"batch_input_shape": [None, 4], "dtype": "float32",
                            "name": "input_1"}},
                dense("dense", 3, [[["input_1", 0, 0, {}]]]),
                dense("dense_1", 2, [[["dense", 0, 0, {}]]]),
            ],
            "input_layers": [["input_1", 0, 0]], "output_layers": [["dense_1", 0, 0]]}}
        layers = [{"name": "input_1", "class": "InputLayer", "calls": [[]], "weights": []}]
        calls = {"dense": [[["input_1", 0, 0]]], "dense_1": [[["dense", 0, 0]]]}
    else:
        first = dense("dense", 3, None)
        first["config"]["batch_input_shape"] = [None, 4]
        del first["inbound_nodes"]
        second = dense("dense_1", 2, None)
        del second["inbound_nodes"]
        config = {"class_name": "Sequential", "config": {"name": "sequential",
                                                          "layers": [first, second]}}
        layers = []
        calls = {"dense": [], "dense_1": []}
    for name in ["dense", "dense_1"]:
        layers.append({"name": name, "class": "Dense", "calls": calls[name], "weights": [
            stats_of(f"{name}/kernel", w[name][0]), stats_of(f"{name}/bias", w[name][1])]})
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = np.bytes_("2.15.0")
        f.attrs["backend"] = np.bytes_("tensorflow")
        f.attrs["model_config"] = np.bytes_(json.dumps(config))
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = np.array([b"dense", b"dense_1"])
        for name, (k, b) in w.items():
            lg = g.create_group(name)
            lg.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode(),
                                                 f"{name}/bias:0".encode()])
            lg.create_dataset(f"{name}/kernel:0", data=k)
            lg.create_dataset(f"{name}/bias:0", data=b)
    return {"class": config["class_name"], "name": config["config"]["name"], "layers": layers,
            "parameters": 4 * 3 + 3 + 3 * 2 + 2}


def main():
    keras.utils.set_random_seed(3)
    facts = {}
    for name, make in [("cnn", functional), ("mlp", sequential), ("nested", nested)]:
        m = make()
        path = os.path.join(HERE, f"{name}.keras")
        m.save(path)
        if name == "cnn":
            m.save(os.path.join(HERE, "cnn_legacy.h5"))  # Keras 3's legacy HDF5 format
        m = keras.saving.load_model(path)
        facts[f"{name}.keras"] = {
            "class": type(m).__name__, "name": m.name, "layers": layer_facts(m),
            "parameters": int(m.count_params()),
        }
    facts["cnn_legacy.h5"] = facts["cnn.keras"]
    facts["keras2_sequential.h5"] = keras2_style(os.path.join(HERE, "keras2_sequential.h5"), False)
    facts["keras2_functional.h5"] = keras2_style(os.path.join(HERE, "keras2_functional.h5"), True)
    relatest(os.path.join(HERE, "mlp.keras"), os.path.join(HERE, "mlp_latest.keras"))
    facts["mlp_latest.keras"] = facts["mlp.keras"]
    # cnn's `layers` group has 12 links: stored densely (a fractal heap and a v2 B-tree).
    relatest(os.path.join(HERE, "cnn.keras"), os.path.join(HERE, "dense_links.keras"))
    facts["dense_links.keras"] = facts["cnn.keras"]
    # Groups of 120 and 12 links, densely stored: an indirect heap block and a two-level name
    # index, for the HDF5 reader's unit test.
    with h5py.File(os.path.join(HERE, "many_links.h5"), "w", libver="latest") as f:
        g = f.create_group("g")
        for i in range(120):
            g.create_dataset(f"d{i:03d}", data=np.int32(i))
        small = f.create_group("small")
        for i in range(12):
            small.create_dataset(f"s{i}", data=np.float32(i) / 2)
    with open(os.path.join(HERE, "facts.json"), "w") as f:
        json.dump(facts, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
