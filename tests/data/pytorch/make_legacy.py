"""Re-saves four of make_fixtures.py's checkpoints in the legacy format (`torch.save(...,
_use_new_zipfile_serialization=False)`, the only one before PyTorch 1.6, as many checkpoints on
the Hugging Face hub from 2019–2020 still are), for tests/pytorch.rs: a state dict, a training
checkpoint, a whole pickled module and tensors that are views of shared storages. Each must read
as its zip twin does.

    python3 tests/data/pytorch/make_legacy.py
"""
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
for name in ["tiny_llama.pt", "training.pth", "module.pt", "views.pt"]:
    obj = torch.load(os.path.join(HERE, name), weights_only=False)
    out = os.path.join(HERE, "legacy_" + name)
    torch.save(obj, out, _use_new_zipfile_serialization=False)
    with open(out, "rb") as f:
        assert f.read(2) == b"\x80\x02", out
    print(out, os.path.getsize(out))
