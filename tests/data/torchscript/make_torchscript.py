"""Writes the TorchScript fixtures of tests/torchscript.rs and what torch itself reports for them.

Run from this folder with torch installed (2.15 wrote the committed files):
    python3 make_torchscript.py

Each model is saved with torch.jit.save, traced or scripted. facts.json records, from torch:
- the weights (names, shapes, dtypes, first values) of the module's state_dict;
- the ATen ops of torch's own graph of the module, with the ops of every block of an If or a Loop
  counted once. For a traced module that is its graph with each submodule call followed into the
  submodule's graph, which its code prints op for op.
  For a scripted one it is the module frozen (torch.jit.freeze without numerics-changing rewrites):
  its attributes, constant conditions and short counted loops are folded as modelmap folds them;
- every edge from one ATen op to another (through list and tuple packing), as (producer, consumer);
- the graph's inputs and number of outputs;
- which op reads each weight (its first consumer in the un-frozen inlined graph) and the module
  path it runs in;
- the code's constant tensors (`CONSTANTS.c0`) with their values.
"""
import json
from collections import Counter
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)


# --- models -----------------------------------------------------------------------------------

class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)) + x)


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2)
        self.blocks = nn.Sequential(Block(8), Block(8))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.blocks(F.max_pool2d(self.stem(x), 2))
        return self.fc(torch.flatten(self.pool(x), 1))


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q = q.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        k = k.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        v = v.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / (d // self.heads) ** 0.5)
        att = att.softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, d)
        return self.out(y)


class Gpt(nn.Module):
    def __init__(self, vocab=64, d=32, layers=2):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.h = nn.ModuleList(
            nn.ModuleDict({"ln": nn.LayerNorm(d), "attn": Attention(d, 4), "mlp": nn.Sequential(
                nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))}) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)

    def forward(self, ids):
        x = self.wte(ids)
        for blk in self.h:
            x = x + blk["attn"](blk["ln"](x))
            x = x + blk["mlp"](x)
        x = self.ln_f(x)
        return x @ self.wte.weight.t()


def scale_add(x: torch.Tensor, y: torch.Tensor, s: float) -> torch.Tensor:
    return x * s + y


class Gate(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.proj = nn.Linear(d, 2 * d)
        self.register_buffer("mask", torch.ones(d))

    def forward(self, x):
        a, b = self.proj(x).chunk(2, dim=-1)
        return a * torch.sigmoid(b) * self.mask


class Gated(nn.Module):
    """Scripted: a helper function, a ModuleList loop, optional input, branches, a counted loop."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.layers = nn.ModuleList([Gate(16) for _ in range(2)])
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 50, bias=False)
        self.depth = 2
        self.use_norm = True

    def forward(self, ids: torch.Tensor, extra: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        x = self.emb(ids)
        for layer in self.layers:
            x = scale_add(layer(x), x, 0.5)
        if extra is not None:
            x = x + extra
        if self.use_norm:
            x = self.norm(x)
        h = x
        for i in range(self.depth):
            h = torch.tanh(h)
        if bool(x.sum() > 0):
            y = F.relu(x)
        else:
            y = -x
        return self.head(y), h


# --- facts ------------------------------------------------------------------------------------

PASS_THROUGH = {"prim::ListConstruct", "prim::ListUnpack", "prim::TupleConstruct",
                "prim::TupleUnpack", "prim::TupleIndex", "prim::unchecked_cast"}


def walk(block):
    for n in block.nodes():
        yield n
        for b in n.blocks():
            yield from walk(b)


class Facts:
    """ATen op counts and op-to-op edges of a graph, with each `prim::CallMethod` of a traced
    module followed into the callee's own graph (torch's inlined_graph would hand back callee
    graphs already deduplicated, while the saved code, which modelmap reads, keeps every op)."""

    def __init__(self):
        self.ops = Counter()
        self.edges = Counter()

    def run(self, graph, obj, arg_producers):
        producer = {}
        objs = {}
        params = list(graph.inputs())
        objs[params[0].debugName()] = obj
        for v, p in zip(params[1:], arg_producers):
            producer[v.debugName()] = p
        for n in walk(graph):
            kind = n.kind()
            ins = [producer.get(i.debugName(), []) for i in n.inputs()]
            # A list or tuple carries every producer of its items, repeats included.
            srcs = [s for p in ins for s in p]
            if kind == "prim::GetAttr":
                owner = objs.get(n.input().debugName())
                if owner is not None:
                    objs[n.output().debugName()] = getattr(owner, n.s("name"))
            elif kind == "prim::CallMethod" and n.inputsAt(0).debugName() in objs:
                callee = objs[n.inputsAt(0).debugName()]
                sub = getattr(callee, n.s("name")).graph
                outs = self.run(sub, callee, ins[1:])
                for o, p in zip(n.outputs(), outs):
                    producer[o.debugName()] = p
            elif kind.startswith("aten::"):
                self.ops[kind] += 1
                for p in ins:
                    for s in p:
                        self.edges[(s, kind)] += 1
                for o in n.outputs():
                    producer[o.debugName()] = [kind]
            elif kind in PASS_THROUGH:
                for o in n.outputs():
                    producer[o.debugName()] = srcs
        ret = graph.return_node()
        return [producer.get(i.debugName(), []) for i in ret.inputs()]


def graph_facts(graph, obj):
    f = Facts()
    f.run(graph, obj, [["input"]] * (len(list(graph.inputs())) - 1))
    return f.ops, f.edges


def save(name, module, example, scripted):
    module = module.eval()
    if scripted:
        sm = torch.jit.script(module)
    else:
        with torch.no_grad():
            sm = torch.jit.trace(module, example)
    sm.save(f"{name}.pt")
    loaded = torch.jit.load(f"{name}.pt")
    overloaded = not loaded._c._has_method("forward")
    if overloaded:
        # No `forward` to freeze or inline: only the weights and their reader are recorded.
        graph = loaded._c._get_method("forward__0").graph
        ops, edges = None, None
    else:
        frozen = torch.jit.freeze(loaded.eval(), optimize_numerics=False)
        graph = loaded.graph
        ops, edges = graph_facts(frozen.graph, frozen) if scripted else graph_facts(graph, loaded)
    inlined = graph.copy()
    torch._C._jit_pass_inline(inlined)
    # Which op first reads each weight, through prim::GetAttr chains of the inlined graph (and
    # the lists that carry them, as nn.LSTM's `_flat_weights`).
    paths = {}
    lists = {}
    readers = {}
    names = {id(t): k for k, t in loaded.state_dict(keep_vars=True).items()}
    for n in walk(inlined):
        if n.kind() == "prim::GetAttr":
            base = paths.get(n.input().debugName(), "")
            p = f"{base}.{n.s('name')}" if base else n.s("name")
            paths[n.output().debugName()] = p
        elif n.kind() == "prim::ListConstruct":
            lists[n.output().debugName()] = [paths.get(i.debugName()) for i in n.inputs()]
        elif n.kind().startswith("aten::"):
            for i in n.inputs():
                for p in [paths.get(i.debugName())] + lists.get(i.debugName(), []):
                    if p is not None and p not in readers:
                        readers[p] = n.kind()
    if overloaded:
        # `_flat_weights` is read whole: each of its tensors by the op that reads the list.
        flat = [names[id(t)] for t in loaded._flat_weights]
        for p, kind in list(readers.items()):
            if p.endswith("_flat_weights"):
                for w in flat:
                    readers.setdefault(w, kind)
    state = loaded.state_dict()
    weights = []
    for k, t in state.items():
        flat = t.detach().reshape(-1)
        weights.append({
            "name": k,
            "dtype": str(t.dtype).replace("torch.", ""),
            "shape": list(t.shape),
            "first": [float(x) for x in flat[:4].tolist()],
            "read_by": readers.get(k),
        })
    # The code's constant tensors (`CONSTANTS.c0`), by name.
    constants = {}
    for _, mod in ([] if overloaded else loaded.named_modules()):
        if not mod._c._has_method("forward"):
            continue
        for k, t in mod.code_with_constants[1].const_mapping.items():
            if isinstance(t, torch.Tensor):
                constants[k] = {"dtype": str(t.dtype).replace("torch.", ""),
                                "shape": list(t.shape),
                                "values": [float(x) for x in t.reshape(-1)[:4].tolist()]}
    inputs = [v.debugName().split(".")[0] for v in list(graph.inputs())[1:]]
    outs = graph.return_node().input().type()
    n_out = len(outs.elements()) if isinstance(outs, torch._C.TupleType) else 1
    return {
        "file": f"{name}.pt",
        "scripted": scripted,
        "inputs": inputs,
        "outputs": n_out,
        "ops": dict(sorted(ops.items())) if ops is not None else None,
        "edges": sorted([[a, b, c] for (a, b), c in edges.items()]) if edges is not None else None,
        "weights": weights,
        "constants": constants,
    }


facts = [
    save("cnn_traced", Cnn(), torch.randn(1, 3, 32, 32), scripted=False),
    save("gpt_traced", Gpt(), torch.randint(0, 64, (1, 8)), scripted=False),
    save("gated_scripted", Gated(), None, scripted=True),
    # nn.LSTM scripted: an overloaded forward (printed as forward__0 / forward__1) whose weights
    # reach torch.lstm as the pickled list `_flat_weights`.
    save("lstm_scripted", nn.LSTM(8, 16, num_layers=2), None, scripted=True),
]
# A quantized module (eager-mode post-training quantization, traced): its conv and linear
# weights are int8 tensors inside packed-params objects, rebuilt by `__setstate__`.
class Quant(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = torch.ao.quantization.QuantStub()
        self.c = nn.Conv2d(3, 8, 3)
        self.r = nn.ReLU()
        self.f = nn.Linear(8, 4)
        self.dq = torch.ao.quantization.DeQuantStub()

    def forward(self, x):
        x = self.r(self.c(self.q(x)))
        return self.dq(self.f(x.mean((2, 3))))


qm = Quant().eval()
qm.qconfig = torch.ao.quantization.get_default_qconfig("fbgemm")
prepared = torch.ao.quantization.prepare(qm)
prepared(torch.randn(4, 3, 16, 16))
converted = torch.ao.quantization.convert(prepared)
with torch.no_grad():
    torch.jit.trace(converted, torch.randn(1, 3, 16, 16)).save("quant_traced.pt")
quant = {
    "file": "quant_traced.pt",
    "conv": {"shape": list(converted.c.weight().shape),
             "first": converted.c.weight().int_repr().reshape(-1)[:6].tolist(),
             "bias_first": converted.c.bias().reshape(-1)[:3].tolist()},
    "linear": {"shape": list(converted.f.weight().shape),
               "first": converted.f.weight().int_repr().reshape(-1)[:6].tolist()},
}

with open("facts.json", "w") as f:
    json.dump({"torch": torch.__version__, "files": facts, "quantized": quant}, f, indent=1)
    f.write("\n")
for x in facts:
    print(x["file"], sum((x["ops"] or {}).values()), "ops", len(x["edges"] or []), "edge kinds")

# A copy of cnn_traced.pt whose Linear code is not Python: the loader keeps the weights and warns.
import zipfile
with zipfile.ZipFile("cnn_traced.pt") as src, zipfile.ZipFile("broken_code.pt", "w") as dst:
    for info in src.infolist():
        body = src.read(info)
        if info.filename.endswith("code/__torch__/torch/nn/modules/linear.py"):
            lines = body.decode().splitlines()
            lines[8] = "    return torch.linear(input, weight, bias"
            body = ("\n".join(lines) + "\n").encode()
        dst.writestr(info, body, compress_type=info.compress_type)

# A copy whose root forward calls itself twice in every branch, 2^64 calls deep if followed: the
# loader must stop at its budgets, quickly, and say so.
with zipfile.ZipFile("cnn_traced.pt") as src, zipfile.ZipFile("recursive.pt", "w") as dst:
    for info in src.infolist():
        body = src.read(info)
        if info.filename.endswith("code/__torch__.py"):
            text = body.decode()
            head, rest = text.split("  def forward(", 1)
            body = (head + """  def forward(self: __torch__.Cnn,
    x: Tensor) -> Tensor:
    if bool(torch.gt(torch.sum(x), 0)):
      y = (self).forward(torch.relu(x), )
    else:
      y = (self).forward(torch.neg(x), )
    return torch.add(y, (self).forward(y, ))
""" + "class" + rest.split("\nclass", 1)[1] if "\nclass" in rest else "").encode()
        dst.writestr(info, body, compress_type=info.compress_type)
