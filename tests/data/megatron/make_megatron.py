"""Writes a checkpoint folder laid out as Megatron-LM's `save_checkpoint` lays it out (Megatron
Core's GPT names, `torch.save` of the same dict Megatron saves: `args`, `checkpoint_version`,
`iteration`, `model`, `rng_state`), with torch 2.14, and facts.json with what torch reads back.

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
H, FF, V, L = 16, 32, 64, 2


def state_dict(scale):
    sd = {"embedding.word_embeddings.weight": torch.randn(V, H) * scale}
    for i in range(L):
        p = f"decoder.layers.{i}"
        sd[f"{p}.self_attention.linear_qkv.layer_norm_weight"] = torch.ones(H)
        sd[f"{p}.self_attention.linear_qkv.weight"] = torch.randn(3 * H, H) * scale
        sd[f"{p}.self_attention.linear_qkv.bias"] = torch.zeros(3 * H)
        sd[f"{p}.self_attention.linear_proj.weight"] = torch.randn(H, H) * scale
        sd[f"{p}.mlp.linear_fc1.layer_norm_weight"] = torch.ones(H)
        sd[f"{p}.mlp.linear_fc1.weight"] = torch.randn(FF, H) * scale
        sd[f"{p}.mlp.linear_fc2.weight"] = torch.randn(H, FF) * scale
    sd["decoder.final_layernorm.weight"] = torch.ones(H)
    sd["output_layer.weight"] = torch.randn(V, H) * scale
    return sd


root = os.path.join(HERE, "checkpoints")
shutil.rmtree(root, ignore_errors=True)
facts = {}
for iteration, ranks in ((10, 1), (20, 2)):
    for rank in range(ranks):
        d = os.path.join(root, f"iter_{iteration:07d}", f"mp_rank_{rank:02d}")
        os.makedirs(d)
        sd = state_dict(0.02 * (rank + 1))
        torch.save(
            {
                "args": argparse.Namespace(num_layers=L, hidden_size=H, tensor_model_parallel_size=ranks),
                "checkpoint_version": 3.0,
                "iteration": iteration,
                "model": sd,
                "rng_state": [{"random_rng_state": random.getstate(), "np_rng_state": np.random.get_state(),
                               "torch_rng_state": torch.get_rng_state()}],
            },
            os.path.join(d, "model_optim_rng.pt"),
        )
        if iteration == 20 and rank == 0:
            facts = {k: {"shape": list(v.shape), "mean": float(v.double().mean()),
                         "first": [float(x) for x in v.double().flatten()[:3]]} for k, v in sd.items()}
with open(os.path.join(root, "latest_checkpointed_iteration.txt"), "w") as f:
    f.write("20")
with open(os.path.join(HERE, "facts.json"), "w") as f:
    json.dump(facts, f, indent=1, sort_keys=True)
