"""Writes a checkpoint folder laid out as Megatron-LM's `save_checkpoint` lays it out (Megatron
Core's GPT names, `torch.save` of the same dict Megatron saves: `args`, `checkpoint_version`,
`iteration`, `model`, `rng_state`), with torch 2.14, and facts.json with the whole model's tensors.

Iteration 10 is one rank (`mp_rank_00`). Iteration 20, the latest, is the same kind of model with
SwiGLU saved with tensor parallelism 2 and pipeline parallelism 2 (`mp_rank_TT_PPP`), each rank
holding its slices as Megatron Core's layers partition them: the column-parallel `linear_qkv`,
`linear_fc1` (each rank's gate rows, then its up rows) and `word_embeddings` / `output_layer` by
rows, the row-parallel `linear_proj` and `linear_fc2` by columns, norms whole on every rank; each
pipeline stage numbers its layers from 0, the first holding the embedding and the last the final
norm and output layer. facts.json lists the whole tensors (what Megatron's
tools/checkpoint/loader_megatron.py reassembles: `torch.cat` of the slices, the gate and up halves
of `linear_fc1` each concatenated) under their global layer numbers.

    python make_megatron.py
"""
import argparse
import json
import os
import random
import shutil

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)
H, FF, V = 16, 32, 64


def full_state_dict(layers, scale, swiglu):
    sd = {"embedding.word_embeddings.weight": torch.randn(V, H) * scale}
    for i in range(layers):
        p = f"decoder.layers.{i}"
        sd[f"{p}.self_attention.linear_qkv.layer_norm_weight"] = 1 + torch.randn(H) * 0.1
        sd[f"{p}.self_attention.linear_qkv.weight"] = torch.randn(3 * H, H) * scale
        sd[f"{p}.self_attention.linear_qkv.bias"] = torch.randn(3 * H) * scale
        sd[f"{p}.self_attention.linear_proj.weight"] = torch.randn(H, H) * scale
        sd[f"{p}.self_attention.linear_proj.bias"] = torch.randn(H) * scale
        sd[f"{p}.mlp.linear_fc1.layer_norm_weight"] = 1 + torch.randn(H) * 0.1
        sd[f"{p}.mlp.linear_fc1.weight"] = torch.randn((2 if swiglu else 1) * FF, H) * scale
        sd[f"{p}.mlp.linear_fc2.weight"] = torch.randn(H, FF) * scale
    sd["decoder.final_layernorm.weight"] = 1 + torch.randn(H) * 0.1
    sd["output_layer.weight"] = torch.randn(V, H) * scale
    return sd


def tp_slice(name, t, rank, tp):
    """The slice of a whole tensor that tensor-parallel rank `rank` of `tp` holds."""
    if name.endswith("linear_fc1.weight"):
        gate, up = t.chunk(2, dim=0)
        return torch.cat([gate.chunk(tp, dim=0)[rank], up.chunk(tp, dim=0)[rank]], dim=0)
    if any(name.endswith(s) for s in ("linear_qkv.weight", "linear_qkv.bias", "word_embeddings.weight",
                                       "output_layer.weight")):
        return t.chunk(tp, dim=0)[rank]
    if any(name.endswith(s) for s in ("linear_proj.weight", "linear_fc2.weight")):
        return t.chunk(tp, dim=1)[rank]
    return t


def save(path, iteration, sd, tp, pp, layers):
    os.makedirs(os.path.dirname(path))
    torch.save(
        {
            "args": argparse.Namespace(num_layers=layers, hidden_size=H, tensor_model_parallel_size=tp,
                                       pipeline_model_parallel_size=pp, swiglu=True),
            "checkpoint_version": 3.0,
            "iteration": iteration,
            "model": sd,
            "rng_state": [{"random_rng_state": random.getstate(), "np_rng_state": np.random.get_state(),
                           "torch_rng_state": torch.get_rng_state()}],
        },
        path,
    )


root = os.path.join(HERE, "checkpoints")
shutil.rmtree(root, ignore_errors=True)
save(os.path.join(root, "iter_0000010", "mp_rank_00", "model_optim_rng.pt"), 10,
     full_state_dict(2, 0.02, False), 1, 1, 2)

LAYERS, TP, PP = 4, 2, 2
whole = full_state_dict(LAYERS, 0.02, True)
per_stage = LAYERS // PP
for pp in range(PP):
    stage = {}
    for name, t in whole.items():
        if name.startswith("decoder.layers."):
            i = int(name.split(".")[2])
            if i // per_stage != pp:
                continue
            name = name.replace(f"decoder.layers.{i}.", f"decoder.layers.{i - pp * per_stage}.", 1)
        elif name.startswith("embedding.") and pp != 0:
            continue
        elif (name.startswith("decoder.final_") or name.startswith("output_layer")) and pp != PP - 1:
            continue
        stage[name] = t
    for tp in range(TP):
        sd = {n: tp_slice(n, t, tp, TP).clone() for n, t in stage.items()}
        save(os.path.join(root, "iter_0000020", f"mp_rank_{tp:02d}_{pp:03d}", "model_optim_rng.pt"), 20,
             sd, TP, PP, LAYERS)

facts = {k: {"shape": list(v.shape), "mean": float(v.double().mean()),
             "first": [float(x) for x in v.double().flatten()[:3]],
             "last": float(v.double().flatten()[-1]),
             # Order-sensitive: Σ i·v[i] over the flattened values.
             "index_weighted_sum": float((torch.arange(v.numel(), dtype=torch.float64) * v.double().flatten()).sum())}
         for k, v in whole.items()}
with open(os.path.join(root, "latest_checkpointed_iteration.txt"), "w") as f:
    f.write("20")
with open(os.path.join(HERE, "facts.json"), "w") as f:
    json.dump(facts, f, indent=1, sort_keys=True)
print(len(facts), "tensors")
