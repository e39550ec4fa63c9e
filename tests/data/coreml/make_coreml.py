"""Writes the Core ML fixtures (ML programs, `.mlpackage`) and what coremltools reads back.

Run with coremltools 9 and torch (any recent versions; conversion runs on Linux):
    python make_coreml.py
Packages are not byte-identical from run to run (each manifest holds fresh UUIDs): a rerun
rewrites them all, with their facts.
Writes, beside this script:
  cnn.mlpackage       conv → batch norm → relu → linear, converted from TorchScript in FP32
                      (coremltools folds the batch norm into the conv)
  mlp_fp16.mlpackage  a two-layer MLP with layer norm and GELU, FP16 (the default precision)
  mlp_int8.mlpackage  the same weights quantized by `linear_quantize_weights` (int8, per
                      channel) for iOS 16: `constexpr_affine_dequantize` operations
  mlp_int4.mlpackage  the same for iOS 18, int4 in blocks of 8 along the input:
                      `constexpr_blockwise_shift_scale` operations
  mlp_lut4.mlpackage  the MLP palettized by `palettize_weights` (k-means, 4 bits, one table per
                      weight) for iOS 16: `constexpr_lut_to_dense` with packed `uint8` indices
  mlp_lut6.mlpackage  the same with 6 bits
  mlp_lut3_grouped.mlpackage  iOS 18, 3 bits, a table per group of 16 output channels: `uint3`
                      indices and a `[groups, 1, 8, 1]` table
  mlp_lut4_scaled.mlpackage   iOS 18, 4 bits per group of 16 channels with per-channel scales: the
                      tables are themselves the output of a `constexpr_blockwise_shift_scale`
  mlp_sparse.mlpackage        the MLP pruned by `prune_weights` (half its weights zero) for iOS
                      16: `constexpr_sparse_to_dense` with a mask of packed bits
  mlp_sparse_ios18.mlpackage  the same for iOS 18: the mask a `uint1` tensor of the weight's shape
  cnn_nn.mlmodel      the CNN as a `neuralNetwork` model (the kind before ML programs)
  facts.json          per package: every operation of `main` (type, outputs, inputs by argument
                      name), every constant's data type, shape, mean and first values (weight-file
                      data read by coremltools' own `_BlobStorageReader`), and each dequantized
                      weight's values, `(q - zero point) * scale` by numpy; under
                      "palettized" and "sparse", each palettized or pruned weight's values as
                      coremltools' own `decompress_weights` expands them
"""

import json
import os
import shutil

import coremltools as ct
import coremltools.optimize.coreml as cto
import numpy as np
import torch
import torch.nn as nn
from coremltools.libmilstoragepython import _BlobStorageReader

HERE = os.path.dirname(os.path.abspath(__file__))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(32)
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 16)

    def forward(self, x):
        return self.fc2(nn.functional.gelu(self.fc1(self.norm(x))))


# MIL data types (MIL.proto) by numpy dtype name.
DTYPES = {10: "float16", 11: "float32", 21: "int8", 23: "int32", 24: "int64", 31: "uint8"}
READ = {10: "read_fp16_data", 11: "read_float_data", 21: "read_int8_data", 31: "read_uint8_data",
        23: "read_int32_data", 25: "read_int4_data", 35: "read_uint4_data"}


def value_array(val, dtype_code, shape, weights_dir):
    if val.HasField("blobFileValue"):
        b = val.blobFileValue
        reader = _BlobStorageReader(os.path.join(weights_dir, b.fileName.replace("@model_path/", "")))
        a = np.asarray(getattr(reader, READ[dtype_code])(b.offset))
        if dtype_code == 10:
            a = a.view(np.float16)
        return a.reshape(shape)
    t = val.immediateValue.tensor
    kind = t.WhichOneof("value")
    if kind == "bytes":
        return np.frombuffer(t.bytes.values, dtype=DTYPES[dtype_code]).reshape(shape)
    if kind in ("floats", "ints", "longInts", "doubles", "bools"):
        return np.asarray(list(getattr(t, kind).values)).reshape(shape)
    return None


def facts_of(pkg):
    spec = ct.utils.load_spec(pkg)
    data = os.path.join(pkg, "Data", "com.apple.CoreML")
    fn = spec.mlProgram.functions["main"]
    block = fn.block_specializations[fn.opset]
    ops, consts, dequantized = [], [], []
    arrays = {}
    for op in block.operations:
        outs = [o.name for o in op.outputs]
        if op.type == "const":
            t = op.outputs[0].type.tensorType
            shape = [d.constant.size for d in t.dimensions]
            a = value_array(op.attributes["val"], t.dataType, shape, data)
            arrays[outs[0]] = a
            if a is not None:
                f = np.asarray(a, dtype=np.float64).reshape(-1)
                consts.append({"name": outs[0], "data_type": t.dataType, "shape": shape,
                               "mean": float(f.mean()) if f.size else 0.0,
                               "first": [float(v) for v in f[:4]]})
            continue
        inputs = {k: [b.name for b in v.arguments] for k, v in op.inputs.items()}
        ops.append({"type": op.type, "outputs": outs, "inputs": inputs})
        if op.type == "constexpr_affine_dequantize":
            # iOS 16's constexpr ops hold their operands as attributes.
            def attr(k):
                v = op.attributes[k]
                t = v.type.tensorType
                return value_array(v, t.dataType, [d.constant.size for d in t.dimensions], data)
            q = attr("quantized_data").astype(np.float64)
            z = np.asarray(attr("zero_point"), dtype=np.float64)
            s = np.asarray(attr("scale"), dtype=np.float64)
            axis = int(attr("axis"))
            shape = [1] * q.ndim
            if s.size > 1:
                shape[axis] = -1
            real = ((q - z.reshape(shape)) * s.reshape(shape)).reshape(-1)
            dequantized.append({"weight": outs[0], "scales": int(s.size), "mean": float(real.mean()),
                                "first": [float(v) for v in real[:4]]})
        if op.type == "constexpr_blockwise_shift_scale":
            # iOS 18's bind their operands as inputs, in place.
            def operand(k):
                v = op.inputs[k].arguments[0].value
                t = v.type.tensorType
                return value_array(v, t.dataType, [d.constant.size for d in t.dimensions], data)
            q = operand("data").astype(np.float64)
            s = np.asarray(operand("scale"), dtype=np.float64)
            z = np.asarray(operand("offset"), dtype=np.float64) if "offset" in op.inputs else 0.0
            for axis in range(q.ndim):
                blk = q.shape[axis] // s.shape[axis]
                s = np.repeat(s, blk, axis=axis)
                if not np.isscalar(z):
                    z = np.repeat(z, blk, axis=axis)
            real = ((q - z) * s).reshape(-1)
            dequantized.append({"weight": outs[0], "scales": int(operand("scale").size),
                                "mean": float(real.mean()), "first": [float(v) for v in real[:4]]})
    return {"ops": ops, "consts": consts, "dequantized": dequantized,
            "outputs": list(block.outputs), "inputs": [i.name for i in fn.inputs]}


def palettized_facts_of(pkg, op_type="constexpr_lut_to_dense", index="indices"):
    """Each `constexpr_lut_to_dense` weight: its table's shape, its indices' data type, and its
    values as coremltools' `decompress_weights` expands them (mean, first values, and every
    97th)."""
    spec = ct.utils.load_spec(pkg)
    fn = spec.mlProgram.functions["main"]
    block = fn.block_specializations[fn.opset]
    luts = {}
    for op in block.operations:
        if op.type != op_type:
            continue
        if index in op.inputs:
            t = op.inputs[index].arguments[0].value.type.tensorType
        else:
            t = op.attributes[index].type.tensorType
        luts[op.outputs[0].name] = t.dataType
    dense_model = cto.decompress_weights(ct.models.MLModel(pkg, skip_model_load=True))
    dfn = dense_model.get_spec().mlProgram.functions["main"]
    out = []
    for op in dfn.block_specializations[dfn.opset].operations:
        name = op.outputs[0].name
        if op.type != "const" or name not in luts:
            continue
        t = op.outputs[0].type.tensorType
        shape = [d.constant.size for d in t.dimensions]
        a = value_array(op.attributes["val"], t.dataType, shape,
                        os.path.dirname(dense_model.weights_dir)).astype(np.float64)
        f = a.reshape(-1)
        out.append({"weight": name, "shape": shape, "indices_type": luts[name],
                    "mean": float(f.mean()), "first": [float(v) for v in f[:8]],
                    "every_97th": [float(v) for v in f[::97]],
                    "distinct": int(np.unique(f).size)})
    return out


def nn_facts_of(path):
    """Each layer of a neuralNetwork model (type; an activation by its function), and each weight
    (`WeightParams`) as protobuf reads it."""
    spec = ct.utils.load_spec(path)
    layers, weights = [], []
    for layer in spec.neuralNetwork.layers:
        kind = layer.WhichOneof("layer")
        params = getattr(layer, kind)
        if kind == "activation":
            kind = params.WhichOneof("NonlinearityType")
        layers.append({"name": layer.name, "type": kind, "inputs": list(layer.input),
                       "outputs": list(layer.output)})
        for f, v in params.ListFields():
            if f.message_type is not None and f.message_type.name == "WeightParams":
                a = np.asarray(v.floatValue, dtype=np.float64)
                weights.append({"name": f"{layer.name}.{f.name}", "count": int(a.size),
                                "mean": float(a.mean()), "first": [float(x) for x in a[:4]]})
    return {"layers": layers, "weights": weights,
            "inputs": [i.name for i in spec.description.input],
            "outputs": [o.name for o in spec.description.output]}


def save(model, name):
    path = os.path.join(HERE, name)
    shutil.rmtree(path, ignore_errors=True)
    model.save(path)
    return path


def main():
    torch.manual_seed(0)
    facts = {}
    cnn = CNN().eval()
    with torch.no_grad():
        cnn.bn.running_mean.uniform_(-0.5, 0.5)
        cnn.bn.running_var.uniform_(0.5, 2.0)
    x = torch.zeros(1, 3, 8, 8)
    m = ct.convert(torch.jit.trace(cnn, x), inputs=[ct.TensorType(name="x", shape=x.shape)],
                   convert_to="mlprogram", compute_precision=ct.precision.FLOAT32)
    facts["cnn.mlpackage"] = facts_of(save(m, "cnn.mlpackage"))
    x = torch.zeros(1, 3, 8, 8)
    m = ct.convert(torch.jit.trace(cnn, x), inputs=[ct.TensorType(name="x", shape=x.shape)],
                   convert_to="neuralnetwork")
    m.save(os.path.join(HERE, "cnn_nn.mlmodel"))
    nn_facts = nn_facts_of(os.path.join(HERE, "cnn_nn.mlmodel"))

    mlp = MLP().eval()
    x = torch.zeros(1, 32)
    m = ct.convert(torch.jit.trace(mlp, x), inputs=[ct.TensorType(name="x", shape=x.shape)],
                   convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16)
    facts["mlp_fp16.mlpackage"] = facts_of(save(m, "mlp_fp16.mlpackage"))
    config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
        mode="linear", weight_threshold=0))
    q = cto.linear_quantize_weights(m, config)
    facts["mlp_int8.mlpackage"] = facts_of(save(q, "mlp_int8.mlpackage"))
    m = ct.convert(torch.jit.trace(mlp, x), inputs=[ct.TensorType(name="x", shape=x.shape)],
                   convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18)
    config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
        mode="linear", dtype="int4", granularity="per_block", block_size=8, weight_threshold=0))
    q = cto.linear_quantize_weights(m, config)
    facts["mlp_int4.mlpackage"] = facts_of(save(q, "mlp_int4.mlpackage"))

    palettized = {}
    grouped = {"granularity": "per_grouped_channel", "group_size": 16}
    for name, target, options in [
        ("mlp_lut4.mlpackage", ct.target.iOS16, {"nbits": 4}),
        ("mlp_lut6.mlpackage", ct.target.iOS16, {"nbits": 6}),
        ("mlp_lut3_grouped.mlpackage", ct.target.iOS18, {"nbits": 3, **grouped}),
        ("mlp_lut4_scaled.mlpackage", ct.target.iOS18,
         {"nbits": 4, "enable_per_channel_scale": True, **grouped}),
    ]:
        m = ct.convert(torch.jit.trace(mlp, x), inputs=[ct.TensorType(name="x", shape=x.shape)],
                       convert_to="mlprogram", minimum_deployment_target=target)
        config = cto.OpPalettizerConfig(mode="kmeans", weight_threshold=0, **options)
        q = cto.palettize_weights(m, cto.OptimizationConfig(global_config=config))
        palettized[name] = palettized_facts_of(save(q, name))
    sparse = {}
    for name, target in [("mlp_sparse.mlpackage", ct.target.iOS16),
                         ("mlp_sparse_ios18.mlpackage", ct.target.iOS18)]:
        m = ct.convert(torch.jit.trace(mlp, x), inputs=[ct.TensorType(name="x", shape=x.shape)],
                       convert_to="mlprogram", minimum_deployment_target=target)
        config = cto.OpMagnitudePrunerConfig(target_sparsity=0.5, weight_threshold=0)
        q = cto.prune_weights(m, cto.OptimizationConfig(global_config=config))
        sparse[name] = palettized_facts_of(save(q, name), "constexpr_sparse_to_dense", "mask")

    with open(os.path.join(HERE, "facts.json"), "w") as f:
        json.dump({"coremltools": ct.__version__, "torch": torch.__version__, "packages": facts,
                   "palettized": palettized, "sparse": sparse,
                   "neural_networks": {"cnn_nn.mlmodel": nn_facts}}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
