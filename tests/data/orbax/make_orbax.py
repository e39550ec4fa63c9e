"""Writes the Orbax checkpoints that tests/orbax.rs reads, and facts.json with what Orbax itself
reads back from them.

    XLA_FLAGS=--xla_force_host_platform_device_count=2 python make_orbax.py [FIXTURE ...]

(all fixtures when none is named; facts.json keeps the others' entries).

Orbax 0.12.8, TensorStore 0.1.86, JAX 0.10.2. Each checkpoint is written by Orbax's own
checkpointers; facts.json is what `ocp.StandardCheckpointer().restore` returns for it.
"""
import json
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.RandomState(0)


def gemma_like():
    """A two-layer model named as Gemma's Flax checkpoints name theirs."""
    d, heads, hd, ff, vocab = 16, 2, 8, 32, 64
    tree = {"transformer": {"embedder": {"input_embedding": rng.randn(vocab, d) * 0.02}}}
    for i in range(2):
        tree["transformer"][f"layer_{i}"] = {
            "pre_attention_norm": {"scale": np.ones(d) + rng.randn(d) * 0.01},
            "attn": {
                "q_einsum": {"w": rng.randn(heads, d, hd) * 0.1},
                "kv_einsum": {"w": rng.randn(2, heads, d, hd) * 0.1},
                "attn_vec_einsum": {"w": rng.randn(heads, hd, d) * 0.1},
            },
            "pre_ffw_norm": {"scale": np.ones(d)},
            "mlp": {
                "gating_einsum": {"w": rng.randn(2, ff, d) * 0.1},
                "linear": {"w": rng.randn(ff, d) * 0.1},
            },
        }
    tree["transformer"]["final_norm"] = {"scale": np.ones(d)}
    return jax.tree.map(lambda a: jnp.asarray(a, dtype=jnp.bfloat16), tree)


def save(path, tree, **kw):
    shutil.rmtree(path, ignore_errors=True)
    handler = ocp.PyTreeCheckpointHandler(**kw)
    ckptr = ocp.Checkpointer(handler)
    ckptr.save(path, args=ocp.args.PyTreeSave(tree))


def facts_of(path):
    # Restored as NumPy arrays, so no sharding is needed (the two-process checkpoint's names
    # devices this process does not have).
    tree = ocp.PyTreeCheckpointer().metadata(path).item_metadata.tree
    args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), dict(tree))
    restored = ocp.PyTreeCheckpointer().restore(path, restore_args=args)
    out = {}
    for keys, v in jax.tree_util.tree_flatten_with_path(restored)[0]:
        name = ".".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in keys)
        a = np.asarray(v)
        if a.dtype == jnp.bfloat16:
            dtype = "bf16"
        else:
            dtype = {"float32": "f32", "int32": "i32", "float16": "f16", "int64": "i64",
                     "int8": "i8", "uint8": "u8", "float64": "f64", "bool": "bool"}[str(a.dtype)]
        f = a.astype(np.float64).ravel()
        out[name] = {
            "dtype": dtype,
            "shape": list(a.shape),
            "mean": float(f.mean()) if f.size else 0.0,
            "first": [float(x) for x in f[:4]],
            "last": float(f[-1]) if f.size else 0.0,
        }
    return out


ONLY = set(sys.argv[1:])
FACTS = os.path.join(HERE, "facts.json")
facts = json.load(open(FACTS)) if ONLY and os.path.exists(FACTS) else {}


def wanted(name):
    return not ONLY or name in ONLY


# 1. The default: OCDBT with zarr v2 chunks, zstd, a Gemma-named bf16 model, an f32 optimizer state
#    and the step.
params = gemma_like()  # drawn first, whichever fixtures are made, so the values stay the same
state = {
    "params": params,
    "opt_state": {"mu": jax.tree.map(lambda a: jnp.zeros(a.shape, jnp.float32) + 0.5, params["transformer"]["final_norm"]),
                  "count": jnp.asarray(3, jnp.int32)},
    "step": np.int64(1000),
}
if wanted("gemma"):
    path = os.path.join(HERE, "gemma")
    save(path, state)
    facts["gemma"] = facts_of(path)

# 2. The same tree of small arrays as zarr v3 (`use_zarr3=True`).
small = {
    "Dense_0": {"kernel": np.arange(12, dtype=np.float32).reshape(3, 4), "bias": np.ones(4, np.float32)},
    "emb": jnp.asarray(rng.randn(50, 8), dtype=jnp.bfloat16),
    "mask": np.array([1, 0, 2, 0, 3], dtype=np.int8),
}
if wanted("zarr3"):
    path = os.path.join(HERE, "zarr3")
    save(path, small, use_zarr3=True)
    facts["zarr3"] = facts_of(path)

# 3. Without OCDBT: one folder of zarr files per array, as Orbax wrote before OCDBT was its default.
if wanted("plain"):
    path = os.path.join(HERE, "plain")
    save(path, small, use_ocdbt=False)
    facts["plain"] = facts_of(path)

# 4. An array sharded over two devices: two chunks of rows (and one replicated array).
mesh = Mesh(np.array(jax.devices()[:2]), ("x",))
sharded = {
    "w": jax.device_put(jnp.asarray(rng.randn(6, 4), jnp.float32), NamedSharding(mesh, P("x", None))),
    "v": jax.device_put(jnp.asarray(rng.randn(4, 6), jnp.float32), NamedSharding(mesh, P(None, "x"))),
    "r": jax.device_put(jnp.arange(5, dtype=jnp.float32), NamedSharding(mesh, P())),
}
if wanted("sharded"):
    path = os.path.join(HERE, "sharded")
    save(path, sharded)
    facts["sharded"] = facts_of(path)

# 5. A CheckpointManager folder: steps 1 and 2, each with one item named `default`.
if wanted("manager"):
    path = os.path.join(HERE, "manager")
    shutil.rmtree(path, ignore_errors=True)
    mgr = ocp.CheckpointManager(path)
    for step in (1, 2):
        mgr.save(step, args=ocp.args.StandardSave({"w": np.full((2, 3), float(step), np.float32)}))
    mgr.wait_until_finished()
    facts["manager"] = facts_of(os.path.join(path, "2", "default"))

# 6. A step of several items (`CheckpointManager(item_names=...)`): each item's arrays are named
#    under it.
if wanted("items"):
    path = os.path.join(HERE, "items")
    shutil.rmtree(path, ignore_errors=True)
    mgr = ocp.CheckpointManager(path, item_names=("params", "opt_state"))
    mgr.save(5, args=ocp.args.Composite(
        params=ocp.args.StandardSave({"w": np.arange(4, dtype=np.float32).reshape(2, 2)}),
        opt_state=ocp.args.StandardSave({"mu": np.full((3,), 0.5, np.float32)}),
    ))
    mgr.wait_until_finished()
    facts["items"] = {
        f"{item}.{k}": v
        for item in ("params", "opt_state")
        for k, v in facts_of(os.path.join(path, "5", item)).items()
    }

# 7. Two JAX processes (gloo on CPU) saving arrays sharded across both: each writes its own
#    `ocdbt.process_N/`, and process 0's top manifest reaches both.
if wanted("two_processes"):
    path = os.path.join(HERE, "two_processes")
    shutil.rmtree(path, ignore_errors=True)
    env = dict(os.environ, XLA_FLAGS="")
    procs = [
        subprocess.Popen([sys.executable, os.path.join(HERE, "two_processes.py"), str(i), path, "12391"], env=env)
        for i in (0, 1)
    ]
    assert all(p.wait() == 0 for p in procs)
    facts["two_processes"] = facts_of(path)

with open(os.path.join(HERE, "facts.json"), "w") as f:
    json.dump(facts, f, indent=1, sort_keys=True)
