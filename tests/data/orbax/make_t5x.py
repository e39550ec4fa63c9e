"""Writes a checkpoint laid out as T5X writes its checkpoints (Flan-T5's, UL2's, mT5's on Google
Cloud Storage): a folder `checkpoint_<step>/` holding `checkpoint`, a MessagePack map of the train
state, and one zarr 2 array per parameter written by TensorStore (gzip-compressed chunks, bf16 as
TensorStore's `bfloat16`), named by the parameter's `.`-joined path
(`target.encoder.layers_0.attention.query.kernel`), which is also how Orbax wrote before its
`_METADATA` and OCDBT. Adds its arrays' values to facts.json under `t5x`.

    python make_t5x.py
"""
import json
import os
import shutil

import ml_dtypes
import msgpack
import numpy as np
import tensorstore as ts

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.RandomState(1)
D, H, FF, V = 8, 8, 16, 32


def w(*shape):
    return (rng.randn(*shape) * 0.1).astype(ml_dtypes.bfloat16)


params = {"target.token_embedder.embedding": w(V, D)}
for stack, attns in (("encoder", ["attention"]), ("decoder", ["self_attention", "encoder_decoder_attention"])):
    l = f"target.{stack}.layers_0"
    if stack == "encoder":
        params[f"{l}.pre_attention_layer_norm.scale"] = np.ones(D, ml_dtypes.bfloat16)
    else:
        params[f"{l}.pre_self_attention_layer_norm.scale"] = np.ones(D, ml_dtypes.bfloat16)
        params[f"{l}.pre_cross_attention_layer_norm.scale"] = np.ones(D, ml_dtypes.bfloat16)
    for a in attns:
        for p in ("query", "key", "value"):
            params[f"{l}.{a}.{p}.kernel"] = w(D, H)
        params[f"{l}.{a}.out.kernel"] = w(H, D)
    params[f"{l}.pre_mlp_layer_norm.scale"] = np.ones(D, ml_dtypes.bfloat16)
    params[f"{l}.mlp.wi_0.kernel"] = w(D, FF)
    params[f"{l}.mlp.wi_1.kernel"] = w(D, FF)
    params[f"{l}.mlp.wo.kernel"] = w(FF, D)
    params[f"target.{stack}.{stack}_norm.scale"] = np.ones(D, ml_dtypes.bfloat16)
params["target.decoder.logits_dense.kernel"] = w(D, V)
# The optimizer's factored second moments, in float32 (Adafactor).
params["state.param_states.decoder.logits_dense.kernel.v_row"] = rng.rand(D).astype(np.float32)

out = os.path.join(HERE, "t5x", "checkpoint_1000")
shutil.rmtree(os.path.join(HERE, "t5x"), ignore_errors=True)
os.makedirs(out)
for name, a in params.items():
    dtype = "bfloat16" if a.dtype == ml_dtypes.bfloat16 else "<f4"
    spec = {
        "driver": "zarr",
        "kvstore": {"driver": "file", "path": os.path.join(out, name)},
        "metadata": {"shape": list(a.shape), "chunks": list(a.shape), "dtype": dtype, "compressor": {"id": "gzip"}},
        "create": True,
    }
    ts.open(spec).result().write(a).result()
tree = {"target": "(the parameters' zarr arrays)", "state": {"step": 1000}}
with open(os.path.join(out, "checkpoint"), "wb") as f:
    f.write(msgpack.packb(tree))

facts_path = os.path.join(HERE, "facts.json")
facts = json.load(open(facts_path))
facts["t5x/checkpoint_1000"] = {
    name: {
        "dtype": "bf16" if a.dtype == ml_dtypes.bfloat16 else "f32",
        "shape": list(a.shape),
        "mean": float(a.astype(np.float64).mean()),
        "first": [float(x) for x in a.astype(np.float64).ravel()[:4]],
        "last": float(a.astype(np.float64).ravel()[-1]),
    }
    for name, a in params.items()
}
with open(facts_path, "w") as f:
    json.dump(facts, f, indent=1, sort_keys=True)
