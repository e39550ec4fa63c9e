"""Writes a model graph into a TensorBoard event file with PyTorch's `SummaryWriter.add_graph`
(a traced small CNN), and facts_torch.json with what TensorBoard's EventAccumulator reads back
as the run's GraphDef (node names and ops).

    python make_graph_torch.py       # torch 2.14, tensorboard 2.21 wrote the files
"""

import glob
import json
import os
import shutil

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(HERE, "torch_cnn")
shutil.rmtree(RUN, ignore_errors=True)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 3)
        self.conv2 = torch.nn.Conv2d(8, 16, 3)
        self.fc1 = torch.nn.Linear(16 * 5 * 5, 32)
        self.fc2 = torch.nn.Linear(32, 10)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


torch.manual_seed(0)
writer = SummaryWriter(RUN)
writer.add_graph(Net(), torch.zeros(1, 1, 28, 28))
for step in range(3):
    writer.add_scalar("loss", 2.0 / (step + 1), step)
writer.close()

(path,) = glob.glob(os.path.join(RUN, "events.out.tfevents.*"))
acc = EventAccumulator(path)
acc.Reload()
graph = acc.Graph()
facts = {
    "run": "torch_cnn",
    "nodes": [{"name": n.name, "op": n.op, "inputs": list(n.input)} for n in graph.node],
}
with open(os.path.join(HERE, "facts_torch.json"), "w") as f:
    json.dump(facts, f, indent=1)
    f.write("\n")
