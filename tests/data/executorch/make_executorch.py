"""Writes the ExecuTorch programs (`.pte`) that tests/executorch.rs reads, and facts.json: what
ExecuTorch's own deserializer (`exir._serialize._program.deserialize_pte_binary`) reads from them.

- `cnn.pte`: a small CNN (conv, batch norm folded or not, ReLU, pooling, linear) exported with
  `torch.export` and lowered to ExecuTorch's portable out-variant kernels (`to_edge(…)
  .to_executorch()`), its weights in the constant segment after the flatbuffer.
- `cnn_xnnpack.pte`: the same model delegated to XNNPACK (`to_edge_transform_and_lower` with
  `XnnpackPartitioner`), as ExecuTorch's mobile examples ship: one `DelegateCall`, whose blob's
  graph is read back with `flatc` and the backend's schema.
- `external/linear.pte` and `external/_default_external_constant.ptd`: a linear layer exported
  with `external_constants=True`, its weights in the `.ptd` data file by name (as large LLM
  exports ship them), read back with ExecuTorch's flat-tensor deserializer.

Run from this folder with executorch and torchao installed:  python3 make_executorch.py
The committed files were written by ExecuTorch 1.5.1 and PyTorch 2.14 on 2026-11-29.
"""
import json
import os
import re

import numpy as np
import torch
from executorch.exir import to_edge, to_edge_transform_and_lower
from executorch.exir._serialize._program import deserialize_pte_binary

HERE = os.path.dirname(os.path.abspath(__file__))

# ScalarType → numpy, for the constants the fixtures hold.
NUMPY = {6: np.float32, 4: np.int64, 7: np.float64, 5: np.float16}


class Cnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(4, 5)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        return self.fc(torch.flatten(self.pool(y), 1))


def model():
    torch.manual_seed(11)
    m = Cnn().eval()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-0.5, 0.5)
        m.bn.running_var.uniform_(0.5, 1.5)
    return m, (torch.randn(1, 3, 8, 8),)


def xnnpack_facts(blob, named):
    """The graph in an XNNPACK delegate's blob, as flatc reads it with the backend's schema; its
    constants in the blob's constant data or, by key, in the program's named data."""
    import subprocess
    import tempfile

    import executorch

    root = list(executorch.__path__)[0]
    assert blob[4:8] == b"XH00"
    fb_off, fb_size, c_off = (int.from_bytes(blob[a:b], "little") for a, b in [(10, 14), (14, 18), (18, 22)])
    constants = blob[c_off:]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "graph.bin")
        with open(path, "wb") as f:
            f.write(blob[fb_off : fb_off + fb_size])
        schema = os.path.join(root, "backends/xnnpack/serialization/schema.fbs")
        flatc = os.path.join(root, "data/bin/flatc")
        subprocess.run(
            [flatc, "--json", "--strict-json", "--raw-binary", "--defaults-json", "-o", tmp, schema, "--", path],
            check=True,
        )
        with open(os.path.join(tmp, "graph.json")) as f:
            # flatc writes infinities as `inf`, which JSON spells `Infinity`.
            g = json.loads(re.sub(r":\s*(-?)inf\b", r": \1Infinity", f.read()))
    values = []
    for v in g["xvalues"]:
        t = v["xvalue_union"]
        t = t.get("tensor_value", t)
        item = {"id": t["id_out"], "dims": t["dims"], "constant": t["constant_buffer_idx"]}
        if t["constant_buffer_idx"] > 0:
            c = g["constant_data"][t["constant_buffer_idx"]]
            if c.get("named_key"):
                raw = named[c["named_key"]][: int(c["size"])]
            else:
                raw = constants[int(c["offset"]) : int(c["offset"]) + int(c["size"])]
            a = np.frombuffer(raw, dtype=np.float32)
            a = a.astype(np.float64)
            item.update(mean=float(a.mean()), first=a[:4].tolist())
        values.append(item)
    return {
        "nodes": [n["xnode_union_type"] for n in g["xnodes"]],
        "inputs": g["input_ids"],
        "outputs": g["output_ids"],
        "values": values,
    }


def facts_of(data):
    pte = deserialize_pte_binary(data)
    program = pte.program if hasattr(pte, "program") else pte
    named = {}
    if getattr(pte, "named_data", None) is not None:
        store = pte.named_data
        named = {k: store.buffers[e.buffer_index] for k, e in store.pte_data.items()}
    plan = next(p for p in program.execution_plan if p.name == "forward")
    methods = {
        p.name: [next(iter(vars(p.values[o].val).values())) for o in p.outputs]
        for p in program.execution_plan
        if p.name != "forward"
    }
    values = []
    for v in plan.values:
        kind = type(v.val).__name__
        item = {"kind": kind}
        if kind == "Tensor":
            t = v.val
            item.update(scalar_type=int(t.scalar_type), sizes=list(t.sizes), buffer=t.data_buffer_idx)
            external = t.extra_tensor_info is not None and int(t.extra_tensor_info.location) == 1
            if external:
                item["fqn"] = t.extra_tensor_info.fully_qualified_name
            elif t.data_buffer_idx > 0:
                raw = bytes(program.constant_buffer[t.data_buffer_idx].storage)
                a = np.frombuffer(raw, dtype=NUMPY[int(t.scalar_type)])[: int(np.prod(t.sizes))]
                a = a.astype(np.float64)
                item.update(mean=float(a.mean()), first=a[:4].tolist())
        elif kind in ("Int", "Double", "Bool"):
            item["value"] = next(iter(vars(v.val).values()))
        elif kind in ("IntList", "TensorList", "BoolList", "DoubleList"):
            item["items"] = list(v.val.items)
        values.append(item)
    instructions = []
    for ins in plan.chains[0].instructions:
        a = ins.instr_args
        kind = type(a).__name__
        if kind == "KernelCall":
            op = plan.operators[a.op_index]
            instructions.append({"kind": kind, "op": op.name, "overload": op.overload, "args": list(a.args)})
        elif kind == "DelegateCall":
            instructions.append({"kind": kind, "delegate": plan.delegates[a.delegate_index].id, "args": list(a.args)})
        else:
            instructions.append({"kind": kind})
    return {
        "plan": plan.name,
        "methods": methods,
        "inputs": list(plan.inputs),
        "outputs": list(plan.outputs),
        "values": values,
        "instructions": instructions,
        "delegates": [
            {
                "id": d.id,
                "size": len(program.backend_delegate_data[d.processed.index].data),
                "graph": xnnpack_facts(
                    bytes(program.backend_delegate_data[d.processed.index].data), named
                ),
            }
            for d in plan.delegates
        ],
    }


def external():
    """A program whose weights live in a `.ptd` file beside it."""
    from executorch.exir import ExecutorchBackendConfig
    from executorch.extension.flat_tensor.serialize.serialize import _deserialize_to_flat_tensor

    out = os.path.join(HERE, "external")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(5)
    ep = torch.export.export(torch.nn.Linear(4, 3).eval(), (torch.randn(1, 4),))
    prog = to_edge(ep).to_executorch(ExecutorchBackendConfig(external_constants=True))
    with open(os.path.join(out, "linear.pte"), "wb") as f:
        f.write(prog.buffer)
    prog.write_tensor_data_to_file(out)
    (ptd,) = [n for n in os.listdir(out) if n.endswith(".ptd")]
    with open(os.path.join(out, ptd), "rb") as f:
        data = f.read()
    ft = _deserialize_to_flat_tensor(data)
    base = int.from_bytes(data[32:40], "little")
    tensors = {}
    for n in ft.named_data:
        seg = ft.segments[n.segment_index]
        a = np.frombuffer(data[base + seg.offset : base + seg.offset + seg.size], dtype=np.float32)
        a = a.astype(np.float64)
        tensors[n.key] = {"sizes": list(n.tensor_layout.sizes), "mean": float(a.mean()), "first": a[:4].tolist()}
    return prog.buffer, {"ptd": ptd, "tensors": tensors}


def main():
    m, args = model()
    ep = torch.export.export(m, args)
    # The constant methods an LLM export carries beside `forward`.
    methods = {"get_max_seq_len": 128, "use_kv_cache": False, "get_eos_ids": [2, 7]}
    portable = to_edge(ep, constant_methods=methods).to_executorch().buffer
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    ep = torch.export.export(m, args)
    xnnpack = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch().buffer
    facts = {}
    for name, data in [("cnn.pte", portable), ("cnn_xnnpack.pte", xnnpack)]:
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        facts[name] = facts_of(data)
    data, ext = external()
    facts["external/linear.pte"] = dict(facts_of(data), external=ext)
    with open(os.path.join(HERE, "facts.json"), "w") as f:
        json.dump(facts, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
