"""Exports a PyTorch model with torch.onnx.export (Debian's python3-torch 1.13) and prints what
torch itself computes on the same inputs, so ckpt's import of the file can be compared with it.

  torch_export.py KIND OUT.onnx INPUT.f32 N

KIND is "mlp" (fc1 784->64, ReLU, fc2 64->10, Softmax over dim 1; input [N, 784]) or
"convnet" (the LeNet-style net of ckpt's convnet spec; input [N, 1, 28, 28]). INPUT.f32 holds
N float32 images. Prints JSON: {"dims": [N, 10], "data": [...], "state": {name: shape}}.
"""
import json
import sys

import numpy
import torch
from torch import nn


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 64)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(64, 10)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        return self.softmax(self.fc2(self.relu1(self.fc1(x))))


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, 5)
        self.pool1 = nn.MaxPool2d(2)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(10, 20, 5)
        self.pool2 = nn.MaxPool2d(2)
        self.relu2 = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(320, 50)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        for layer in self.children():
            x = layer(x)
        return x


def main(kind, out, inputs, n):
    torch.manual_seed(7)
    torch.set_num_threads(1)
    model = {"mlp": Mlp, "convnet": ConvNet}[kind]().eval()
    shape = (n, 784) if kind == "mlp" else (n, 1, 28, 28)
    x = torch.from_numpy(numpy.fromfile(inputs, dtype=numpy.float32).reshape(shape))
    with torch.no_grad():
        y = model(x)
    # torch's default opset for the ConvNet, 13 (Softmax along one axis) for the MLP.
    opset = {"opset_version": 13} if kind == "mlp" else {}
    torch.onnx.export(model, x[:1], out, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, **opset)
    state = {k: list(v.shape) for k, v in model.state_dict().items()}
    print(json.dumps({"dims": list(y.shape), "data": y.flatten().tolist(), "state": state}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
