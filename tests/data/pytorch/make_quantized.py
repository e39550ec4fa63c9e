"""Writes quantized.pt for tests/pytorch.rs: a state dict of quantized tensors as `torch.save`
pickles them (`torch._utils._rebuild_qtensor`): one per-tensor affine qint8 and one quint8, a
per-channel qint8, and a per-channel quint8 with float zero points (the
`per_channel_affine_float_qparams` scheme of quantized embeddings; pickled as `per_channel_affine`
with a float tensor of zero points). Prints what torch's `dequantize()` gives, for the test's
expected values.

    python3 tests/data/pytorch/make_quantized.py
"""
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
g = torch.Generator().manual_seed(3)
w = torch.randn(3, 4, generator=g)
sd = {
    "fc.weight": torch.quantize_per_tensor(w, scale=0.05, zero_point=3, dtype=torch.qint8),
    "head.weight": torch.quantize_per_tensor(w.t().contiguous(), 0.02, 128, torch.quint8),
    "conv.weight": torch.quantize_per_channel(
        w, torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0, 0, 0]), 0, torch.qint8
    ),
    "emb.weight": torch.quantize_per_channel(
        w, torch.tensor([0.1, 0.2, 0.3]), torch.tensor([15.5, 7.25, 4.0]), 0, torch.quint8
    ),
}
assert sd["emb.weight"].qscheme() == torch.per_channel_affine_float_qparams
torch.save(sd, os.path.join(HERE, "quantized.pt"))
for k, v in sd.items():
    d = v.dequantize().double()
    print(k, d.min().item(), d.max().item(), d.mean().item(), d.std(unbiased=False).item(),
          v.int_repr().flatten()[:4].tolist(), d.flatten()[:4].tolist())
