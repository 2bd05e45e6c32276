"""Checkpoints of every LR scheduler in torch.optim.lr_scheduler, written and checked by torch.

  torch_schedulers.py write OUT       writes OUT/<Scheduler>.pt, a torchvision-reference-style
                                      dict {'model', 'optimizer', 'lr_scheduler', 'epoch'} after
                                      three steps; prints the schedulers written, and
                                      "unsaveable NAME: why" for one torch itself cannot save
  torch_schedulers.py resume NAME ORIG CONVERTED
                                      restores a fresh model, optimizer and scheduler from ORIG
                                      and from CONVERTED (ORIG converted by ckpt) the way a
                                      resuming script does; checks that every param group key
                                      survived and that the next three learning rates agree;
                                      exits 1 naming what differs

The optimizer and scheduler may sit under other keys after a conversion (ckpt's schema names
them optimizer_state_dict and extra/lr_scheduler): resume looks in both places.
"""
import math
import os
import sys

import torch

torch.manual_seed(0)


def model():
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))


def schedulers(opt):
    s = torch.optim.lr_scheduler
    made = {
        "StepLR": lambda: s.StepLR(opt, step_size=2, gamma=0.5),
        "MultiStepLR": lambda: s.MultiStepLR(opt, milestones=[2, 4], gamma=0.3),
        "ExponentialLR": lambda: s.ExponentialLR(opt, gamma=0.9),
        "CosineAnnealingLR": lambda: s.CosineAnnealingLR(opt, T_max=7, eta_min=0.001),
        "CosineAnnealingWarmRestarts": lambda: s.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2),
        "LinearLR": lambda: s.LinearLR(opt, start_factor=0.25, total_iters=5),
        "ConstantLR": lambda: s.ConstantLR(opt, factor=0.5, total_iters=4),
        "PolynomialLR": lambda: s.PolynomialLR(opt, total_iters=8, power=2.0),
        "CyclicLR": lambda: s.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=2),
        "OneCycleLR": lambda: s.OneCycleLR(opt, max_lr=1.0, total_steps=20),
        "ReduceLROnPlateau": lambda: s.ReduceLROnPlateau(opt, patience=0, factor=0.5),
        "LambdaLR": lambda: s.LambdaLR(opt, lambda e: 0.9 ** e),
        "MultiplicativeLR": lambda: s.MultiplicativeLR(opt, lambda e: 0.95),
    }
    # Every scheduler this torch has is tried: one missing from the table is a test to write.
    names = sorted(n for n, c in vars(s).items()
                   if isinstance(c, type) and n[0] != "_" and n not in ("Optimizer", "Counter") and
                   (issubclass(c, s._LRScheduler) or c is s.ReduceLROnPlateau) and
                   n not in ("SequentialLR", "ChainedScheduler"))
    for n in names:
        if n not in made:
            sys.exit(f"torch.optim.lr_scheduler.{n} is not in the test's table")
    return made


def make(name, seed=0):
    torch.manual_seed(seed)
    m = model()
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    return m, opt, schedulers(opt)[name]()


def step(m, opt, sch, i):
    x = torch.full((5, 4), 0.1 * (i + 1))
    loss = m(x).square().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    if isinstance(sch, torch.optim.lr_scheduler.ReduceLROnPlateau):
        sch.step(1.0)  # never improves: the plateau rule cuts the rate
    else:
        sch.step()


def lrs(opt):
    return [float(g["lr"]) for g in opt.param_groups]


def write(out):
    for name in schedulers(torch.optim.SGD(model().parameters(), lr=0.1)):
        m, opt, sch = make(name)
        for i in range(3):
            step(m, opt, sch, i)
        try:
            torch.save({"model": m.state_dict(), "optimizer": opt.state_dict(), "lr_scheduler": sch.state_dict(),
                        "epoch": 3}, f"{out}/{name}.pt")
        except TypeError as e:  # torch 1.13's CyclicLR: "cannot pickle 'WeakMethod' object"
            os.remove(f"{out}/{name}.pt")
            print(f"unsaveable {name}: {e}")
            continue
        print(name)


def pick(d, *keys):
    for k in keys:
        cur = d
        for part in k.split("/"):
            if not isinstance(cur, dict) or part not in cur:
                break
            cur = cur[part]
        else:
            return cur
    sys.exit(f"none of {keys} in the converted checkpoint (its keys: {sorted(d)})")


def close(a, b):
    return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-15)


def restored(name, ck, keys):
    """A fresh model, optimizer and scheduler restored from checkpoint `ck` as a resuming
    script restores them; the learning rates of the next three steps."""
    m, opt, sch = make(name, seed=1)
    m.load_state_dict(pick(ck, "model", "model_state_dict"), strict=True)
    opt.load_state_dict(pick(ck, "optimizer", "optimizer_state_dict"))
    state = pick(ck, "lr_scheduler", "extra/lr_scheduler")
    keys.append(dict(opt.param_groups[0]))
    if not isinstance(sch, torch.optim.lr_scheduler.ReduceLROnPlateau):
        # Built with the saved last_epoch, as torchvision's scripts do: torch needs every
        # group's initial_lr for that (KeyError otherwise).
        kw = dict(last_epoch=int(state["last_epoch"]))
        try:
            sch = rebuild(name, opt, kw)
        except KeyError as e:
            sys.exit(f"{name}: resuming raises KeyError {e}")
    sch.load_state_dict(state)
    out = []
    for i in range(3, 6):
        step(m, opt, sch, i)
        out.append(lrs(opt))
    return out


def rebuild(name, opt, kw):
    s = torch.optim.lr_scheduler
    args = {
        "StepLR": lambda: s.StepLR(opt, step_size=2, gamma=0.5, **kw),
        "MultiStepLR": lambda: s.MultiStepLR(opt, milestones=[2, 4], gamma=0.3, **kw),
        "ExponentialLR": lambda: s.ExponentialLR(opt, gamma=0.9, **kw),
        "CosineAnnealingLR": lambda: s.CosineAnnealingLR(opt, T_max=7, eta_min=0.001, **kw),
        "CosineAnnealingWarmRestarts": lambda: s.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, **kw),
        "LinearLR": lambda: s.LinearLR(opt, start_factor=0.25, total_iters=5, **kw),
        "ConstantLR": lambda: s.ConstantLR(opt, factor=0.5, total_iters=4, **kw),
        "PolynomialLR": lambda: s.PolynomialLR(opt, total_iters=8, power=2.0, **kw),
        "CyclicLR": lambda: s.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=2, **kw),
        "OneCycleLR": lambda: s.OneCycleLR(opt, max_lr=1.0, total_steps=20, **kw),
        "LambdaLR": lambda: s.LambdaLR(opt, lambda e: 0.9 ** e, **kw),
        "MultiplicativeLR": lambda: s.MultiplicativeLR(opt, lambda e: 0.95, **kw),
    }
    return args[name]()


def resume(name, orig_path, conv_path):
    keys = []
    want = restored(name, torch.load(orig_path), keys)
    got = restored(name, torch.load(conv_path), keys)
    for k, v in keys[0].items():
        if k == "params" or v is None:
            continue
        if k not in keys[1]:
            sys.exit(f"{name}: param group key {k!r} lost")
        if isinstance(v, (bool, int, float)) and not close(keys[1][k], v):
            sys.exit(f"{name}: param group {k!r} is {keys[1][k]!r}, was {v!r}")
    for i, (a, b) in enumerate(zip(got, want)):
        if not all(close(x, y) for x, y in zip(a, b)):
            sys.exit(f"{name}: resumed from the conversion, step {i + 3} has lr {a}; from torch's file {b}")
    print(f"{name}: resumed")


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
    elif sys.argv[1] == "resume":
        resume(*sys.argv[2:5])
    else:
        sys.exit(__doc__)
