"""Writes quants.gguf, one [3, 512] tensor (3 rows of 512, innermost first as GGUF lists it) of
each GGML block type modelmap decodes (legacy, k-quants, the IQ types, the ternary TQ1_0 /
TQ2_0, MXFP4), and quants.json: the values gguf-py's dequantizer
(`gguf.quants.dequantize`, llama.cpp's reference in numpy) gives for them.

The blocks are random bytes with their f16 scale fields set to modest values, so every bit
pattern of the quants and sub-block scales occurs.

    pip install gguf && python3 tests/data/gguf/make_quants.py
"""
import json
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

HERE = os.path.dirname(os.path.abspath(__file__))
# Type → offsets of its f16 scale fields within a block.
TYPES = {
    Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0],
    Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
    Q.IQ4_NL: [0], Q.IQ4_XS: [0], Q.TQ1_0: [52], Q.TQ2_0: [64], Q.MXFP4: [],
    Q.IQ2_XXS: [0], Q.IQ2_XS: [0], Q.IQ2_S: [0], Q.IQ3_XXS: [0], Q.IQ3_S: [0], Q.IQ1_S: [0],
    Q.IQ1_M: [],
}
# MXFP4's scale is an E8M0 byte (a power of two): kept near 2^0 so values stay modest.
E8M0 = {Q.MXFP4: 0}
ROWS, COLS = 3, 512


def main():
    rng = np.random.default_rng(11)
    w = gguf.GGUFWriter(os.path.join(HERE, "quants.gguf"), "llama")
    facts = {}
    for qt, halves in TYPES.items():
        block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qt]
        blocks = ROWS * COLS // block_elems
        raw = rng.integers(0, 256, size=(blocks, block_bytes), dtype=np.uint8)
        for at in E8M0.get(qt, None) is not None and [E8M0[qt]] or []:
            raw[:, at] = rng.integers(120, 136, size=blocks, dtype=np.uint8)
        if qt == Q.IQ1_M:
            # d's 16 bits are the top nibbles of the four u16 scale words at bytes 48..56.
            d = rng.uniform(0.001, 0.05, size=blocks).astype(np.float16).view(np.uint16)
            for k in range(4):
                word = raw[:, 48 + 2 * k].astype(np.uint16) | (raw[:, 49 + 2 * k].astype(np.uint16) << 8)
                word = (word & 0x0FFF) | (((d >> (4 * k)) & 0xF) << 12)
                raw[:, 48 + 2 * k] = (word & 0xFF).astype(np.uint8)
                raw[:, 49 + 2 * k] = (word >> 8).astype(np.uint8)
        for at in halves:
            scale = rng.uniform(0.001, 0.05, size=blocks).astype(np.float16)
            raw[:, at:at + 2] = scale.view(np.uint8).reshape(blocks, 2)
        data = raw.reshape(ROWS, COLS // block_elems * block_bytes)
        name = f"blk.0.{qt.name.lower()}.weight"
        w.add_tensor(name, data, raw_dtype=qt)
        v = gguf.quants.dequantize(data, qt).astype(np.float64).ravel()
        facts[name] = {
            "type": qt.name, "shape": [COLS, ROWS],
            "mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()),
            "max": float(v.max()), "zeros": int((v == 0).sum()),
            "values": {str(i): float(v[i]) for i in [0, 1, 15, 16, 17, 31, 32, 100, 255, 256, 300, 511, 777, 1535]},
        }
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(os.path.join(HERE, "quants.json"), "w") as f:
        json.dump(facts, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
