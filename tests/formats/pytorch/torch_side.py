"""PyTorch's side of tests/formats/pytorch: writes files with torch.save, and loads and checks
what ckpt wrote. Run with Debian's /usr/bin/python3 (python3-torch)."""
import os
import subprocess
import sys
import zipfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class MLP(nn.Module):  # ckpt's Model::mlp_spec(784, [64], 10)
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x.reshape(x.shape[0], -1))))


class ConvNet(nn.Module):  # ckpt's Model::convnet_spec(), the guides' LeNet
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, 5)
        self.conv2 = nn.Conv2d(10, 20, 5)
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x.reshape(-1, 1, 28, 28)), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


MEAN, STD = 0.2860, 0.3530


def fashion_mnist(split, n):
    import gzip
    root = "/usr/share/datasets/fashion-mnist"
    prefix = "train" if split == "train" else "t10k"
    with gzip.open(f"{root}/{prefix}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)[:n]
    with gzip.open(f"{root}/{prefix}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    # Normalised as ckpt's loader does (train/src/fashion_mnist.cpp), in float32.
    x = (torch.tensor(x, dtype=torch.float32) / 255.0 - MEAN) / STD
    return x, torch.tensor(y, dtype=torch.int64)


def train(model, opt, steps=30):
    x, y = fashion_mnist("train", 64 * steps)
    loss = None
    for i in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x[i * 64:(i + 1) * 64]), y[i * 64:(i + 1) * 64])
        loss.backward()
        opt.step()
    return loss


def dump(tensor, path):
    t = tensor.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    with open(path, "wb") as f:
        f.write(t.numpy().tobytes())


def write_fixtures(out):
    """Torch-trained models and checkpoints, and the exact bytes of every tensor."""
    torch.manual_seed(0)
    mlp, conv = MLP(), ConvNet()
    sgd = torch.optim.SGD(mlp.parameters(), lr=0.05, momentum=0.9)
    mlp_loss = train(mlp, sgd)
    adam = torch.optim.Adam(conv.parameters(), lr=1e-3)
    conv_loss = train(conv, adam, 10)
    torch.save(mlp.state_dict(), f"{out}/mlp.pt")
    torch.save(conv.state_dict(), f"{out}/convnet.pth")
    torch.save({"epoch": 3, "model_state_dict": mlp.state_dict(), "optimizer_state_dict": sgd.state_dict(),
                "loss": mlp_loss}, f"{out}/mlp_checkpoint.pt")
    torch.save({"epoch": 1, "model_state_dict": conv.state_dict(), "optimizer_state_dict": adam.state_dict(),
                "loss": conv_loss.item(), "note": "adam"}, f"{out}/convnet_checkpoint.pt")
    os.makedirs(f"{out}/expect", exist_ok=True)
    for prefix, model in (("mlp", mlp), ("convnet", conv)):
        for k, v in model.state_dict().items():
            dump(v, f"{out}/expect/{prefix}.{k}")
        xt, _ = fashion_mnist("test", 20)
        with torch.no_grad():
            np.savetxt(f"{out}/expect/{prefix}.logits", model(xt).numpy(), fmt="%.9g")
        # What `ckpt eval --limit 500` must report for the same model.
        xe, ye = fashion_mnist("test", 500)
        with torch.no_grad():
            logits = model(xe)
        accuracy = (logits.argmax(1) == ye).double().mean().item()
        loss = F.cross_entropy(logits, ye).item()
        with open(f"{out}/expect/{prefix}.eval", "w") as f:
            f.write(f"{accuracy:.17g} {loss:.17g}\n")
    for i, s in sgd.state_dict()["state"].items():
        dump(s["momentum_buffer"], f"{out}/expect/sgd.{i}.momentum_buffer")
    with open(f"{out}/expect/losses", "w") as f:
        f.write(f"{mlp_loss.item():.17g} {conv_loss.item():.17g}\n")
    # Every dtype, a 0-d and an empty tensor, views into one storage, a transposed view.
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    kinds = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16, "bf16": torch.bfloat16,
             "i8": torch.int8, "u8": torch.uint8, "i16": torch.int16, "i32": torch.int32, "i64": torch.int64,
             "bool": torch.bool}
    d = {name: (torch.arange(12).reshape(3, 4) % 5 - 2).to(dt) for name, dt in kinds.items()}
    d["scalar"] = torch.tensor(2.5)
    d["empty"] = torch.zeros(0, 3)
    d["row"] = base[1]          # a view at an offset into base's storage
    d["transposed"] = base.t()  # not contiguous
    d["base"] = base
    torch.save(d, f"{out}/dtypes.pt")
    for k, v in d.items():
        dump(v, f"{out}/expect/dtypes.{k}")
    # The legacy (pre-1.6) format.
    torch.save(mlp.state_dict(), f"{out}/legacy.pt", _use_new_zipfile_serialization=False)
    torch.save(mlp.state_dict(), f"{out}/legacy_p4.bin", _use_new_zipfile_serialization=False, pickle_protocol=4)


class Small(nn.Module):  # with buffers, which torch's optimizers do not index
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.fc2 = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc2(F.relu(self.bn(self.fc1(x))))


def write_layouts(out):
    """Checkpoint dicts under the keys of the PyTorch, MegEngine and Lightning guides, and
    optimizers ckpt's schema cannot express (which must reach `extra` whole), each file with
    the bytes of its tensors: expect/<stem>.model.<name> for the state dict,
    expect/<stem>.state.<index>.<key> for the optimizer's per-parameter state."""
    torch.manual_seed(1)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))

    def trained(make_opt):
        model = Small()
        opt = make_opt(model)
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        return model, opt

    sgd = lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    adam = lambda m: torch.optim.Adam(m.parameters(), lr=0.01)
    cases = {
        # PyTorch's guide with the short keys, and MegEngine's guide ("net").
        "alias_model": (sgd, lambda m, o: {"model": m.state_dict(), "optimizer": o.state_dict(), "epoch": 4}),
        "alias_net": (adam, lambda m, o: {"net": m.state_dict(), "optimizer": o.state_dict(), "iteration": 7,
                                         "loss": torch.tensor(0.5)}),
        # Lightning's and many scripts' "state_dict", with a step count.
        "alias_state_dict": (sgd, lambda m, o: {"state_dict": m.state_dict(), "global_step": 100, "epoch": 2}),
        # Two parameter groups: weights and biases at different learning rates.
        "two_groups": (lambda m: torch.optim.SGD(
            [{"params": [p for n, p in m.named_parameters() if n.endswith("weight")]},
             {"params": [p for n, p in m.named_parameters() if n.endswith("bias")], "lr": 0.01}],
            lr=0.1, momentum=0.9),
            lambda m, o: {"model_state_dict": m.state_dict(), "optimizer_state_dict": o.state_dict(), "epoch": 1}),
        # RMSprop has momentum (but no dampening or nesterov), Adamax betas (but no amsgrad).
        "rmsprop": (lambda m: torch.optim.RMSprop(m.parameters(), lr=0.01, momentum=0.5),
                    lambda m, o: {"model_state_dict": m.state_dict(), "optimizer_state_dict": o.state_dict(), "epoch": 1}),
        "adamax": (lambda m: torch.optim.Adamax(m.parameters(), lr=0.01),
                   lambda m, o: {"model": m.state_dict(), "optimizer": o.state_dict(), "epoch": 1}),
        # An optimizer over only some of the parameters: its indexes name no parameter for sure.
        "partial": (lambda m: torch.optim.SGD(m.fc2.parameters(), lr=0.1, momentum=0.9),
                    lambda m, o: {"model_state_dict": m.state_dict(), "optimizer_state_dict": o.state_dict(), "epoch": 1}),
        # Over every parameter, in another order than the state dict's: its index i is not the
        # state dict's i-th parameter, which the buffers' shapes show.
        "reordered_sgd": (lambda m: torch.optim.SGD(
            list(m.fc2.parameters()) + list(m.fc1.parameters()) + list(m.bn.parameters()), lr=0.1, momentum=0.9),
            lambda m, o: {"model": m.state_dict(), "optimizer": o.state_dict(), "epoch": 1}),
        "reordered_adam": (lambda m: torch.optim.Adam(
            list(m.bn.parameters()) + list(m.fc2.parameters()) + list(m.fc1.parameters()), lr=0.01, amsgrad=True),
            lambda m, o: {"model_state_dict": m.state_dict(), "optimizer_state_dict": o.state_dict(), "epoch": 1}),
    }
    for stem, (make_opt, layout) in cases.items():
        model, opt = trained(make_opt)
        torch.save(layout(model, opt), f"{out}/{stem}.pt")
        for k, v in model.state_dict().items():
            dump(v, f"{out}/expect/{stem}.model.{k}")
        for i, s in opt.state_dict()["state"].items():
            for k, v in s.items():
                if isinstance(v, torch.Tensor):
                    dump(v, f"{out}/expect/{stem}.state.{i}.{k}")


class Shell:  # what data.pkl must never be able to do
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


class Subprocess:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.check_call, (["touch", self.marker],))


def write_malicious(out, marker):
    """torch.save files whose data.pkl runs a command: torch.load(weights_only=False) would.
    evil_system.pt calls os.system, evil_subprocess.pt subprocess.check_call beside real
    tensors, evil_nested.pt hides os.system deep inside a checkpoint."""
    torch.save({"w": Shell(marker)}, f"{out}/evil_system.pt")
    torch.save({"w": torch.ones(2), "hook": Subprocess(marker)}, f"{out}/evil_subprocess.pt")
    torch.save({"epoch": 1, "model_state_dict": {"w": torch.ones(2)},
                "extra": {"layers": [{"n": 1}, {"hooks": [1, 2, Shell(marker)]}]}}, f"{out}/evil_nested.pt")


def write_values(out):
    """What torchvision's reference scripts and users put beside the weights: NumPy scalars and
    arrays, an argparse.Namespace; and a pickled model (torch.save(model)), which ckpt refuses."""
    import argparse
    import numpy as np
    torch.manual_seed(0)
    m = torch.nn.Linear(3, 2)
    torch.save({"model": m.state_dict(), "best_acc": np.float64(0.91), "best_epoch": np.int64(7),
                "history": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
                "args": argparse.Namespace(lr=0.1, epochs=3, model="resnet18")}, f"{out}/numpy_values.pt")
    torch.save(m, f"{out}/whole_model.pt")


def check_state_dict(path, kind, logits):
    """ckpt's file: weights_only load, strict load_state_dict, the same logits."""
    sd = torch.load(path, weights_only=True)
    model = MLP() if kind == "mlp" else ConvNet()
    model.load_state_dict(sd, strict=True)
    xt, _ = fashion_mnist("test", 20)
    with torch.no_grad():
        got = model(xt).numpy()
    want = np.loadtxt(logits, dtype=np.float32)
    assert np.abs(got - want).max() <= 1e-5, np.abs(got - want).max()
    print("ok", kind, type(sd).__name__, len(sd))


def check_dtypes(path, expect_dir):
    sd = torch.load(path, weights_only=True)
    for k, v in sd.items():
        want = open(expect_dir + k, "rb").read()
        t = v.contiguous().view(torch.int16) if v.dtype == torch.bfloat16 else v.contiguous()
        assert t.numpy().tobytes() == want, k
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if "/data/" in info.filename:
                # The data of each storage starts at a multiple of 64, as torch writes it.
                with open(path, "rb") as f:
                    f.seek(info.header_offset + 26)
                    n, m = np.frombuffer(f.read(4), np.uint16)
                assert (info.header_offset + 30 + n + m) % 64 == 0, info.filename
    print("ok", len(sd), "tensors")


def optimizer_step(path, kind, batch, out, floats):
    """Loads model and optimizer state ckpt wrote into torch's SGD/Adam, takes one step on
    the batch ckpt used, and writes the parameters after it. `floats` is weights-only (the
    default file: torch.load(weights_only=True) must take it) or python-floats (floats=python:
    Python floats, which torch 1.13 loads only with weights_only=False)."""
    ck = torch.load(path, weights_only=floats == "weights-only")
    lr = ck["optimizer_state_dict"]["param_groups"][0]["lr"]
    if floats == "python-floats":
        assert type(lr) is float and type(ck["loss"]) is float, (type(lr), type(ck["loss"]))
    else:
        assert isinstance(lr, torch.Tensor) and lr.dim() == 0 and lr.dtype == torch.float64, lr
    model = MLP()
    model.load_state_dict(ck["model_state_dict"], strict=True)
    opt = (torch.optim.SGD(model.parameters(), lr=1.0) if kind == "sgd"
           else torch.optim.Adam(model.parameters(), lr=1.0) if kind == "adam"
           else torch.optim.AdamW(model.parameters(), lr=1.0))
    opt.load_state_dict(ck["optimizer_state_dict"])
    raw = np.fromfile(batch, dtype=np.uint8)
    n = raw.size // 785
    x = torch.tensor(raw[:n * 784].reshape(n, 784), dtype=torch.float32) / 255.0
    y = torch.tensor(raw[n * 784:], dtype=torch.int64)
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
    with open(out, "wb") as f:
        for p in model.parameters():
            f.write(p.detach().numpy().astype(np.float32).tobytes())
    print("ok", kind, "epoch", int(ck["epoch"]), "loss", float(ck["loss"]))


def strip_document(src, dst):
    """`src` without ckpt's own copy of the document (ckpt/document.json), every other entry as
    it is: what ckpt's reader must then read through data.pkl alone."""
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w") as out:
        names = [i.filename for i in z.infolist()]
        assert any(n.endswith("/ckpt/document.json") for n in names), names
        for info in z.infolist():
            if not info.filename.endswith("/ckpt/document.json"):
                out.writestr(info, z.read(info))
    print("ok", len(names) - 1, "entries")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "fixtures":
        write_fixtures(sys.argv[2])
        write_layouts(sys.argv[2])
    elif cmd == "values":
        write_values(sys.argv[2])
    elif cmd == "malicious":
        write_malicious(sys.argv[2], sys.argv[3])
    elif cmd == "state-dict":
        check_state_dict(*sys.argv[2:5])
    elif cmd == "dtypes":
        check_dtypes(*sys.argv[2:4])
    elif cmd == "strip-document":
        strip_document(*sys.argv[2:4])
    elif cmd == "optimizer-step":
        optimizer_step(*sys.argv[2:7])
    else:
        sys.exit("unknown command " + cmd)
