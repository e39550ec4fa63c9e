"""Writes functions.onnx (two transformer-style residual blocks exported by torch as ONNX local
functions, `export_modules_as_functions`) and functions_facts.json: what onnx reads of it (each
function's inputs, outputs and node op types; each call's function and arguments) and each block's
Linear weight's first values from torch.

    python make_functions.py        (torch 2.14, onnx 1.23)
"""
import json
import os
import warnings

import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
warnings.filterwarnings("ignore")


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)
        self.act = torch.nn.GELU()

    def forward(self, x):
        return x + self.act(self.fc(x))


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.b0 = Block()
        self.b1 = Block()
        self.head = torch.nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.b1(self.b0(x)))


def main():
    torch.manual_seed(0)
    net = Net().eval()
    path = os.path.join(HERE, "functions.onnx")
    torch.onnx.export(net, (torch.zeros(1, 8),), path, dynamo=False,
                      export_modules_as_functions={Block}, opset_version=17)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    facts = {
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "functions": [{"domain": f.domain, "name": f.name, "inputs": list(f.input),
                       "outputs": list(f.output), "ops": [n.op_type for n in f.node]}
                      for f in m.functions],
        "calls": [{"name": n.name, "function": n.op_type, "domain": n.domain,
                   "inputs": list(n.input)}
                  for n in m.graph.node if any(f.name == n.op_type for f in m.functions)],
        "weights": {name: [float(v) for v in p.detach().reshape(-1)[:4]]
                    for name, p in net.named_parameters() if name.endswith("fc.weight")},
    }
    with open(os.path.join(HERE, "functions_facts.json"), "w") as f:
        json.dump(facts, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
