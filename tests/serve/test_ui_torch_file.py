"""Writes a torch.save state dict for the web page's tests, and what numpy says of each tensor.

usage: test_ui_torch_file.py OUT.pt OUT.json
The state dict holds special values (NaN, infinities, zeros), several dtypes, a constant tensor
and a tensor whose name is HTML markup; OUT.json holds, per tensor, the statistics numpy
computes over its values as float64 (the page's server must agree).
"""
import json
import sys

import numpy as np
import torch

HOSTILE = "<img src=x onerror=alert(1)>"

torch.manual_seed(24)
w = torch.randn(64, 32)
w[0, :5] = 0.0
w[1, 0] = float("nan")
w[2, 0] = float("inf")
w[3, 0] = float("-inf")
w[4, 0] = -0.0
state = {
    "fc1.weight": w,
    "fc1.bias": torch.zeros(64),
    "half": (torch.randn(1000) * 3).half(),
    "bf": torch.randn(300).bfloat16(),
    "counts": torch.randint(-5, 100, (500,), dtype=torch.int64),
    "mask": torch.rand(200) > 0.3,
    "double": torch.randn(7, 9, dtype=torch.float64) * 1e6,
    HOSTILE: torch.randn(10),
}
torch.save(state, sys.argv[1])

BINS = 64
expected = {}
for name, t in state.items():
    x = t.to(torch.float64).numpy().ravel()
    finite = x[np.isfinite(x)]
    e = {
        "count": int(x.size),
        "finite": int(finite.size),
        "nan": int(np.isnan(x).sum()),
        "pos_inf": int(np.isposinf(x).sum()),
        "neg_inf": int(np.isneginf(x).sum()),
        "zeros": int((x == 0).sum()),
    }
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        counts, edges = np.histogram(finite, bins=BINS, range=(lo, hi))
        e.update(min=lo, max=hi, mean=float(finite.mean()), std=float(finite.std()),
                 counts=[int(c) for c in counts], edges=[float(v) for v in edges])
    expected[name] = e
with open(sys.argv[2], "w") as f:
    json.dump({"bins": BINS, "hostile": HOSTILE, "tensors": expected}, f)
