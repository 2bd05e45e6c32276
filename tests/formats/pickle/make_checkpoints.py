"""Training checkpoint dicts twice each: torch.save's file (NAME.pt) and a plain pickle of the same
dict with every tensor a NumPy array (NAME.pkl, as MegEngine's and joblib's savers keep them).
Both must read as one document (core/src/layouts/torch_checkpoint.cpp).

  /usr/bin/python3 make_checkpoints.py OUT_DIR
also checks OUT_DIR/*.back.pt when given `load OUT_DIR NAME...`: torch loads each and resumes
its model and optimizer from it."""
import os
import pickle
import sys

import joblib
import numpy as np
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 8)
        self.bn = torch.nn.BatchNorm1d(8)
        self.fc2 = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


def trained(opt_cls, **kw):
    torch.manual_seed(0)
    net = Net()
    opt = opt_cls(net.parameters(), **kw)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    for _ in range(3):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    return net, opt, loss


def as_numpy(o):
    """The dict with every tensor a NumPy array, the rest as it is."""
    if isinstance(o, torch.Tensor):
        return o.detach().numpy().copy()
    if isinstance(o, dict):
        return type(o)((k, as_numpy(v)) for k, v in o.items())
    if isinstance(o, (list, tuple)):
        return type(o)(as_numpy(v) for v in o)
    return o


def write(out, name, d, saver=pickle.dump):
    torch.save(d, f"{out}/{name}.pt")
    if saver is joblib.dump:
        joblib.dump(as_numpy(d), f"{out}/{name}.pkl")
    else:
        with open(f"{out}/{name}.pkl", "wb") as f:
            pickle.dump(as_numpy(d), f)


def make(out):
    os.makedirs(out, exist_ok=True)
    net, opt, loss = trained(torch.optim.SGD, lr=0.1, momentum=0.9)
    write(out, "sgd", {"epoch": 4, "model_state_dict": net.state_dict(), "optimizer_state_dict": opt.state_dict(),
                       "loss": loss.item(), "note": "sgd", "history": [0.9, 0.7]})
    # Adam's per-parameter step is a 0-d tensor (an array in the pickle), loss a 1-element one.
    net, opt, loss = trained(torch.optim.Adam, lr=1e-3)
    write(out, "adam", {"epoch": 9, "model": net.state_dict(), "optimizer": opt.state_dict(), "step": 90,
                        "loss": loss.detach().reshape(1)}, joblib.dump)
    net, opt, loss = trained(torch.optim.AdamW, lr=1e-2, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.StepLR(opt, 2, 0.5)
    write(out, "adamw", {"state_dict": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                         "global_step": 21, "trainer": {"seed": 4}, "config": {"depth": 3, "dropout": None}})
    # MegEngine's guide: its optimizer key is not one of torch's, so it stays in extra as it is.
    net, opt, _ = trained(torch.optim.SGD, lr=0.1)
    write(out, "megengine", {"epoch": 2, "state_dict": net.state_dict(), "opt_state": opt.state_dict()})
    # An optimizer whose param_groups do not index the state dict's parameters: left in extra.
    net, opt, _ = trained(torch.optim.SGD, lr=0.1, momentum=0.5)
    bad = opt.state_dict()
    bad["param_groups"][0]["params"] = bad["param_groups"][0]["params"][:2]
    write(out, "unmatched", {"model_state_dict": net.state_dict(), "optimizer_state_dict": bad})
    # Optimizers the schema cannot show exactly stay in extra, in both readings: two param
    # groups, Adam steps that differ between parameters, state keyed by names, not indices.
    net = Net()
    two = torch.optim.SGD([{"params": list(net.fc1.parameters())}, {"params": list(net.fc2.parameters()), "lr": 0.5}],
                          lr=0.1, momentum=0.9)
    write(out, "two_groups", {"model_state_dict": net.state_dict(), "optimizer_state_dict": two.state_dict()})
    net, opt, _ = trained(torch.optim.Adam, lr=1e-3)
    uneven = opt.state_dict()
    uneven["state"][1]["step"] = torch.tensor(7.0)
    write(out, "uneven_steps", {"epoch": 1, "model_state_dict": net.state_dict(), "optimizer_state_dict": uneven})
    named = opt.state_dict()
    named["state"] = {"fc1.weight" if i == 0 else i: v for i, v in named["state"].items()}
    write(out, "named_state", {"model_state_dict": net.state_dict(), "optimizer_state_dict": named, "epoch": 2.5})
    # An optimizer built over the parameters in another order than the state dict's: pairing by
    # position would file fc2's momentum under fc1.weight. Both readings keep it in extra.
    net = Net()
    reordered = torch.optim.SGD(list(net.fc2.parameters()) + list(net.bn.parameters()) + list(net.fc1.parameters()),
                                lr=0.1, momentum=0.9)
    x = torch.randn(16, 4)
    net(x).sum().backward()
    reordered.step()
    write(out, "reordered", {"model_state_dict": net.state_dict(), "optimizer_state_dict": reordered.state_dict()})
    # A loss in a half-precision one-element tensor, read as a number through the file's bytes;
    # in the pickle also big-endian, which the plugin swaps as it reads.
    write(out, "half_loss", {"epoch": 1, "model_state_dict": net.state_dict(),
                             "loss": torch.tensor([0.375], dtype=torch.float16)})
    with open(f"{out}/big_endian_loss.pkl", "wb") as f:
        pickle.dump({"model_state_dict": as_numpy(net.state_dict()), "loss": np.array([0.625], dtype=">f8")}, f)
    # An object of the user's class that holds a state dict: not a checkpoint dict.
    with open(f"{out}/holder.pkl", "wb") as f:
        pickle.dump(Holder(as_numpy(net.state_dict())), f)


class Holder:
    def __init__(self, sd):
        self.model = sd
        self.epoch = 3


def load(out, names):
    for name in names:
        d = torch.load(f"{out}/{name}.back.pt")
        net = Net()
        net.load_state_dict(d["model_state_dict"])
        opt = torch.optim.Adam(net.parameters()) if "betas" in d["optimizer_state_dict"]["param_groups"][0] \
            else torch.optim.SGD(net.parameters(), lr=1)
        opt.load_state_dict(d["optimizer_state_dict"])
        ref = torch.load(f"{out}/{name}.pt")
        ref_model = ref.get("model_state_dict", ref.get("model", ref.get("state_dict")))
        for k, v in ref_model.items():
            assert torch.equal(net.state_dict()[k], v), (name, k)
        ref_opt = ref.get("optimizer_state_dict", ref.get("optimizer"))
        for i, s in ref_opt["state"].items():
            for k, v in s.items():
                assert torch.equal(torch.as_tensor(opt.state_dict()["state"][i][k]).float(), torch.as_tensor(v).float()), (name, i, k)
        assert opt.param_groups[0]["lr"] == ref_opt["param_groups"][0]["lr"], name
        print(f"{name}: resumed")


if __name__ == "__main__":
    if sys.argv[1] == "load":
        load(sys.argv[2], sys.argv[3:])
    else:
        make(sys.argv[1])
