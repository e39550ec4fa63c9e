"""Writes fp4.onnx and fp4_facts.json: OCP microscaling types as ONNX (IR 11, opset 23) stores
them. Three initializers beside an Identity each: `a` FLOAT4E2M1 [4, 8] typed (two codes to a
byte in `int32_data`), `b` FLOAT4E2M1 [3, 6] in `raw_data` (the low nibble first), and `s`
FLOAT8E8M0 [4] (powers of two). The facts are what onnx reads back (`numpy_helper.to_array`).

    pip install onnx && python3 tests/data/onnx/make_fp4.py
"""
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
E2M1 = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]
rng = np.random.default_rng(23)
A = rng.integers(0, 16, size=(4, 8))
B = rng.integers(0, 16, size=(3, 6))
a = helper.make_tensor("a", TensorProto.FLOAT4E2M1, [4, 8], [E2M1[c] for c in A.reshape(-1)])
packed = (B.reshape(-1)[0::2] | (B.reshape(-1)[1::2] << 4)).astype(np.uint8).tobytes()
b = helper.make_tensor("b", TensorProto.FLOAT4E2M1, [3, 6], packed, raw=True)
s = helper.make_tensor("s", TensorProto.FLOAT8E8M0, [4], bytes([127, 128, 120, 0]), raw=True)
inits = [a, b, s]
nodes = [helper.make_node("Identity", [n], [n + "_out"]) for n in "abs"]
graph = helper.make_graph(
    nodes, "fp4", [],
    [helper.make_tensor_value_info(n + "_out", t, shape)
     for n, t, shape in [("a", TensorProto.FLOAT4E2M1, [4, 8]),
                         ("b", TensorProto.FLOAT4E2M1, [3, 6]),
                         ("s", TensorProto.FLOAT8E8M0, [4])]],
    inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
model.ir_version = 11
onnx.checker.check_model(model)
onnx.save(model, os.path.join(HERE, "fp4.onnx"))

facts = {"onnx": onnx.__version__, "tensors": {}}
for t in model.graph.initializer:
    v = numpy_helper.to_array(t).astype(np.float64)
    facts["tensors"][t.name] = {
        "dtype": TensorProto.DataType.Name(t.data_type),
        "shape": list(t.dims),
        "values": [float(x) for x in v.reshape(-1)],
    }
with open(os.path.join(HERE, "fp4_facts.json"), "w") as f:
    json.dump(facts, f, indent=1)
    f.write("\n")
