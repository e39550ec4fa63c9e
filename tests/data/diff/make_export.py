"""Writes a small PyTorch model's weights and its ONNX export by torch.onnx.export (the TorchScript
exporter, `dynamo=False`), which stores each Linear weight read by a MatMul transposed, under a
name of its own (`onnx::MatMul_16`), and facts.json: which initializer holds which weight, found
by comparing the arrays (numpy), and whether it is transposed.

    python make_export.py
"""
import json
import os

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from safetensors.torch import save_file
from torch import nn

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "export")
os.makedirs(here, exist_ok=True)
torch.manual_seed(0)


class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 32)
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 32, bias=False)
        self.norm = nn.LayerNorm(32)
        with torch.no_grad():
            self.norm.weight.add_(torch.randn(32) * 0.1)

    def forward(self, x):
        h = self.emb(x)
        return self.norm(h + self.fc2(torch.relu(self.fc1(h))))


m = M().eval()
sd = {k: v.detach().contiguous() for k, v in m.state_dict().items()}
save_file(sd, os.path.join(here, "model.safetensors"))
torch.onnx.export(m, (torch.zeros(1, 5, dtype=torch.long),), os.path.join(here, "model.onnx"),
                  dynamo=False, opset_version=17)
held = {}
for init in onnx.load(os.path.join(here, "model.onnx")).graph.initializer:
    arr = numpy_helper.to_array(init)
    for name, t in sd.items():
        t = t.numpy()
        if arr.shape == t.shape and np.array_equal(arr, t):
            held[init.name] = {"weight": name, "transposed": False}
        elif arr.ndim == 2 and arr.shape == t.T.shape and np.array_equal(arr, t.T):
            held[init.name] = {"weight": name, "transposed": True}
with open(os.path.join(here, "facts.json"), "w") as f:
    json.dump({"torch": torch.__version__, "initializers": held}, f, indent=1, sort_keys=True)
print(held)
