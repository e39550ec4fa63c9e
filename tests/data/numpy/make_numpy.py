"""Writes the NumPy fixtures of tests/numpy.rs and what NumPy reports for them.

Run from this folder (numpy 2.4 wrote the committed files):
    python3 make_numpy.py

- flax_mlp.npz (np.savez): a Flax-style parameter tree flattened to '/' keys, a conv kernel
  [kh, kw, in, out], a Fortran-ordered matrix, a bool mask and an object array (a pickle);
- compressed.npz (np.savez_compressed): the same float arrays, deflated;
- half.npy: one float16 array; fortran.npy: one Fortran-ordered float64 array.

facts.json: for each file, each array's dtype, shape, and mean / min / max / first values in
C order, or null where modelmap must report an error for that array.
"""
import json
import numpy as np

rng = np.random.default_rng(0)
params = {
    "params/Dense_0/kernel": rng.standard_normal((16, 32)).astype(np.float32),
    "params/Dense_0/bias": np.full(32, 0.5, np.float32),
    "params/Dense_1/kernel": rng.standard_normal((32, 4)).astype(np.float32),
    "params/Conv_0/kernel": rng.standard_normal((3, 3, 2, 8)).astype(np.float32),
    "batch_stats/BatchNorm_0/mean": rng.standard_normal(8).astype(np.float64),
}
extra = {
    "fortran": np.asfortranarray(rng.standard_normal((5, 7))).astype(np.float32, order="F"),
    "mask": rng.standard_normal(10) > 0,
    "step": np.array(1234, np.int64),
    "meta": np.array([{"a": 1}], dtype=object),
}
assert extra["fortran"].flags["F_CONTIGUOUS"] and not extra["fortran"].flags["C_CONTIGUOUS"]
np.savez("flax_mlp.npz", **params, **extra)
np.savez_compressed("compressed.npz", **params)
np.save("half.npy", rng.standard_normal((6, 4)).astype(np.float16))
np.save("fortran.npy", np.asfortranarray(rng.standard_normal((3, 4))))


def describe(a):
    if a.dtype == object:
        return None
    flat = np.ascontiguousarray(a).reshape(-1).astype(np.float64)
    return {
        "dtype": str(a.dtype),
        "shape": list(a.shape),
        "mean": float(flat.mean()),
        "min": float(flat.min()),
        "max": float(flat.max()),
        "first": [float(v) for v in flat[:4]],
    }


facts = {}
for f in ["flax_mlp.npz", "compressed.npz"]:
    with np.load(f, allow_pickle=True) as z:
        facts[f] = {k: describe(z[k]) for k in z.files}
for f in ["half.npy", "fortran.npy"]:
    facts[f] = {f[:-4]: describe(np.load(f))}
with open("facts.json", "w") as fh:
    json.dump({"numpy": np.__version__, "files": facts}, fh, indent=1)
    fh.write("\n")
print({f: len(v) for f, v in facts.items()})
