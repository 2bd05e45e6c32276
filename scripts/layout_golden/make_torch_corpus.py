"""Real torch and pickle files of every layout ckpt's PyTorch mapping knows, for the golden
comparison of scripts/layout_golden/run.sh (a build's readings and conversions of them, before
and after a change). Deterministic: seeded, and torch.save writes no times.

  /usr/bin/python3 make_torch_corpus.py OUT_DIR"""
import os
import pickle
import sys

import numpy as np
import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 8)
        self.bn = torch.nn.BatchNorm1d(8)
        self.fc2 = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


def trained(opt_cls, sched=None, **kw):
    net = Net()
    opt = opt_cls(net.parameters(), **kw)
    s = sched(opt) if sched else None
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    loss = None
    for _ in range(3):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        if s:
            s.step()
    return net, opt, s, loss


def save(obj, name):
    torch.save(obj, f"{out}/{name}.pt")


net, opt, _, loss = trained(torch.optim.SGD, lr=0.1, momentum=0.9)
save(net.state_dict(), "state_dict")
save({"epoch": 3, "model_state_dict": net.state_dict(), "optimizer_state_dict": opt.state_dict(), "loss": loss},
     "ckpt_sgd")
net, opt, _, loss = trained(torch.optim.Adam, lr=1e-3)
save({"epoch": 5, "model": net.state_dict(), "optimizer": opt.state_dict(), "loss": loss.item()}, "ckpt_adam")
net, opt, sched, loss = trained(torch.optim.AdamW, lambda o: torch.optim.lr_scheduler.StepLR(o, 2, 0.5),
                                lr=1e-2, weight_decay=0.05)
save({"epoch": 7, "state_dict": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
      "step": 21, "note": "adamw+steplr", "best_acc": 0.75}, "ckpt_adamw_sched")
net, opt, sched, loss = trained(torch.optim.SGD, lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.1, total_steps=10),
                                lr=0.01, momentum=0.9, nesterov=True)
# torch 1.13's OneCycleLR keeps its anneal function (a bound method) in its state: left out.
sched_state = {k: v for k, v in sched.state_dict().items() if k != "anneal_func"}
save({"net": net.state_dict(), "optimizer_state_dict": opt.state_dict(), "lr_scheduler": sched_state,
      "global_step": 3}, "ckpt_onecycle")
import torchvision
save(torchvision.models.resnet18(weights=None).state_dict(), "resnet18")
# Tied weights: a decoder sharing its embedding's storage.
emb = torch.nn.Embedding(10, 4)
dec = torch.nn.Linear(4, 10, bias=False)
dec.weight = emb.weight
save({"emb.weight": emb.weight.data, "dec.weight": dec.weight.data, "dec.extra": torch.ones(2)}, "tied")
# NumPy values inside a torch checkpoint.
save({"epoch": 2, "model_state_dict": Net().state_dict(), "mean": np.arange(3, dtype=np.float32),
      "loss": np.float64(0.5), "history": [0.9, 0.7, 0.5]}, "ckpt_numpy")
# A trainer/extra pair as ckpt's own writer lays them out, and a nested dict.
save({"epoch": 1, "model_state_dict": Net().state_dict(), "trainer": {"seed": 4, "lr": torch.tensor(0.5, dtype=torch.float64)},
      "extra": {"tags": ["a", "b"]}, "config": {"depth": 3, "layers": [8, 3]}}, "ckpt_trainer_extra")
# Plain pickles of the same dict shapes (MegEngine saves with pickle; joblib with its own).
rng = np.random.default_rng(0)
sd = {"fc1.weight": rng.standard_normal((8, 4)).astype(np.float32), "fc1.bias": np.zeros(8, np.float32),
      "bn.running_mean": np.zeros(8, np.float32), "bn.num_batches_tracked": np.array(3, np.int64),
      "fc2.weight": rng.standard_normal((3, 8)).astype(np.float32), "fc2.bias": np.zeros(3, np.float32)}
params = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
sgd = {"state": {i: {"momentum_buffer": np.ones_like(sd[p])} for i, p in enumerate(params)},
       "param_groups": [{"lr": 0.1, "momentum": 0.9, "dampening": 0, "weight_decay": 0.0, "nesterov": False,
                         "maximize": False, "foreach": None, "differentiable": False, "params": [0, 1, 2, 3]}]}
with open(f"{out}/megengine_style.pkl", "wb") as f:
    pickle.dump({"epoch": 4, "state_dict": sd, "opt_state": sgd}, f)
with open(f"{out}/pickle_checkpoint.pkl", "wb") as f:
    pickle.dump({"epoch": 4, "model_state_dict": sd, "optimizer_state_dict": sgd, "loss": 0.25}, f)
adam = {"state": {i: {"step": 3, "exp_avg": np.ones_like(sd[p]), "exp_avg_sq": np.ones_like(sd[p])}
                  for i, p in enumerate(params)},
        "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "amsgrad": False,
                          "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                          "fused": False, "params": [0, 1, 2, 3]}]}
with open(f"{out}/pickle_adam.pkl", "wb") as f:
    pickle.dump({"epoch": 9, "model": sd, "optimizer": adam, "step": 90, "note": "numpy"}, f, protocol=4)
import joblib
joblib.dump({"epoch": 2, "net": sd, "mean": np.arange(3.0)}, f"{out}/joblib_checkpoint.joblib")
with open(f"{out}/pickle_state_dict.pkl", "wb") as f:
    pickle.dump(sd, f)
