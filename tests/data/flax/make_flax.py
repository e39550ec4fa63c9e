"""Writes the Flax msgpack fixtures (`flax.serialization.to_bytes`) and what Flax reads back from them.

Run with flax 0.12.8 / jax 0.10.2 (any version with `flax.serialization.msgpack_serialize`):
    python make_flax.py
Writes, beside this script:
  cnn.msgpack        a linen CNN's variables: {'params', 'batch_stats'} (conv, batch norm, dense)
  train_state.msgpack  a TrainState after one adam step: step, params, opt_state (count, mu, nu)
  gpt2_bf16.msgpack  a GPT-2-shaped parameter tree as transformers' Flax models save it, bf16/f16
  gpt2_sharded/      the same tree in two shards and an index, as transformers shards it (each
                     shard a flat map whose keys are the `/`-joined paths)
  chunked.msgpack    arrays over Flax's chunk limit (lowered here to 1 000 bytes), saved in chunks
  facts.json         for each file: every array leaf's path, dtype, shape, mean, first values;
                     and every scalar leaf's path and value
"""

import json
import os

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization
from flax.training import train_state

HERE = os.path.dirname(os.path.abspath(__file__))


class CNN(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        x = nn.Conv(8, (3, 3))(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = nn.relu(x)
        x = nn.Conv(4, (3, 3), strides=2)(x)
        x = x.reshape((x.shape[0], -1))
        x = nn.Dense(16)(x)
        x = nn.relu(x)
        return nn.Dense(10)(x)


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(32, name="fc1")(x))
        return nn.Dense(8, name="fc2")(x)


def leaves(tree, prefix=()):
    """(path, leaf) for every leaf of a state dict, in key order."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from leaves(v, prefix + (str(k),))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from leaves(v, prefix + (str(i),))
    else:
        yield prefix, tree


def facts_of(path):
    """What Flax reads back from a file: arrays (chunks joined) and scalars."""
    with open(path, "rb") as f:
        restored = serialization.msgpack_restore(f.read())
    arrays, scalars = [], []
    for p, v in leaves(restored):
        name = ".".join(p)
        if isinstance(v, np.ndarray) or isinstance(v, jax.Array):
            a = np.asarray(v)
            f64 = a.astype(np.float64).reshape(-1)
            arrays.append({
                "name": name,
                "dtype": str(a.dtype),
                "shape": list(a.shape),
                "mean": float(f64.mean()) if f64.size else 0.0,
                "first": [float(x) for x in f64[:4]],
            })
        else:
            if isinstance(v, np.generic):
                v = v.item()
            scalars.append({"name": name, "value": v if v is None or isinstance(v, (bool, int, float, str)) else str(v)})
    return {"arrays": arrays, "scalars": scalars}


def save(name, tree):
    path = os.path.join(HERE, name)
    with open(path, "wb") as f:
        f.write(serialization.to_bytes(tree))
    return path


def main():
    key = jax.random.PRNGKey(0)
    facts = {}

    cnn = CNN()
    variables = cnn.init(key, jnp.ones((1, 12, 12, 3)))
    # Running statistics that are not the initial 0/1, as after training.
    variables = jax.tree_util.tree_map(lambda x: x, variables)
    bs = variables["batch_stats"]["BatchNorm_0"]
    variables = {
        "params": variables["params"],
        "batch_stats": {"BatchNorm_0": {
            "mean": bs["mean"] + jnp.linspace(-1, 1, 8),
            "var": bs["var"] * 2.5,
        }},
    }
    facts["cnn.msgpack"] = facts_of(save("cnn.msgpack", variables))

    mlp = MLP()
    params = mlp.init(key, jnp.ones((1, 16)))["params"]
    state = train_state.TrainState.create(apply_fn=mlp.apply, params=params, tx=optax.adam(1e-3))
    grads = jax.grad(lambda p: jnp.sum(mlp.apply({"params": p}, jnp.ones((2, 16))) ** 2))(state.params)
    state = state.apply_gradients(grads=grads)
    facts["train_state.msgpack"] = facts_of(save("train_state.msgpack", state))

    # GPT-2 as transformers' FlaxGPT2Model names its parameters (2 layers, width 32), in bf16
    # with the layer norms in f16, as a half-precision upload would hold them.
    rng = np.random.default_rng(7)

    def w(*shape, dtype=jnp.bfloat16):
        return jnp.asarray(rng.normal(0, 0.02, shape).astype(np.float32)).astype(dtype)

    def ln():
        return {"scale": w(32, dtype=jnp.float16) + 1, "bias": w(32, dtype=jnp.float16)}

    gpt2 = {"transformer": {
        "wte": {"embedding": w(100, 32)},
        "wpe": {"embedding": w(16, 32)},
        "h": {str(i): {
            "ln_1": ln(),
            "attn": {"c_attn": {"kernel": w(32, 96), "bias": w(96)},
                     "c_proj": {"kernel": w(32, 32), "bias": w(32)}},
            "ln_2": ln(),
            "mlp": {"c_fc": {"kernel": w(32, 128), "bias": w(128)},
                    "c_proj": {"kernel": w(128, 32), "bias": w(32)}},
        } for i in range(2)},
        "ln_f": ln(),
    }}
    facts["gpt2_bf16.msgpack"] = facts_of(save("gpt2_bf16.msgpack", gpt2))

    # Sharded as transformers' `save_pretrained(max_shard_size=…)` writes it
    # (`flax_shard_checkpoint`): the tree flattened with `/`, cut into blocks in key order, each
    # block saved flat (its keys the `/`-joined paths), and an index naming each key's shard.
    from flax.traverse_util import flatten_dict

    shard_dir = os.path.join(HERE, "gpt2_sharded")
    os.makedirs(shard_dir, exist_ok=True)
    flat = flatten_dict(gpt2, sep="/")
    keys = list(flat)
    blocks = [dict((k, flat[k]) for k in keys[:10]), dict((k, flat[k]) for k in keys[10:])]
    weight_map = {}
    for i, block in enumerate(blocks):
        name = f"flax_model-{i + 1:05d}-of-{len(blocks):05d}.msgpack"
        with open(os.path.join(shard_dir, name), "wb") as f:
            f.write(serialization.to_bytes(block))
        weight_map.update({k: name for k in block})
    total = sum(int(np.asarray(v).nbytes) for v in flat.values())
    with open(os.path.join(shard_dir, "flax_model.msgpack.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)

    # Arrays larger than the chunk limit are saved as {'__msgpack_chunked_array__': True,
    # 'shape': {'0': 23, '1': 29}, 'chunks': {'0': flat[:250], '1': …}}; lowered so a small file
    # shows it. The embedding's last chunk is partial.
    serialization.MAX_CHUNK_SIZE = 1000
    chunked = {
        "embed": {"embedding": jnp.asarray(rng.normal(size=(23, 29)).astype(np.float32))},
        "dense": {"kernel": jnp.asarray(rng.normal(size=(10, 20)).astype(np.float16)),
                  "bias": jnp.arange(5, dtype=jnp.int32)},
        "step": np.int64(1234),
        "lr": 0.25,
        "note": "fine-tuned",
    }
    facts["chunked.msgpack"] = facts_of(save("chunked.msgpack", chunked))

    with open(os.path.join(HERE, "facts.json"), "w") as f:
        json.dump({"flax": flax.__version__, "jax": jax.__version__, "files": facts}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
