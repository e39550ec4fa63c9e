"""Packs each OCDBT fixture folder into one fuzzing input for fuzz/fuzz_targets/orbax.rs: for every
file, a little-endian u16 name length, the name (relative to the folder), a little-endian u32 data
length and the data.

    python pack_seeds.py OUT_DIR
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for item in ["gemma", "zarr3", "sharded", "manager/2/default", "two_processes"]:
    root = os.path.join(HERE, item)
    blob = b""
    for base, _, names in os.walk(root):
        for n in sorted(names):
            path = os.path.join(base, n)
            rel = os.path.relpath(path, root).encode()
            data = open(path, "rb").read()
            blob += struct.pack("<H", len(rel)) + rel + struct.pack("<I", len(data)) + data
    with open(os.path.join(out, item.replace("/", "_")), "wb") as f:
        f.write(blob)
