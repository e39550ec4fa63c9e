"""Writes the PyTorch distributed checkpoints (torch.distributed.checkpoint, `dcp.save`) that
tests/dcp.rs reads, and facts.json: what DCP's own reader gives back for each of them.

- `single/`: one process saving a tiny LLaMA (transformers' LlamaForCausalLM, bf16) under
  `model`, its AdamW state under `optim`, and two numbers (`step`, `lr`), as a training loop does.
- `sharded/`: two processes (gloo, on the CPU) saving the same model in f32 sharded by FSDP2's
  `fully_shard` (its odd vocabulary split 17 + 16 rows), its optimizer state through
  `get_state_dict`, a tensor sharded by columns as tensor parallelism shards a row-parallel
  weight (`extra.col`, `Shard(1)`), and a replicated one (written once).
- `safetensors/`: one process saving through `FileSystemWriter(serialization_format=SAFETENSORS)`,
  each rank's file a safetensors file.

The facts are what `dcp_to_torch_save` (DCP's own loader, assembling every chunk) reads back:
each tensor's dtype, shape, float64 mean and first values; and each non-tensor item.

Run from this folder with PyTorch >= 2.8 and transformers:  python3 make_dcp.py
The committed files were written by PyTorch 2.14 and transformers 5.17 on 2026-11-29.
"""
import json
import os
import shutil
import tempfile

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.multiprocessing as mp
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

HERE = os.path.dirname(os.path.abspath(__file__))


def tiny_llama(dtype):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(7)
    config = LlamaConfig(
        vocab_size=33,
        hidden_size=16,
        intermediate_size=24,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).to(dtype)


def train_step(model, opt):
    ids = torch.arange(8).reshape(1, 8) % 33
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()


def single(out):
    model = tiny_llama(torch.bfloat16)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train_step(model, opt)
    state = {"model": model.state_dict(), "optim": opt.state_dict(), "step": 7, "lr": 0.001}
    dcp.save(state, checkpoint_id=out)


def sharded_rank(rank, world, out, port):
    from torch.distributed.checkpoint.state_dict import get_state_dict
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    mesh = init_device_mesh("cpu", (world,))
    model = tiny_llama(torch.float32)
    for layer in model.model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train_step(model, opt)
    msd, osd = get_state_dict(model, opt)
    col = distribute_tensor(torch.arange(35.0).reshape(5, 7), mesh, [Shard(1)])
    rep = distribute_tensor(torch.full((2, 3), 0.5), mesh, [Replicate()])
    state = {"model": msd, "optim": osd, "extra": {"col": col, "rep": rep}, "step": 3}
    dcp.save(state, checkpoint_id=out)
    dist.destroy_process_group()


def safetensors_format(out):
    from torch.distributed.checkpoint.filesystem import FileSystemWriter, SerializationFormat

    torch.manual_seed(3)
    state = {
        "model": {
            "embed.weight": torch.randn(6, 4),
            "proj.weight": torch.randn(4, 4).to(torch.bfloat16),
            "proj.bias": torch.zeros(4),
        }
    }
    writer = FileSystemWriter(out, serialization_format=SerializationFormat.SAFETENSORS)
    dcp.save(state, storage_writer=writer)


def read_back(folder):
    """The checkpoint as DCP itself reads it back (all chunks assembled)."""
    with tempfile.TemporaryDirectory() as tmp:
        whole = os.path.join(tmp, "whole.pt")
        dcp_to_torch_save(folder, whole)
        return torch.load(whole, weights_only=False)


def read_safetensors(folder):
    """A checkpoint of one rank written as safetensors, which DCP's torch.load-based reader
    cannot read back: each tensor as the safetensors package reads it from the rank's file, at
    the offsets DCP recorded for it."""
    from safetensors import safe_open

    state = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".distcp"):
            with safe_open(os.path.join(folder, name), "pt") as f:
                for key in f.keys():
                    state[key] = f.get_tensor(key)
    return state


def facts_of(folder, state):
    tensors, items = {}, {}

    def walk(prefix, obj):
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(obj, torch.Tensor):
            flat = obj.detach().reshape(-1).to(torch.float64)
            tensors[prefix] = {
                "dtype": str(obj.dtype).removeprefix("torch."),
                "shape": list(obj.shape),
                "mean": flat.mean().item() if flat.numel() else 0.0,
                "first": flat[:4].tolist(),
            }
        elif isinstance(obj, (int, float, bool, str)):
            items[prefix] = obj

    walk("", state)
    return {"tensors": tensors, "items": items, "files": sorted(os.listdir(folder))}


def main():
    facts = {}
    for name in ["single", "sharded", "safetensors"]:
        out = os.path.join(HERE, name)
        shutil.rmtree(out, ignore_errors=True)
        if name == "single":
            single(out)
        elif name == "sharded":
            mp.spawn(sharded_rank, args=(2, out, 29611), nprocs=2)
        else:
            safetensors_format(out)
        state = read_safetensors(out) if name == "safetensors" else read_back(out)
        facts[name] = facts_of(out, state)
    with open(os.path.join(HERE, "facts.json"), "w") as f:
        json.dump(facts, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
