"""Writes facts.json: what Google's own readers report for the .tflite files here, for
tests/tflite.rs. The ops, tensors and values of the real models come from the LiteRT interpreter
(`ai-edge-litert`, run once on zero inputs with every tensor kept, so a sparse weight's dense
values are its DENSIFY op's output); which tensors are constant, the quantization, and everything
of the models with a custom op no interpreter here has (`Convolution2DTransposeBias`, synthetic.tflite's) from the `tflite` package's flatbuffer
reader.

    pip install ai-edge-litert tflite && python3 tests/data/tflite/make_facts.py
"""
import json
import os

import numpy as np
import tflite as T
from ai_edge_litert.interpreter import Interpreter, OpResolverType

HERE = os.path.dirname(os.path.abspath(__file__))
REAL = [
    "face_detection_short_range.tflite",
    "face_detection_full_range_sparse.tflite",
    "hand_recrop.tflite",
]
# Models with a custom op no interpreter here has: read with the flatbuffer reader only.
READER_ONLY = ["selfie_segmentation.tflite", "synthetic.tflite"]
OPS = {v: k for k, v in vars(T.BuiltinOperator).items() if not k.startswith("_")}
TYPES = {v: k for k, v in vars(T.TensorType).items() if not k.startswith("_")}
NP = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32, "INT8": np.int8,
    "UINT8": np.uint8, "INT64": np.int64, "BOOL": np.bool_, "INT16": np.int16,
}


def stats(values):
    v = np.asarray(values, dtype=np.float64).ravel()
    return {
        "mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()),
        "max": float(v.max()), "zeros": int((v == 0).sum()), "first": [float(x) for x in v[:8]],
    }


PADDING = {v: k for k, v in vars(T.Padding).items() if not k.startswith("_")}
ACT = {v: k for k, v in vars(T.ActivationFunctionType).items() if not k.startswith("_")}


def conv_options(o, op_name):
    t = o.BuiltinOptions()
    c = T.Conv2DOptions() if op_name == "CONV_2D" else T.DepthwiseConv2DOptions()
    c.Init(t.Bytes, t.Pos)
    return {
        "padding": PADDING[c.Padding()], "stride_w": c.StrideW(), "stride_h": c.StrideH(),
        "fused_activation_function": ACT[c.FusedActivationFunction()],
        "dilation_h_factor": c.DilationHFactor(),
    }


def name(s):
    return s.decode() if isinstance(s, bytes) else s


def read(path):
    buf = open(path, "rb").read()
    m = T.Model.GetRootAsModel(buf, 0)
    return buf, m


def buffer_bytes(buf, m, i):
    b = m.Buffers(i)
    if b.Offset() > 1:
        return buf[b.Offset(): b.Offset() + b.Size()]
    return b.DataAsNumpy().tobytes() if b.DataLength() else b""


def subgraph_facts(buf, m, gi, op_list, values):
    """op_list: (op name, inputs, outputs) per op; values(i) → the tensor's values."""
    g = m.Subgraphs(gi)
    tensors = [g.Tensors(i) for i in range(g.TensorsLength())]
    const = {i for i, t in enumerate(tensors) if buffer_bytes(buf, m, t.Buffer())}
    alias = {}
    ops = []
    for k, (op_name, ins, outs) in enumerate(op_list):
        ins, outs = list(ins), list(outs)
        if (op_name in ("DEQUANTIZE", "DENSIFY") and len(ins) == 1 and len(outs) == 1
                and (ins[0] in const or ins[0] in alias)):
            alias[outs[0]] = alias.get(ins[0], ins[0])
            continue
        tname = lambda i: None if i < 0 else name(tensors[alias.get(i, i)].Name())
        ops.append({
            "op": op_name,
            "name": name(tensors[outs[0]].Name()).split(";")[0] if outs else None,
            "inputs": [tname(i) for i in ins],
            "outputs": [tname(i) for i in outs],
        })
        if op_name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            ops[-1]["options"] = conv_options(g.Operators(k), op_name)
    weights = []
    for i in sorted(const):
        t = tensors[i]
        ttype = TYPES[t.Type()]
        q = t.Quantization()
        entry = {
            "name": name(t.Name()), "dtype": ttype, "shape": [int(d) for d in t.ShapeAsNumpy()]
            if t.ShapeLength() else [],
            "sparse": t.Sparsity() is not None,
            "scales": [float(s) for s in q.ScaleAsNumpy()] if q and q.ScaleLength() else [],
            "zero_points": [int(z) for z in q.ZeroPointAsNumpy()] if q and q.ZeroPointLength() else [],
        }
        entry.update(stats(values(i, ttype, entry["shape"])))
        weights.append(entry)
    return {
        "name": name(g.Name()),
        "inputs": [name(tensors[i].Name()) for i in g.InputsAsNumpy()],
        "outputs": [name(tensors[i].Name()) for i in g.OutputsAsNumpy()],
        "file_ops": len(op_list),
        "ops": ops,
        "weights": weights,
    }


def real(path):
    buf, m = read(path)
    it = Interpreter(
        model_path=path, experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    it.invoke()
    details = it.get_ops_details() if hasattr(it, "get_ops_details") else it._get_ops_details()
    op_list = [(d["op_name"], d["inputs"], d["outputs"]) for d in details]
    densified = {int(d["inputs"][0]): int(d["outputs"][0]) for d in details
                 if d["op_name"] == "DENSIFY"}

    def values(i, ttype, shape):
        return it.get_tensor(densified.get(i, i))

    facts = subgraph_facts(buf, m, 0, op_list, values)
    facts["subgraphs"] = [facts.pop("name")]
    facts["description"] = name(m.Description())
    facts["reference"] = "litert interpreter"
    return facts


def reader_only(path):
    buf, m = read(path)
    out = None
    for gi in range(m.SubgraphsLength()):
        g = m.Subgraphs(gi)
        op_list = []
        for k in range(g.OperatorsLength()):
            o = g.Operators(k)
            c = m.OperatorCodes(o.OpcodeIndex())
            code = max(c.BuiltinCode(), c.DeprecatedBuiltinCode())
            op_name = name(c.CustomCode()) if OPS[code] == "CUSTOM" else OPS[code]
            op_list.append((op_name, list(o.InputsAsNumpy()), list(o.OutputsAsNumpy())))
        tensors = [g.Tensors(i) for i in range(g.TensorsLength())]

        def values(i, ttype, shape, tensors=tensors):
            raw = buffer_bytes(buf, m, tensors[i].Buffer())
            return np.frombuffer(raw, dtype=NP[ttype]).reshape(shape)

        facts = subgraph_facts(buf, m, gi, op_list, values)
        if out is None:
            out = facts
            out["subgraphs"] = [facts.pop("name")]
            out["nested"] = []
        else:
            out["subgraphs"].append(facts["name"])
            out["nested"].append(facts)
    out["description"] = name(m.Description())
    out["reference"] = "tflite flatbuffer reader"
    return out


def main():
    files = {f: real(os.path.join(HERE, f)) for f in REAL}
    for f in READER_ONLY:
        files[f] = reader_only(os.path.join(HERE, f))
    with open(os.path.join(HERE, "facts.json"), "w") as f:
        json.dump({"files": files}, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
