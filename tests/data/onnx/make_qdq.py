"""Writes qdq_linear.onnx for tests/corpus.rs-style checks of quantized weights in QDQ form (the
layout onnxruntime's quantizer writes): x → MatMul(x, DequantizeLinear(w1)) → MatMul(·,
DequantizeLinear(w2)) → y, with w1 int8 [4, 3] quantized per column (axis 1, scales 0.1, 0.2,
0.3, zero points 0) and w2 uint8 [3, 2] with one scale 0.5 and zero point 128.

    pip install onnx && python3 tests/data/onnx/make_qdq.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
W1 = np.array([[11, -54, 101], [113, 41, -63], [-122, 32, 21], [-22, -90, 47]], dtype=np.int8)
W2 = np.array([[188, 205], [175, 229], [98, 249]], dtype=np.uint8)

inits = [
    numpy_helper.from_array(W1, "w1_q"),
    numpy_helper.from_array(np.array([0.1, 0.2, 0.3], dtype=np.float32), "w1_scale"),
    numpy_helper.from_array(np.zeros(3, dtype=np.int8), "w1_zero"),
    numpy_helper.from_array(W2, "w2_q"),
    numpy_helper.from_array(np.array(0.5, dtype=np.float32), "w2_scale"),
    numpy_helper.from_array(np.array(128, dtype=np.uint8), "w2_zero"),
]
nodes = [
    helper.make_node("DequantizeLinear", ["w1_q", "w1_scale", "w1_zero"], ["w1"], axis=1),
    helper.make_node("MatMul", ["x", "w1"], ["h"]),
    helper.make_node("DequantizeLinear", ["w2_q", "w2_scale", "w2_zero"], ["w2"]),
    helper.make_node("MatMul", ["h", "w2"], ["y"]),
]
graph = helper.make_graph(
    nodes,
    "qdq_linear",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
    inits,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
onnx.checker.check_model(model)
onnx.save(model, os.path.join(HERE, "qdq_linear.onnx"))
# What onnx's reference evaluator makes of the weights, for the test's expected values.
from onnx.reference import ReferenceEvaluator  # noqa: E402

for name in ["w1", "w2"]:
    m = helper.make_model(
        helper.make_graph(
            [n for n in nodes if n.output[0] == name],
            name,
            [],
            [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)],
            inits,
        ),
        opset_imports=[helper.make_opsetid("", 21)],
    )
    (v,) = ReferenceEvaluator(m).run(None, {})
    print(name, v.min(), v.max(), v.mean(), v.std(), v.tolist())
