"""Writes nbits_asym.onnx / nbits_sym.onnx and nbits_facts.json: a two-layer MLP (96 → 64 → 40)
whose MatMuls onnxruntime's `MatMulNBitsQuantizer` turned into `com.microsoft.MatMulNBits`
(4-bit, blocks of 32: three blocks a row in the first layer, so its packed zero points are padded
per row), asymmetric (with zero points) and symmetric (without: the default 8). The facts are
each weight as onnxruntime itself dequantizes it: a one-node model of that MatMulNBits fed the
identity matrix returns the real weight.

    pip install onnx onnxruntime onnx_ir && python3 tests/data/onnx/make_nbits.py
"""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

HERE = os.path.dirname(os.path.abspath(__file__))


def mlp():
    rng = np.random.default_rng(0)
    w1 = (rng.normal(size=(96, 64)) * 0.05).astype(np.float32)
    w2 = (rng.normal(size=(64, 40)) * 0.05).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
         helper.make_node("Relu", ["h"], ["r"], name="relu"),
         helper.make_node("MatMul", ["r", "w2"], ["y"], name="fc2")],
        "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 96])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 40])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def real_weight(model, node):
    """The node's weight as onnxruntime computes it: I_K × dequant(B)ᵀ, transposed to [N, K]."""
    k = next(a.i for a in node.attribute if a.name == "K")
    inits = [i for i in model.graph.initializer if i.name in node.input[1:]]
    g = helper.make_graph([helper.make_node("MatMulNBits", ["a"] + list(node.input[1:]), ["y"],
                                            domain="com.microsoft",
                                            **{a.name: helper.get_attribute_value(a) for a in node.attribute})],
                          "one", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [k, k])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"a": np.eye(k, dtype=np.float32)})[0].T.astype(np.float64)


facts = {}
for name, symmetric in [("nbits_asym.onnx", False), ("nbits_sym.onnx", True)]:
    q = MatMulNBitsQuantizer(mlp(), block_size=32, is_symmetric=symmetric)
    q.process()
    model = q.model.model
    onnx.save(model, os.path.join(HERE, name))
    facts[name] = {}
    for node in model.graph.node:
        if node.op_type == "MatMulNBits":
            w = real_weight(model, node)
            facts[name][node.input[1]] = {"shape": list(w.shape), "mean": float(w.mean()),
                                          "first": [float(v) for v in w.reshape(-1)[:4]],
                                          "zero_points": len(node.input) > 3}
with open(os.path.join(HERE, "nbits_facts.json"), "w") as f:
    json.dump({"onnxruntime": ort.__version__, "files": facts}, f, indent=1)
    f.write("\n")
