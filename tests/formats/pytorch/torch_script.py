"""TorchScript archives made by torch.jit.save, and what torch says is in them.

  torch_script.py write OUT     writes OUT/<name>.pt (torch.jit.save of a scripted or traced
                                torchvision model, weights=None, seeded, and a small module
                                with a tensor constant and an extra file) and beside each
                                OUT/<name>.expected.pt, torch.save of torch.jit.load(f).state_dict();
                                prints the names
  torch_script.py strict MODEL CONVERTED
                                loads CONVERTED's model_state_dict (a .pt ckpt converted the
                                archive to) into a fresh torchvision MODEL with strict=True and
                                checks its outputs against the archive's own on one input
"""
import os
import warnings
import sys

import torch
import torchvision

# Tracing warns about the tensor constant on stderr, which the test reads with stdout.
warnings.simplefilter("ignore")


def small():
    class WithConstant(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)
            self.register_buffer("scale", torch.tensor([1.5, 2.5]))

        def forward(self, x):
            return self.fc(x) * self.scale * torch.tensor([3.0, 4.0])

    return torch.jit.trace(WithConstant().eval(), torch.randn(1, 3))


@torch.jit.script
class Holder:
    """An object of a scripted class (not a Module): state_dict() leaves its tensor out."""

    def __init__(self, t: torch.Tensor):
        self.t = t


class WithHolder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)
        self.h = Holder(torch.full((3,), 7.0))

    def forward(self, x):
        return self.lin(x) + self.h.t.sum()


class Shared(torch.nn.Module):
    """One submodule under two names: state_dict() lists it under both."""

    def __init__(self):
        super().__init__()
        lin = torch.nn.Linear(2, 2)
        self.a = lin
        self.b = lin

    def forward(self, x):
        return self.a(x) + self.b(x)


class Attributes(torch.nn.Module):
    """A plain tensor attribute, a buffer left out of the state dict, a parameter set to None."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(2))
        self.plain = torch.zeros(3)
        self.register_buffer("buf", torch.full((2,), 5.0))
        self.register_buffer("nonpersist", torch.full((2,), 9.0), persistent=False)
        self.register_parameter("none_param", None)

    def forward(self, x):
        return x * self.w + self.plain.sum() + self.buf.sum() + self.nonpersist.sum()


def edited(src, dst, edit):
    """src with its code/__torch__.py changed by `edit`: code torch still loads, read otherwise."""
    import zipfile

    zin = zipfile.ZipFile(src)
    old = zin.namelist()[0].split("/")[0]
    new = os.path.basename(dst)[:-3]
    with zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            rel = info.filename[len(old) + 1:]
            data = zin.read(info.filename)
            if rel == "code/__torch__.py":
                data = edit(data.decode())
                if data is None:
                    continue
                data = data.encode()
            zout.writestr(f"{new}/{rel}", data, compress_type=info.compress_type)


def main():
    if sys.argv[1] == "write":
        out = sys.argv[2]
        cases = {}
        for arch in ("resnet18", "mobilenet_v3_small"):
            torch.manual_seed(0)
            m = getattr(torchvision.models, arch)(weights=None, num_classes=10).eval()
            cases[arch + "_scripted"] = torch.jit.script(m)
            cases[arch + "_traced"] = torch.jit.trace(m, torch.randn(1, 3, 64, 64))
        torch.manual_seed(1)
        cases["constant"] = small()
        cases["holder"] = torch.jit.script(WithHolder().eval())
        cases["shared"] = torch.jit.script(Shared().eval())
        cases["attributes"] = torch.jit.script(Attributes().eval())
        for name, module in cases.items():
            path = os.path.join(out, name + ".pt")
            torch.jit.save(module, path, _extra_files={"config.json": '{"source": "ckpt test"}'})
            torch.save(torch.jit.load(path).state_dict(), os.path.join(out, name + ".expected.pt"))
            print(name)
        # Edited code that ckpt refuses rather than reads in a way torch might not.
        a = os.path.join(out, "attributes.pt")
        for name, edit in {
            "single_quotes": lambda t: t.replace('__parameters__ = ["w",', "__parameters__ = ['w',"),
            "comment_in_list": lambda t: t.replace('__parameters__ = ["w", "none_param", ]',
                                                   '__parameters__ = ["w", "none_param", # "plain"\n  ]'),
            "declared_twice": lambda t: t.replace('__parameters__ = ["w", "none_param", ]', '__parameters__ = ["w", "none_param", "buf", ]'),
            "no_code": lambda t: None,
        }.items():
            edited(a, os.path.join(out, "edited_" + name + ".pt"), edit)
        return 0
    arch, converted = sys.argv[2], sys.argv[3]
    torch.manual_seed(0)
    m = getattr(torchvision.models, arch)(weights=None, num_classes=10).eval()
    sd = torch.load(converted)
    sd = sd.get("model_state_dict", sd)
    m.load_state_dict(sd, strict=True)
    x = torch.randn(2, 3, 64, 64)
    archive = os.path.join(os.path.dirname(converted), arch + "_scripted.pt")
    want = torch.jit.load(archive)(x)
    got = m(x)
    if not torch.equal(want, got):
        print("outputs differ by", (want - got).abs().max().item())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
