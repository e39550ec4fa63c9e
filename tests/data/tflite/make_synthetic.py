"""Writes synthetic.tflite: what the real models here lack, built with the `tflite` package's
flatbuffer builders (flatc's Python output for TensorFlow's schema.fbs):

- int8 weights quantized per channel and uint8 weights with one scale and zero point;
- an optional input left out (-1);
- a WHILE op with its cond and body subgraphs;
- a custom op with flexbuffer options;
- buffers stored after the flatbuffer by offset and size, as TFLite writes models over 2 GB;
- a signature and `min_runtime_version` metadata.

    python3 tests/data/tflite/make_synthetic.py   (from the repository root)
"""
import os

import flatbuffers
import numpy as np
import tflite as T

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)
W8 = rng.integers(-127, 128, size=(3, 4), dtype=np.int8)
U8 = rng.integers(0, 256, size=(2, 3), dtype=np.uint8)
BIAS = np.array([5, -7, 0], dtype=np.int32)
TEN = np.array(10, dtype=np.int32)
ONE = np.array(1, dtype=np.int32)
# Buffer 0 is empty by convention; 1..5 hold tensors (after the flatbuffer); 6 holds metadata.
BLOBS = [W8.tobytes(), BIAS.tobytes(), U8.tobytes(), TEN.tobytes(), ONE.tobytes()]
META = b"1.14.0\0\0\0\0\0\0\0\0\0\0"


def vec(b, start, items, add):
    start(b, len(items))
    for x in reversed(items):
        add(x)
    return b.EndVector()


def ints(b, start, items):
    return vec(b, start, items, b.PrependInt32)


def tensor(b, name, shape, ttype, buffer, quant=None):
    n = b.CreateString(name)
    s = ints(b, T.TensorStartShapeVector, shape)
    T.TensorStart(b)
    T.TensorAddShape(b, s)
    T.TensorAddType(b, ttype)
    T.TensorAddBuffer(b, buffer)
    T.TensorAddName(b, n)
    if quant is not None:
        T.TensorAddQuantization(b, quant)
    return T.TensorEnd(b)


def quant(b, scales, zeros, dim):
    s = vec(b, T.QuantizationParametersStartScaleVector, scales, b.PrependFloat32)
    z = vec(b, T.QuantizationParametersStartZeroPointVector, zeros, b.PrependInt64)
    T.QuantizationParametersStart(b)
    T.QuantizationParametersAddScale(b, s)
    T.QuantizationParametersAddZeroPoint(b, z)
    T.QuantizationParametersAddQuantizedDimension(b, dim)
    return T.QuantizationParametersEnd(b)


def op(b, code, inputs, outputs, opt_type=0, opt=None, custom=None):
    i = ints(b, T.OperatorStartInputsVector, inputs)
    o = ints(b, T.OperatorStartOutputsVector, outputs)
    c = None
    if custom is not None:
        c = vec(b, T.OperatorStartCustomOptionsVector, list(custom), b.PrependUint8)
    T.OperatorStart(b)
    T.OperatorAddOpcodeIndex(b, code)
    T.OperatorAddInputs(b, i)
    T.OperatorAddOutputs(b, o)
    if opt is not None:
        T.OperatorAddBuiltinOptionsType(b, opt_type)
        T.OperatorAddBuiltinOptions(b, opt)
    if c is not None:
        T.OperatorAddCustomOptions(b, c)
    return T.OperatorEnd(b)


def subgraph(b, name, tensors, inputs, outputs, ops):
    t = vec(b, T.SubGraphStartTensorsVector, tensors, b.PrependUOffsetTRelative)
    i = ints(b, T.SubGraphStartInputsVector, inputs)
    o = ints(b, T.SubGraphStartOutputsVector, outputs)
    p = vec(b, T.SubGraphStartOperatorsVector, ops, b.PrependUOffsetTRelative)
    n = b.CreateString(name)
    T.SubGraphStart(b)
    T.SubGraphAddTensors(b, t)
    T.SubGraphAddInputs(b, i)
    T.SubGraphAddOutputs(b, o)
    T.SubGraphAddOperators(b, p)
    T.SubGraphAddName(b, n)
    return T.SubGraphEnd(b)


def build(offsets):
    b = flatbuffers.Builder(1024)
    b.ForceDefaults(True)
    BO = T.BuiltinOperator
    codes = []
    for code in [BO.FULLY_CONNECTED, BO.WHILE, BO.LESS, BO.ADD]:
        T.OperatorCodeStart(b)
        T.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        T.OperatorCodeAddBuiltinCode(b, code)
        T.OperatorCodeAddVersion(b, 1)
        codes.append(T.OperatorCodeEnd(b))
    custom_name = b.CreateString("MyCustomPostprocess")
    T.OperatorCodeStart(b)
    T.OperatorCodeAddBuiltinCode(b, BO.CUSTOM)
    T.OperatorCodeAddDeprecatedBuiltinCode(b, BO.CUSTOM)
    T.OperatorCodeAddCustomCode(b, custom_name)
    codes.append(T.OperatorCodeEnd(b))

    TT = T.TensorType
    # main: x → FC(w8, bias) → y → FC(u8, no bias) → z → custom → out; counter → WHILE → count
    q8 = quant(b, [0.1, 0.2, 0.3], [0, 0, 0], 0)
    qb = quant(b, [0.001], [0], 0)
    qu = quant(b, [0.5], [128], 0)
    main_t = [
        tensor(b, "x", [1, 4], TT.FLOAT32, 0),
        tensor(b, "dense/kernel", [3, 4], TT.INT8, 1, q8),
        tensor(b, "dense/bias", [3], TT.INT32, 2, qb),
        tensor(b, "dense/MatMul;dense/BiasAdd", [1, 3], TT.FLOAT32, 0),
        tensor(b, "head/kernel", [2, 3], TT.UINT8, 3, qu),
        tensor(b, "head/MatMul", [1, 2], TT.FLOAT32, 0),
        tensor(b, "out", [1, 2], TT.FLOAT32, 0),
        tensor(b, "counter", [], TT.INT32, 0),
        tensor(b, "count", [], TT.INT32, 0),
    ]
    T.FullyConnectedOptionsStart(b)
    T.FullyConnectedOptionsAddFusedActivationFunction(b, T.ActivationFunctionType.RELU)
    fc1 = T.FullyConnectedOptionsEnd(b)
    T.FullyConnectedOptionsStart(b)
    T.FullyConnectedOptionsAddKeepNumDims(b, True)
    fc2 = T.FullyConnectedOptionsEnd(b)
    T.WhileOptionsStart(b)
    T.WhileOptionsAddCondSubgraphIndex(b, 1)
    T.WhileOptionsAddBodySubgraphIndex(b, 2)
    wo = T.WhileOptionsEnd(b)
    BOpt = T.BuiltinOptions
    main_ops = [
        op(b, 0, [0, 1, 2], [3], BOpt.FullyConnectedOptions, fc1),
        op(b, 0, [3, 4, -1], [5], BOpt.FullyConnectedOptions, fc2),
        op(b, 4, [5], [6], custom=b"\x01\x02\x03\x04\x05"),
        op(b, 1, [7], [8], BOpt.WhileOptions, wo),
    ]
    main = subgraph(b, "main", main_t, [0, 7], [6, 8], main_ops)
    cond_t = [
        tensor(b, "i", [], TT.INT32, 0),
        tensor(b, "ten", [], TT.INT32, 4),
        tensor(b, "keep_going", [], TT.BOOL, 0),
    ]
    cond = subgraph(b, "cond", cond_t, [0], [2], [op(b, 2, [0, 1], [2])])
    T.AddOptionsStart(b)
    ao = T.AddOptionsEnd(b)
    body_t = [
        tensor(b, "i", [], TT.INT32, 0),
        tensor(b, "one", [], TT.INT32, 5),
        tensor(b, "next", [], TT.INT32, 0),
    ]
    body = subgraph(b, "body", body_t, [0], [2], [op(b, 3, [0, 1], [2], BOpt.AddOptions, ao)])

    buffers = []
    T.BufferStart(b)
    buffers.append(T.BufferEnd(b))
    for (off, size) in offsets:
        T.BufferStart(b)
        T.BufferAddOffset(b, off)
        T.BufferAddSize(b, size)
        buffers.append(T.BufferEnd(b))
    meta_data = vec(b, T.BufferStartDataVector, list(META), b.PrependUint8)
    T.BufferStart(b)
    T.BufferAddData(b, meta_data)
    buffers.append(T.BufferEnd(b))

    mname = b.CreateString("min_runtime_version")
    T.MetadataStart(b)
    T.MetadataAddName(b, mname)
    T.MetadataAddBuffer(b, len(buffers) - 1)
    metas = [T.MetadataEnd(b)]

    def tmap(name, index):
        n = b.CreateString(name)
        T.TensorMapStart(b)
        T.TensorMapAddName(b, n)
        T.TensorMapAddTensorIndex(b, index)
        return T.TensorMapEnd(b)

    sin = [tmap("x", 0), tmap("counter", 7)]
    sout = [tmap("out", 6), tmap("count", 8)]
    si = vec(b, T.SignatureDefStartInputsVector, sin, b.PrependUOffsetTRelative)
    so = vec(b, T.SignatureDefStartOutputsVector, sout, b.PrependUOffsetTRelative)
    key = b.CreateString("serving_default")
    T.SignatureDefStart(b)
    T.SignatureDefAddInputs(b, si)
    T.SignatureDefAddOutputs(b, so)
    T.SignatureDefAddSignatureKey(b, key)
    T.SignatureDefAddSubgraphIndex(b, 0)
    sigs = [T.SignatureDefEnd(b)]

    oc = vec(b, T.ModelStartOperatorCodesVector, codes, b.PrependUOffsetTRelative)
    sg = vec(b, T.ModelStartSubgraphsVector, [main, cond, body], b.PrependUOffsetTRelative)
    bv = vec(b, T.ModelStartBuffersVector, buffers, b.PrependUOffsetTRelative)
    mv = vec(b, T.ModelStartMetadataVector, metas, b.PrependUOffsetTRelative)
    sv = vec(b, T.ModelStartSignatureDefsVector, sigs, b.PrependUOffsetTRelative)
    desc = b.CreateString("modelmap synthetic")
    T.ModelStart(b)
    T.ModelAddVersion(b, 3)
    T.ModelAddOperatorCodes(b, oc)
    T.ModelAddSubgraphs(b, sg)
    T.ModelAddDescription(b, desc)
    T.ModelAddBuffers(b, bv)
    T.ModelAddMetadata(b, mv)
    T.ModelAddSignatureDefs(b, sv)
    b.Finish(T.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def main():
    # The flatbuffer's size does not depend on the offsets' values (fixed-width fields), so build
    # once to learn it, then again with the blobs placed after it, 16-byte aligned.
    size = len(build([(2, len(x)) for x in BLOBS]))
    at, offsets = (size + 15) // 16 * 16, []
    for blob in BLOBS:
        offsets.append((at, len(blob)))
        at = (at + len(blob) + 15) // 16 * 16
    fb = build(offsets)
    assert len(fb) == size
    out = bytearray(fb)
    for (off, _), blob in zip(offsets, BLOBS):
        out.extend(b"\0" * (off - len(out)))
        out.extend(blob)
    with open(os.path.join(HERE, "synthetic.tflite"), "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
