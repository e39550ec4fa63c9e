"""Writes qdq_if.onnx for tests/quantized.rs: a QDQ weight inside a subgraph. An If node's
then_branch computes MatMul(x, DequantizeLinear(wt_q)), its int8 weight an initializer of the
branch, its per-column scales (0.25, 0.5, 1.0) an initializer of the main graph read from the outer
scope; the else_branch multiplies by a float weight. Prints what onnx's reference evaluator makes
of the branch's weight, for the test's expected values.

    pip install onnx && python3 tests/data/onnx/make_qdq_if.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
WT = np.array([[12, -7, 100], [-128, 64, 3], [5, 5, -90], [77, -33, 1]], dtype=np.int8)
SCALE = np.array([0.25, 0.5, 1.0], dtype=np.float32)
WE = np.arange(12, dtype=np.float32).reshape(4, 3) / 10

then_graph = helper.make_graph(
    [
        helper.make_node("DequantizeLinear", ["wt_q", "wt_scale"], ["wt"], axis=1),
        helper.make_node("MatMul", ["x", "wt"], ["y_then"]),
    ],
    "then_branch",
    [],
    [helper.make_tensor_value_info("y_then", TensorProto.FLOAT, [1, 3])],
    [numpy_helper.from_array(WT, "wt_q")],
)
else_graph = helper.make_graph(
    [helper.make_node("MatMul", ["x", "we"], ["y_else"])],
    "else_branch",
    [],
    [helper.make_tensor_value_info("y_else", TensorProto.FLOAT, [1, 3])],
    [numpy_helper.from_array(WE, "we")],
)
graph = helper.make_graph(
    [helper.make_node("If", ["flag"], ["y"], then_branch=then_graph, else_branch=else_graph)],
    "qdq_if",
    [
        helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
    ],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    [numpy_helper.from_array(SCALE, "wt_scale")],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
onnx.checker.check_model(model)
onnx.save(model, os.path.join(HERE, "qdq_if.onnx"))

from onnx.reference import ReferenceEvaluator  # noqa: E402

m = helper.make_model(
    helper.make_graph(
        [helper.make_node("DequantizeLinear", ["wt_q", "wt_scale"], ["wt"], axis=1)],
        "wt",
        [],
        [helper.make_tensor_value_info("wt", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(WT, "wt_q"), numpy_helper.from_array(SCALE, "wt_scale")],
    ),
    opset_imports=[helper.make_opsetid("", 21)],
)
(v,) = ReferenceEvaluator(m).run(None, {})
print("wt", v.min(), v.max(), v.mean(), v.std(), v.tolist())
