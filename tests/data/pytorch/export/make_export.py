"""Writes the torch.export programs (`.pt2`) that tests/pytorch_export.rs reads, and facts.json:
what torch itself reports for them (every op node with its target, inputs, outputs and module path;
every weight with its dtype, shape and float64 statistics).

Run from this folder with PyTorch >= 2.6:  python3 make_export.py
The committed files were written by PyTorch 2.15 on 2026-11-28.
"""
import json
import zipfile

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(4321)


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d) + 0.01 * torch.randn(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        split = lambda y: y.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, d))


class Mlp(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, d, f, heads):
        super().__init__()
        self.input_layernorm = RMSNorm(d)
        self.self_attn = Attention(d, heads)
        self.post_attention_layernorm = RMSNorm(d)
        self.mlp = Mlp(d, f)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class Body(nn.Module):
    def __init__(self, vocab, d, f, heads, layers):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList([Layer(d, f, heads) for _ in range(layers)])
        self.norm = RMSNorm(d)

    def forward(self, ids):
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class TinyLlama(nn.Module):
    def __init__(self, vocab=64, d=16, f=32, heads=2, layers=2):
        super().__init__()
        self.model = Body(vocab, d, f, heads, layers)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.model.embed_tokens.weight  # tied, as many LLMs are

    def forward(self, ids):
        return self.lm_head(self.model(ids))


class Cnn(nn.Module):
    """Conv, batch norm (buffers), a lifted tensor constant and a data-dependent branch."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 4 * 4, 10)
        self.scale = torch.tensor([0.5, 2.0])  # a plain tensor attribute: a lifted constant

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        x = torch.cond(x.sum() > 0, lambda y: y * self.scale[0], lambda y: y * self.scale[1], (x,))
        return self.fc(x.flatten(1))


def describe(name, t):
    t = t.detach()
    x = t.double()
    d = {"name": name, "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)}
    if t.numel():
        d.update(mean=x.mean().item(), std=x.std(unbiased=False).item(), min=x.min().item(),
                 max=x.max().item())
    return d


def refs(arg):
    """Names of the tensors (and symbolic ints) an argument of a node refers to."""
    if isinstance(arg, torch.fx.Node):
        return [arg.name]
    if isinstance(arg, (list, tuple)):
        return [n for a in arg for n in refs(a)]
    return []


def graph_facts(gm):
    nodes = []
    for n in gm.graph.nodes:
        if n.op != "call_function":
            continue
        stack = n.meta.get("nn_module_stack") or {}
        path = list(stack.values())[-1][0] if stack else ""
        if path.startswith("_empty_nn_module_stack"):  # an op no module ran
            path = ""
        sub = [a.name for a in n.args if isinstance(a, torch.fx.Node) and a.op == "get_attr"]
        ins = [r for a in list(n.args) + list(n.kwargs.values()) for r in refs(a) if r not in sub]
        nodes.append({"name": n.name, "target": str(n.target), "inputs": ins, "module": path,
                      "subgraphs": sub})
    return nodes


def export(model, args, file, dynamic_shapes=None):
    model.eval()
    ep = torch.export.export(model, args, dynamic_shapes=dynamic_shapes)
    torch.export.save(ep, file)
    sig = ep.graph_signature
    weights = dict(ep.state_dict)
    weights.update(ep.constants)
    return {
        "nodes": graph_facts(ep.graph_module),
        "user_inputs": list(sig.user_inputs),
        "user_outputs": list(sig.user_outputs),
        "inputs_to_weights": {**sig.inputs_to_parameters, **sig.inputs_to_buffers,
                              **sig.inputs_to_lifted_tensor_constants},
        "tensors": [describe(k, v) for k, v in weights.items() if isinstance(v, torch.Tensor)],
        "parameters": sum(p.numel() for p in ep.state_dict.values()),
    }


facts = {}
batch = torch.export.Dim("batch", min=1, max=64)
facts["transformer.pt2"] = export(TinyLlama(), (torch.randint(0, 64, (2, 5)),), "transformer.pt2",
                                  dynamic_shapes=({0: batch},))
facts["cnn.pt2"] = export(Cnn(), (torch.randn(2, 3, 8, 8),), "cnn.pt2")

# The layout torch.export.save wrote before PyTorch 2.6: the program as
# serialized_exported_program.json and the weights as a torch.save archive, serialized_state_dict.pt.
with zipfile.ZipFile("transformer.pt2") as src:
    program = next(src.read(n) for n in src.namelist() if n.endswith("models/model.json"))
ep = torch.export.load("transformer.pt2")
import io
buf = io.BytesIO()
torch.save(dict(ep.state_dict), buf)
with zipfile.ZipFile("legacy_layout.pt2", "w") as dst:
    dst.writestr("serialized_exported_program.json", program)
    dst.writestr("serialized_state_dict.pt", buf.getvalue())
    dst.writestr("version", "7.3")
facts["legacy_layout.pt2"] = facts["transformer.pt2"]

with open("facts.json", "w") as f:
    json.dump({"generated_by": f"make_export.py with torch {torch.__version__}", "files": facts},
              f, indent=1)
