"""Writes control.mlpackage (an ML program with a `cond` and a `while_loop`, built with
coremltools' MIL builder, weights read inside the blocks) and control_facts.json: what
coremltools reads back of each operation holding blocks (each block's inputs, outputs and
operations, constants left out) and the weights' first values.

    python make_control.py        (coremltools 9; conversion runs on Linux)
"""
import json
import os
import shutil

import coremltools as ct
import numpy as np
from coremltools.converters.mil import Builder as mb
from coremltools.converters.mil.mil import types

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(3)
W_THEN = rng.standard_normal((6, 4)).astype(np.float32)
W_ELSE = rng.standard_normal((6, 4)).astype(np.float32)
W_LOOP = rng.standard_normal((6, 6)).astype(np.float32)


@mb.program(input_specs=[mb.TensorSpec(shape=(1, 4)), mb.TensorSpec(shape=(1,), dtype=types.int32)],
            opset_version=ct.target.iOS17)
def prog(x, n):
    s = mb.reduce_sum(x=x, name="total")
    positive = mb.greater(x=s, y=0.0, name="positive")

    def then_fn():
        return mb.linear(x=x, weight=W_THEN, name="then_linear")

    def else_fn():
        y = mb.linear(x=x, weight=W_ELSE, name="else_linear")
        return mb.relu(x=y, name="else_relu")

    h = mb.cond(pred=positive, _true_fn=then_fn, _false_fn=else_fn, name="branch")

    def loop_cond(i, v):
        return mb.less(x=i, y=n, name="more")

    def loop_body(i, v):
        v2 = mb.linear(x=v, weight=W_LOOP, name="loop_linear")
        v3 = mb.tanh(x=v2, name="loop_tanh")
        return mb.add(x=i, y=1, name="next_i"), v3

    i0 = mb.const(val=np.array([0], np.int32), name="i0")
    _, out = mb.while_loop(_cond=loop_cond, _body=loop_body, loop_vars=(i0, h), name="repeat")
    return mb.identity(x=out, name="out")


def blocks_of(block):
    """Every operation of `block` holding blocks, with what each block holds."""
    owners = []
    for op in block.operations:
        if not op.blocks:
            continue
        owners.append({
            "type": op.type,
            "outputs": [o.name for o in op.outputs],
            "blocks": [{
                "inputs": [i.name for i in b.inputs],
                "outputs": list(b.outputs),
                "operations": [o.type for o in b.operations if o.type != "const"],
                "owners": blocks_of(b),
            } for b in op.blocks],
        })
    return owners


def main():
    path = os.path.join(HERE, "control.mlpackage")
    shutil.rmtree(path, ignore_errors=True)
    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
                       compute_precision=ct.precision.FLOAT32)
    model.save(path)
    spec = ct.models.MLModel(path, skip_model_load=True).get_spec()
    main_fn = spec.mlProgram.functions["main"]
    block = main_fn.block_specializations[main_fn.opset]
    facts = {
        "coremltools": ct.__version__,
        "owners": blocks_of(block),
        "weights": {name: [float(v) for v in w.reshape(-1)[:4]]
                    for name, w in [("then", W_THEN), ("else", W_ELSE), ("loop", W_LOOP)]},
    }
    with open(os.path.join(HERE, "control_facts.json"), "w") as f:
        json.dump(facts, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
