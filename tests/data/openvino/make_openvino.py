"""Writes the OpenVINO IR fixtures and what OpenVINO itself reads back from them.

Run with openvino 2026.4, nncf 3 and torch (any recent versions):
    python make_openvino.py [PATH/TO/ch_ppocr_mobile_v2.0_cls_infer.onnx]
Writes, beside this script:
  ppocr_cls.xml/.bin   PP-OCR's direction classifier (the corpus ONNX file) converted by
                       `ov.convert_model` and saved with `ov.save_model`'s default FP16 compression
                       (each weight an f16 Const and a decompression Convert)
  tiny_gpt.xml/.bin    a small GPT-style PyTorch model (embedding, two pre-norm blocks with
                       attention and an MLP, a conv front end) converted from torch, saved in FP32:
                       op names carry the module path (`__module.blocks.0.attn.qkv/aten::linear/MatMul`)
  tiny_gpt_int8.xml/.bin      the same with its weights compressed by NNCF (`compress_weights`,
                       int8 asymmetric per channel: u8 weights, u8 zero points, f16 scales)
  tiny_gpt_int8_sym.xml/.bin  the same, int8 symmetric (i8 weights, f16 scales)
  tiny_gpt_int4.xml/.bin      the same, int4 asymmetric in groups of 16 (u4 weights [out, 2, 16]
                       and zero points, f16 scales per group, reshaped to [out, in]; NNCF keeps
                       the embedding and the head in int8)
  tiny_gpt_nf4.xml/.bin       the same in NF4 (4-bit NormalFloat codes, a scale per group of 16)
  tiny_gpt_mxfp4.xml/.bin     the same in MXFP4 (FP4 E2M1 codes, an E8M0 exponent per group of 32;
                       NNCF keeps the embedding in MXFP8: f8e4m3 with the same exponents)
  facts.json           per file: every op's name, type and inputs (producer names), every
                       Const's element type, shape, mean and first values, from
                       `ov.Core().read_model` (4-bit ones unpacked by OpenVINO); and every
                       compressed weight's real values, its decompression subgraph
                       (`(w - zero point) * scale`) computed by OpenVINO's CPU plugin
"""

import json
import os
import sys

import numpy as np
import openvino as ov
import openvino.opset13
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = nn.ModuleDict({"qkv": nn.Linear(d, 3 * d), "proj": nn.Linear(d, d)})
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.attn["qkv"](self.ln1(x)).chunk(3, dim=-1)
        q, k, v = (z.view(b, t, 4, d // 4).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn["proj"](y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    def __init__(self, vocab=64, d=32, layers=2):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.conv = nn.Conv1d(d, d, 3, padding=1)
        self.blocks = nn.ModuleList(Block(d) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, ids):
        x = self.wte(ids)
        x = x + self.conv(x.transpose(1, 2)).transpose(1, 2)
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln_f(x))


def const_of(output):
    """The Constant behind an op input, through Converts; None if it is computed."""
    node = output.get_node()
    while node.get_type_name() == "Convert":
        node = node.input_value(0).get_node()
    return node if node.get_type_name() == "Constant" else None


def evaluate(output):
    """An op output computed by OpenVINO's CPU plugin (a constant subgraph, no inputs)."""
    sub = ov.Model([ov.opset13.result(output)], [], "eval")
    req = ov.Core().compile_model(sub, "CPU").create_infer_request()
    req.infer({})
    return np.asarray(req.get_output_tensor(0).data, dtype=np.float64)


def dequantized(model):
    """Each compressed weight's real values: Multiply(Subtract(W, zero point) or W, scale), as
    OpenVINO computes that subgraph (in the scale's precision, f16 here)."""
    out = []
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Multiply":
            continue
        ins = [op.input_value(0), op.input_value(1)]
        for x, s in (ins, ins[::-1]):
            scale = const_of(s)
            if scale is None or not scale.get_element_type().is_real():
                continue
            xn = x.get_node()
            w = const_of(xn.input_value(0)) if xn.get_type_name() == "Subtract" else const_of(x)
            if w is None or (w.get_element_type().is_real()
                             and w.get_element_type().get_type_name()
                             not in ("nf4", "f4e2m1", "f8e4m3", "f8e5m2")):
                continue
            real = evaluate(op.output(0)).reshape(-1)
            out.append({
                "weight": w.get_friendly_name(),
                "scales": int(np.prod(list(scale.get_output_shape(0)))),
                "mean": float(real.mean()),
                "first": [float(v) for v in real[:4]],
            })
            break
    return out


def facts_of(xml):
    model = ov.Core().read_model(xml)
    ops, consts = [], []
    for op in model.get_ordered_ops():
        name, kind = op.get_friendly_name(), op.get_type_name()
        inputs = [i.get_source_output().get_node().get_friendly_name() for i in op.inputs()]
        ops.append({"name": name, "type": kind, "inputs": inputs})
        if kind == "Constant":
            et = op.get_element_type().get_type_name()
            if et in ("u4", "i4", "nf4", "f4e2m1", "f8e8m0", "f8e4m3", "f8e5m2"):
                # Packed two to a byte, or 8-bit floats: OpenVINO reads them (a Convert to f32).
                f = evaluate(ov.opset13.convert(op, "f32").output(0)).reshape(-1)
            else:
                f = np.asarray(op.get_data(), dtype=np.float64).reshape(-1)
            consts.append({
                "name": name,
                "element_type": et,
                "shape": list(op.get_output_shape(0)),
                "mean": float(f.mean()) if f.size else 0.0,
                "first": [float(x) for x in f[:4]],
            })
    return {"ops": ops, "consts": consts, "dequantized": dequantized(model)}


def main():
    torch.manual_seed(0)
    facts = {}
    onnx = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        HERE, "../../../../shared/corpus/real/ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx")
    m = ov.convert_model(onnx)
    ov.save_model(m, os.path.join(HERE, "ppocr_cls.xml"))
    facts["ppocr_cls.xml"] = facts_of(os.path.join(HERE, "ppocr_cls.xml"))

    gpt = TinyGPT().eval()
    with torch.no_grad():
        m = ov.convert_model(gpt, example_input=torch.zeros(1, 8, dtype=torch.long))
    ov.save_model(m, os.path.join(HERE, "tiny_gpt.xml"), compress_to_fp16=False)
    facts["tiny_gpt.xml"] = facts_of(os.path.join(HERE, "tiny_gpt.xml"))

    import nncf

    for name, mode, group in [("tiny_gpt_int8.xml", nncf.CompressWeightsMode.INT8_ASYM, -1),
                              ("tiny_gpt_int8_sym.xml", nncf.CompressWeightsMode.INT8_SYM, -1),
                              ("tiny_gpt_int4.xml", nncf.CompressWeightsMode.INT4_ASYM, 16),
                              ("tiny_gpt_nf4.xml", nncf.CompressWeightsMode.NF4, 16),
                              ("tiny_gpt_mxfp4.xml", nncf.CompressWeightsMode.MXFP4, 32)]:
        fp32 = ov.Core().read_model(os.path.join(HERE, "tiny_gpt.xml"))
        if mode == nncf.CompressWeightsMode.MXFP4:
            # MX groups run along one axis: the conv front end stays as it is.
            m = nncf.compress_weights(fp32, mode=mode, group_size=group, ratio=1.0,
                                      ignored_scope=nncf.IgnoredScope(types=["Convolution"]))
        elif group > 0:
            m = nncf.compress_weights(fp32, mode=mode, group_size=group, ratio=1.0)
        else:
            m = nncf.compress_weights(fp32, mode=mode)
        ov.save_model(m, os.path.join(HERE, name), compress_to_fp16=False)
        facts[name] = facts_of(os.path.join(HERE, name))

    with open(os.path.join(HERE, "facts.json"), "w") as f:
        json.dump({"openvino": ov.__version__, "torch": torch.__version__, "files": facts}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
