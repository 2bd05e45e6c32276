"""Checkpoints laid out as their users lay them out, written and compared by torch.

  torch_faithful.py write OUT        writes OUT/<name>.pt for every case below; prints the names
  torch_faithful.py compare ORIG CONVERTED
                                     torch.load both and compares them deeply: the same Python
                                     types (a Parameter is not a Tensor, a float is not a 0-d
                                     tensor, an int key is not a str key), the same keys in the
                                     same order, floats bit for bit, tensors byte for byte with
                                     dtype, shape and requires_grad, OrderedDict's _metadata,
                                     and the same tensors sharing storage; exits 1 naming the
                                     first difference
  torch_faithful.py strict ORIG CONVERTED
                                     also loads the converted 'model' into a fresh torchvision
                                     resnet18 with load_state_dict(strict=True)
"""
import argparse
import collections
import math
import os
import struct
import sys

import numpy as np
import torch
import torchvision


def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=10)


def reference_script():
    # torchvision's references/classification/train.py saves exactly this after each epoch.
    m = resnet()
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
    m(torch.randn(2, 3, 32, 32)).sum().backward()
    opt.step()
    sched.step()
    args = argparse.Namespace(data_path="/data/imagenet", model="resnet18", lr=0.1, epochs=90, batch_size=32,
                              amp=False, resume="", weights=None, clip_grad_norm=None, lr_steps=[16, 22])
    return {"model": m.state_dict(), "optimizer": opt.state_dict(), "lr_scheduler": sched.state_dict(), "epoch": 3,
            "args": args}


class Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(11, 4)
        self.body = torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 11, bias=False)
        self.head.weight = self.embed.weight


def tied_state_dict():
    torch.manual_seed(1)
    return Tied().state_dict()


def tied_checkpoint():
    torch.manual_seed(2)
    m = Tied()
    opt = torch.optim.Adam(m.parameters(), lr=3e-4)
    m.head(m.body(m.embed(torch.tensor([1, 2])))).sum().backward()
    opt.step()
    return {"model_state_dict": m.state_dict(), "optimizer_state_dict": opt.state_dict(), "epoch": 1,
            "loss": torch.tensor(0.25), "best_acc": np.float64(0.91)}


def odd_keys():
    torch.manual_seed(3)
    return collections.OrderedDict([("encoder/layer_0/kernel", torch.randn(2, 2)), ("", torch.randn(3)),
                                    ("a%2Fb", torch.randn(1)), ("a/b", torch.randn(1)), ("%", torch.zeros(2)),
                                    ("%25", torch.ones(1))])


def python_values():
    torch.manual_seed(4)
    base = torch.arange(12, dtype=torch.float32)
    return {
        "floats": [0.1, -0.0, math.inf, -math.inf, 1e300, 5e-324],
        "nan": math.nan,
        "ints": (0, -1, 2 ** 40, -(2 ** 63), 2 ** 63 - 1),
        "bools": [True, False],
        "none": None,
        "text": "grüße\n\"quoted\"",
        "raw": b"\x00\xff bytes",
        "int_keys": {1: "one", 2: "two", -3: "minus three"},
        "tuple_keys": {(1, "a"): 1.5, (2, "b"): 2.5},
        "mixed_keys": {1: 1, "one": 2, 2.5: 3, None: 4, True: 5, b"k": 6, (1, (2, "x")): 7},
        "nested": [[1, [2, [3, {"deep": (4.5,)}]]], ()],
        "set": {3, 1, 2},
        "counter": collections.Counter({10: 2, 20: 1}),
        "empty": {"dict": {}, "list": [], "tuple": (), "od": collections.OrderedDict()},
        "numpy": {"f8": np.float64(0.91), "f4": np.float32(0.5), "i8": np.int64(-7), "i4": np.int32(9),
                  "u1": np.uint8(200), "b": np.bool_(True), "f2": np.float16(1.5)},
        "tensors": {
            "f16": torch.randn(2, 3).half(), "bf16": torch.randn(4).bfloat16(), "i64": torch.arange(5),
            "bool": torch.tensor([True, False]), "empty": torch.zeros(0, 3), "scalar": torch.tensor(3.5),
            "transposed": torch.randn(3, 4).t(), "slice": base[2:8], "strided": base[::3],
            "grad": torch.randn(2, requires_grad=True), "param": torch.nn.Parameter(torch.randn(2, 2)),
            "frozen": torch.nn.Parameter(torch.randn(2), requires_grad=False),
        },
        "same_object": [base, base],
    }


def multistep():
    torch.manual_seed(5)
    m = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.3)
    for _ in range(3):
        opt.step()
        sched.step()
    return {"model": m.state_dict(), "optimizer": opt.state_dict(), "lr_scheduler": sched.state_dict(), "epoch": 3}


def numpy_arrays():
    # What training scripts keep beside the weights: metric histories, normalisation constants,
    # label maps, masks, as NumPy arrays of every dtype NumPy and ckpt share.
    torch.manual_seed(6)
    m = torch.nn.Linear(3, 2)
    return {
        "model": m.state_dict(),
        "history": {"loss": np.array([0.9, 0.5, 0.25], dtype=np.float32), "acc": np.linspace(0.1, 0.9, 5)},
        "mean_std": np.array([[0.485, 0.456, 0.406], [0.229, 0.224, 0.225]], dtype=np.float32),
        "labels": np.arange(10, dtype=np.int64), "mask": np.array([True, False, True]),
        "ints": {d: np.arange(-3, 3).astype(d) for d in ["i1", "i2", "i4", "u1", "u2", "u4", "u8", "f2"]},
        "complex": np.array([1 + 2j, -0.5j], dtype=np.complex64), "empty": np.zeros((0, 3), dtype=np.float32),
        "zero_d": np.array(2.5), "fortran": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
        "best": np.float64(0.91),
    }


CASES = {
    "numpy_arrays": numpy_arrays,
    "reference_script": reference_script,
    "state_dict": lambda: resnet().state_dict(),
    "tied_state_dict": tied_state_dict,
    "tied_checkpoint": tied_checkpoint,
    "odd_keys": odd_keys,
    "python_values": python_values,
    "multistep": multistep,
}


def bits(f):
    return struct.pack("<d", f)


class Differ(Exception):
    pass


def same(a, b, where, storages):
    def differ(what):
        raise Differ(f"{where or '<root>'}: {what}")

    if type(a) is not type(b):
        differ(f"{type(a).__name__} became {type(b).__name__}")
    if isinstance(a, torch.Tensor):
        if a.dtype != b.dtype or a.shape != b.shape or a.requires_grad != b.requires_grad:
            differ(f"{a.dtype}{tuple(a.shape)} grad={a.requires_grad} became {b.dtype}{tuple(b.shape)} grad={b.requires_grad}")
        if a.numel() and not torch.equal(a.detach().contiguous().view(-1).view(torch.uint8),
                                         b.detach().contiguous().view(-1).view(torch.uint8)):
            differ("tensor values differ")
        # Tensors that share a storage in the original share one in the copy, and no others.
        sa = (a.storage().data_ptr(), a.storage_offset(), a.stride(), a.shape)
        sb = (b.storage().data_ptr(), b.storage_offset(), b.stride(), b.shape)
        storages.append((where, sa, sb))
        return
    if isinstance(a, float):
        if bits(a) != bits(b):
            differ(f"{a!r} became {b!r}")
        return
    if isinstance(a, np.ndarray):
        # Values, dtype (byte order included) and shape; a Fortran-order array comes back in C
        # order (docs/formats/pytorch.md), which NumPy compares equal.
        if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
            differ(f"{a.dtype}{a.shape} became {b.dtype}{b.shape}, or its values differ")
        return
    if isinstance(a, np.generic):
        if a.dtype != b.dtype or a.tobytes() != b.tobytes():
            differ(f"{a!r} became {b!r}")
        return
    if isinstance(a, (dict,)):
        if list(map(repr, a.keys())) != list(map(repr, b.keys())):
            differ(f"keys {list(a.keys())[:8]} became {list(b.keys())[:8]}")
        for (ka, va), (kb, vb) in zip(a.items(), b.items()):
            if type(ka) is not type(kb):
                differ(f"key {ka!r} ({type(ka).__name__}) became {kb!r} ({type(kb).__name__})")
            same(va, vb, f"{where}[{ka!r}]", storages)
        ma, mb = getattr(a, "_metadata", None), getattr(b, "_metadata", None)
        if (ma is None) != (mb is None):
            differ("_metadata lost or added")
        if ma is not None:
            same(ma, mb, f"{where}._metadata", storages)
        return
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            differ(f"{len(a)} items became {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{where}[{i}]", storages)
        return
    if isinstance(a, (set, frozenset)):
        if a != b:
            differ(f"{a!r} became {b!r}")
        return
    if isinstance(a, argparse.Namespace):
        same(vars(a), vars(b), f"{where}.__dict__", storages)
        return
    if a != b:
        differ(f"{a!r} became {b!r}")


def compare(orig, conv):
    a = torch.load(orig)
    b = torch.load(conv)
    storages = []
    same(a, b, "", storages)
    # The same grouping of tensors by what they view.
    groups_a, groups_b = {}, {}
    for where, sa, sb in storages:
        groups_a.setdefault(sa, []).append(where)
        groups_b.setdefault(sb, []).append(where)
    ga = sorted(sorted(g) for g in groups_a.values())
    gb = sorted(sorted(g) for g in groups_b.values())
    if ga != gb:
        raise Differ(f"shared tensors {[g for g in ga if len(g) > 1]} became {[g for g in gb if len(g) > 1]}")
    return b


def main():
    if sys.argv[1] == "write":
        out = sys.argv[2]
        for name, make in CASES.items():
            torch.save(make(), os.path.join(out, name + ".pt"))
            print(name)
        return 0
    try:
        b = compare(sys.argv[2], sys.argv[3])
        if sys.argv[1] == "strict":
            resnet().load_state_dict(b["model"], strict=True)
    except Differ as e:
        print(e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
