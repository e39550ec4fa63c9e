"""Writes control.xml / control.bin (an OpenVINO IR with If, Loop and TensorIterator bodies, one
If nested in the Loop's body) and control_facts.json: what OpenVINO's own reader reports for each
body (its ops, parameters, which of the owner's inputs feeds which parameter, back edges).

The IR is OpenVINO's conversion of an ONNX model written here with onnx.helper: ONNX If → If,
Loop → Loop, Scan → TensorIterator.

    python make_control.py        (onnx 1.23, openvino 2026.4)
"""
import json
import os
import tempfile

import numpy as np
import onnx
import openvino as ov
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

HERE = os.path.dirname(os.path.abspath(__file__))


def vi(name, ty, shape):
    return h.make_tensor_value_info(name, ty, shape)


def onnx_model():
    rng = np.random.default_rng(7)
    w1 = nh.from_array(rng.standard_normal((4, 3)).astype(np.float32), "then/W1")
    w2 = nh.from_array(rng.standard_normal((4, 3)).astype(np.float32), "else/W2")
    # If: c ? x @ W1 : (c ? relu : neg)(x @ W2), an If nested in the else branch (reading the
    # outer condition and the branch's product by name).
    then_g = h.make_graph([h.make_node("MatMul", ["x", "then/W1"], ["t0"], name="then/matmul")],
                          "then_body", [], [vi("t0", T.FLOAT, [2, 3])], initializer=[w1])
    inner_then = h.make_graph([h.make_node("Relu", ["e0"], ["e1"], name="else/relu")],
                              "inner_then", [], [vi("e1", T.FLOAT, [2, 3])])
    inner_else = h.make_graph([h.make_node("Neg", ["e0"], ["e2"], name="else/neg")],
                              "inner_else", [], [vi("e2", T.FLOAT, [2, 3])])
    else_g = h.make_graph([h.make_node("MatMul", ["x", "else/W2"], ["e0"], name="else/matmul"),
                           h.make_node("Not", ["c"], ["nc"], name="else/not"),
                           h.make_node("If", ["nc"], ["e3"], name="else/choose",
                                       then_branch=inner_then, else_branch=inner_else)],
                          "else_body", [], [vi("e3", T.FLOAT, [2, 3])], initializer=[w2])
    # Loop, M times: v = v * 0.5 + y (y, the If's result, read by name).
    half = nh.from_array(np.array(0.5, np.float32), "loop/half")
    body = h.make_graph([
        h.make_node("Mul", ["v_in", "loop/half"], ["v_half"], name="loop/mul"),
        h.make_node("Add", ["v_half", "y"], ["v_out"], name="loop/add"),
        h.make_node("Identity", ["cond_in"], ["cond_out"], name="loop/cond"),
    ], "loop_body", [vi("i", T.INT64, []), vi("cond_in", T.BOOL, []), vi("v_in", T.FLOAT, [2, 3])],
        [vi("cond_out", T.BOOL, []), vi("v_out", T.FLOAT, [2, 3])], initializer=[half])
    # Scan (TensorIterator): a running sum over the rows of s.
    scan_body = h.make_graph([
        h.make_node("Add", ["acc_in", "row"], ["acc_out"], name="scan/add"),
        h.make_node("Identity", ["acc_out"], ["row_out"], name="scan/id"),
    ], "scan_body", [vi("acc_in", T.FLOAT, [3]), vi("row", T.FLOAT, [3])],
        [vi("acc_out", T.FLOAT, [3]), vi("row_out", T.FLOAT, [3])])
    nodes = [
        h.make_node("If", ["c"], ["y"], name="branch", then_branch=then_g, else_branch=else_g),
        h.make_node("Loop", ["M", "c", "y0"], ["v"], name="repeat", body=body),
        h.make_node("Scan", ["acc0", "s"], ["acc", "rows"], name="cumsum", body=scan_body,
                    num_scan_inputs=1),
    ]
    g = h.make_graph(nodes, "control",
                     [vi("c", T.BOOL, []), vi("x", T.FLOAT, [2, 4]), vi("M", T.INT64, []),
                      vi("y0", T.FLOAT, [2, 3]), vi("acc0", T.FLOAT, [3]), vi("s", T.FLOAT, [5, 3])],
                     [vi("v", T.FLOAT, [2, 3]), vi("acc", T.FLOAT, [3]), vi("rows", T.FLOAT, [5, 3])])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)], producer_name="make_control.py")
    onnx.checker.check_model(m, full_check=True)
    return m


def bodies_of(op):
    kind = op.get_type_name()
    if kind == "If":
        return [("then_body", op.get_then_body(), op.get_input_descriptions(0),
                 op.get_output_descriptions(0)),
                ("else_body", op.get_else_body(), op.get_input_descriptions(1),
                 op.get_output_descriptions(1))]
    if kind in ("Loop", "TensorIterator"):
        return [("body", op.get_function(), op.get_input_descriptions(),
                 op.get_output_descriptions())]
    return []


def owners_in(model):
    """Every op with bodies in `model`, with what OpenVINO says of each body."""
    out = []
    for op in model.get_ordered_ops():
        bodies = []
        for tag, f, ins, _ in bodies_of(op):
            params = [p.get_friendly_name() for p in f.get_parameters()]
            results = [r.get_friendly_name() for r in f.get_results()]
            bodies.append({
                "tag": tag,
                "ops": sorted([o.get_friendly_name(), o.get_type_name()]
                              for o in f.get_ordered_ops()
                              if o.get_type_name() not in ("Parameter", "Result", "Constant")),
                "parameters": params,
                "results": results,
                "inputs": [{"input_index": d.input_index,
                            "parameter": params[d.body_parameter_index]} for d in ins],
                "back_edges": [{"from": results[d.body_value_index],
                                "to": params[d.body_parameter_index]}
                               for d in ins if hasattr(d, "body_value_index")],
                "owners": owners_in(f),
            })
        if bodies:
            out.append({"name": op.get_friendly_name(), "type": op.get_type_name(),
                        "bodies": bodies})
    return out


def main():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "control.onnx")
        onnx.save(onnx_model(), path)
        m = ov.convert_model(path)
    xml = os.path.join(HERE, "control.xml")
    ov.save_model(m, xml, compress_to_fp16=False)
    model = ov.Core().read_model(xml)
    # It runs: the Loop twice with c true, from y0 = 0.
    c = np.array(True)
    x = np.arange(8, dtype=np.float32).reshape(2, 4) / 8
    feeds = {"c": c, "x": x, "M": np.array(2, np.int64), "y0": np.zeros((2, 3), np.float32),
             "acc0": np.zeros(3, np.float32), "s": np.ones((5, 3), np.float32)}
    out = ov.Core().compile_model(model, "CPU")(feeds)
    facts = {
        "openvino": ov.__version__,
        "onnx": onnx.__version__,
        "owners": owners_in(model),
        "v": [float(v) for v in out["v"].reshape(-1)],
    }
    with open(os.path.join(HERE, "control_facts.json"), "w") as f:
        json.dump(facts, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
