#!/usr/bin/python3
"""The PyTorch peer of bench_train: the same models, batch 64, synthetic data, forward,
cross-entropy, backward and w -= lr * g. Prints one JSON line per (model, threads) with samples
per second and per CPU second of the process.

Run with Debian's Python and, for PyTorch's fastest BLAS, OpenBLAS built with OpenMP:
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 torch_train.py
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, 5)
        self.conv2 = nn.Conv2d(10, 20, 5)
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def run(name, threads, seconds, batch=64, lr=0.01):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = MLP() if name == "mlp" else ConvNet()
    shape = (batch, 784) if name == "mlp" else (batch, 1, 28, 28)
    x = torch.rand(shape)
    y = torch.randint(0, 10, (batch,))
    params = list(model.parameters())

    def step():
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p.add_(p.grad, alpha=-lr)
                p.grad = None
        return loss

    for _ in range(20):
        step()
    steps, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        step()
        steps += 1
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    # Samples per CPU second of the whole process is steadier on a shared machine.
    return steps * batch / elapsed, steps * batch / cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["mlp", "convnet"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    for m in args.models:
        for t in args.threads:
            wall, cpu = run(m, t, args.seconds)
            print(json.dumps({"model": m, "threads": t, "samples_per_s": wall,
                              "samples_per_cpu_s": cpu}), flush=True)


if __name__ == "__main__":
    main()
