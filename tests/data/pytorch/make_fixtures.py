"""Writes the PyTorch checkpoints that tests/pytorch.rs reads, and facts.json: what torch itself
reports for every tensor in them (name, dtype, shape, contiguity and float64 statistics).

Run from this folder with any PyTorch >= 2.0:  python3 make_fixtures.py
The committed files were written by PyTorch 2.11 on 2026-11-28.
"""
import collections
import json
import os

import torch
import torch.nn as nn

torch.manual_seed(1234)


class Attention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)


class Mlp(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d) + 0.01 * torch.randn(d))


class Layer(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.self_attn = Attention(d)
        self.mlp = Mlp(d, f)
        self.input_layernorm = RMSNorm(d)
        self.post_attention_layernorm = RMSNorm(d)


class Rotary(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, d, 2).float() / d)))


class Body(nn.Module):
    def __init__(self, vocab, d, f, layers):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList([Layer(d, f) for _ in range(layers)])
        self.norm = RMSNorm(d)
        self.rotary_emb = Rotary(d)


class TinyLlama(nn.Module):
    def __init__(self, vocab=64, d=16, f=32, layers=2):
        super().__init__()
        self.model = Body(vocab, d, f, layers)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.model.embed_tokens.weight  # tied, as many LLMs are


def facts_of(obj, prefix=""):
    """(name, tensor) pairs as modelmap names them."""
    if isinstance(obj, torch.Tensor):
        return [(prefix or "tensor", obj)]
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += facts_of(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out += facts_of(v, f"{prefix}.{i}" if prefix else str(i))
    return out


def describe(name, t):
    t = t.detach()
    d = {
        "name": name,
        "dtype": str(t.dtype).replace("torch.", ""),
        "shape": list(t.shape),
        "contiguous": t.is_contiguous(),
    }
    if t.numel() and (t.is_floating_point() or t.dtype in (torch.int8, torch.int64, torch.uint8)):
        x = t.double()
        d.update(
            mean=x.mean().item(),
            std=x.std(unbiased=False).item(),
            min=x.min().item(),
            max=x.max().item(),
            zeros=int((x == 0).sum().item()),
        )
        if t.dim() == 2:
            d["row0"] = x[0].tolist()  # element order, which statistics cannot check
    return d


facts = {}

# 1. A state dict of a 2-layer LLaMA-shaped model: layer 0 in float16, layer 1 in bfloat16, the rest
#    float32; lm_head tied to the embedding; a buffer.
m = TinyLlama()
m.model.layers[0].half()
m.model.layers[1].to(torch.bfloat16)
sd = m.state_dict()
torch.save(sd, "tiny_llama.pt")
facts["tiny_llama.pt"] = [describe(k, v) for k, v in sd.items()]

# 2. A training checkpoint: epoch and metrics, the weights under "state_dict", Adam's moments.
net = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
net(torch.randn(5, 8)).sum().backward()
opt.step()
ckpt = {"epoch": 7, "best_acc": 0.91, "arch": "tinynet", "state_dict": net.state_dict(),
        "optimizer": opt.state_dict()}
torch.save(ckpt, "training.pth")
named = [(k, v) for k, v in net.state_dict().items()]
named += facts_of(opt.state_dict(), "optimizer")
facts["training.pth"] = [describe(k, v) for k, v in named]

# 3. A whole pickled module (torch.save(model)): named as its state_dict, each module's kind taken
#    from its class (Conv1d, LayerNorm: names alone would say Conv and Parameter).
seq = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.LayerNorm(4), nn.Linear(4, 2))
torch.save(seq, "module.pt")
facts["module.pt"] = [describe(k, v) for k, v in seq.state_dict().items()]

# 3b. A TorchScript archive (torch.jit.save): the same weights, pickled as attributes of scripted
#     modules next to their code.
torch.jit.script(seq).save("torchscript.pt")
facts["torchscript.pt"] = [describe(k, v) for k, v in seq.state_dict().items()]

# 4. Views: a transposed weight, a slice at an offset, a tied pair, a 0-d scalar, an empty tensor,
#    int8 and bool.
base = torch.randn(6, 5)
views = collections.OrderedDict()
views["transposed"] = base.t()
views["rows_2_to_4"] = base[2:4]
views["tied_a"] = base
views["tied_b"] = base
views["scalar"] = torch.tensor(3.25)
views["empty"] = torch.zeros(0, 4)
views["int8"] = torch.tensor([[-128, 0, 5], [127, 0, -1]], dtype=torch.int8)
views["mask"] = torch.tensor([True, False, True])
torch.save(views, "views.pt")
facts["views.pt"] = [describe(k, v) for k, v in views.items()]

# 5. A sharded Hugging Face checkpoint: pytorch_model.bin.index.json and two shards, config.json.
os.makedirs("sharded", exist_ok=True)
m2 = TinyLlama(vocab=32, d=8, f=16, layers=2)
sd2 = {k: v.clone() for k, v in m2.state_dict().items()}  # untied copies, as HF writes shards
names = list(sd2)
half = len(names) // 2
shards = {"pytorch_model-00001-of-00002.bin": names[:half],
          "pytorch_model-00002-of-00002.bin": names[half:]}
weight_map = {}
for file, keys in shards.items():
    torch.save({k: sd2[k] for k in keys}, os.path.join("sharded", file))
    weight_map.update({k: file for k in keys})
with open(os.path.join("sharded", "pytorch_model.bin.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": sum(v.numel() * v.element_size() for v in sd2.values())},
               "weight_map": weight_map}, f, indent=1)
with open(os.path.join("sharded", "config.json"), "w") as f:
    json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8,
               "intermediate_size": 16, "num_hidden_layers": 2, "vocab_size": 32}, f, indent=1)
facts["sharded"] = [describe(k, v) for k, v in sd2.items()]

# 6. An archive re-packed with deflate (torch never compresses, zip tools may): its tensors cannot be
#    read in place; modelmap inflates them and says so.
import zipfile
with zipfile.ZipFile("views.pt") as src, zipfile.ZipFile("compressed.pt", "w", zipfile.ZIP_DEFLATED) as dst:
    for info in src.infolist():
        dst.writestr(info.filename, src.read(info.filename))

# 7. The legacy (pre-1.6) format (make_legacy.py writes more of it).
torch.save({"w": torch.ones(2)}, "legacy.pt", _use_new_zipfile_serialization=False)

with open("facts.json", "w") as f:
    json.dump({"generated_by": f"make_fixtures.py with torch {torch.__version__}", "files": facts},
              f, indent=1)
