"""Writes int4.onnx and int4_facts.json: 4-bit weights as ONNX (IR 10, opset 21) stores them,
two to a byte, the low nibble first. x → MatMul(x, DequantizeLinear(w1)) → MatMul(·,
DequantizeLinear(w2)) → y, with w1 INT4 [4, 6] (typed: packed bytes in `int32_data`) per column
(axis 1, six scales, zero points 0) and w2 UINT4 [6, 3] (`raw_data`) with one scale and zero
point 8. The facts are what onnx reads back: each weight's integers (`numpy_helper.to_array`)
and its real values (`onnx.reference` running each DequantizeLinear).

    pip install onnx && python3 tests/data/onnx/make_int4.py
"""
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(4)
W1 = rng.integers(-8, 8, size=(4, 6))
W2 = rng.integers(0, 16, size=(6, 3))

w1 = helper.make_tensor("w1_q", TensorProto.INT4, [4, 6], W1.reshape(-1).tolist())
packed = (W2.reshape(-1)[0::2] | (W2.reshape(-1)[1::2] << 4)).astype(np.uint8).tobytes()
w2 = helper.make_tensor("w2_q", TensorProto.UINT4, [6, 3], packed, raw=True)
inits = [
    w1,
    numpy_helper.from_array(np.linspace(0.05, 0.3, 6).astype(np.float32), "w1_scale"),
    helper.make_tensor("w1_zero", TensorProto.INT4, [6], [0] * 6),
    w2,
    numpy_helper.from_array(np.array(0.25, dtype=np.float32), "w2_scale"),
    helper.make_tensor("w2_zero", TensorProto.UINT4, [], [8]),
]
nodes = [
    helper.make_node("DequantizeLinear", ["w1_q", "w1_scale", "w1_zero"], ["w1"], axis=1),
    helper.make_node("MatMul", ["x", "w1"], ["h"]),
    helper.make_node("DequantizeLinear", ["w2_q", "w2_scale", "w2_zero"], ["w2"]),
    helper.make_node("MatMul", ["h", "w2"], ["y"]),
]
graph = helper.make_graph(
    nodes,
    "int4",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    inits,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
model.ir_version = 10
onnx.checker.check_model(model)
onnx.save(model, os.path.join(HERE, "int4.onnx"))

facts = {}
for name, out in [("w1_q", "w1"), ("w2_q", "w2")]:
    t = next(i for i in model.graph.initializer if i.name == name)
    ints = numpy_helper.to_array(t).astype(np.int64)
    sub = helper.make_model(
        helper.make_graph([n for n in nodes if n.output[0] == out], "dq", [],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits),
        opset_imports=[helper.make_opsetid("", 21)])
    sub.ir_version = 10
    real = ReferenceEvaluator(sub).run(None, {})[0]
    facts[name] = {
        "dtype": "INT4" if t.data_type == TensorProto.INT4 else "UINT4",
        "shape": list(t.dims),
        "ints": ints.reshape(-1).tolist(),
        "real": [float(v) for v in np.asarray(real, dtype=np.float64).reshape(-1)],
    }
with open(os.path.join(HERE, "int4_facts.json"), "w") as f:
    json.dump({"onnx": onnx.__version__, "tensors": facts}, f, indent=1)
    f.write("\n")
