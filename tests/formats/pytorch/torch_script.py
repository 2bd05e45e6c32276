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
        for name, module in cases.items():
            path = os.path.join(out, name + ".pt")
            torch.jit.save(module, path, _extra_files={"config.json": '{"source": "ckpt test"}'})
            torch.save(torch.jit.load(path).state_dict(), os.path.join(out, name + ".expected.pt"))
            print(name)
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
