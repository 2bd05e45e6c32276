"""torch.save files whose object ckpt cannot record as the user's layout, and files it can.

  torch_lost.py write OUT          writes OUT/<name>.pt for every case below (and OUT/ckptlost_user.py,
                                   the module of the custom class); prints the names
  torch_lost.py schema ORIG CONV   torch.load both: CONV holds ckpt's checkpoint layout (the keys
                                   ckpt's writer gives a checkpoint), not ORIG's keys, and every
                                   tensor of ORIG's state dict, equal, in its model_state_dict;
                                   exits 1 naming the first difference
  torch_lost.py unsigned DIR       torch.load each DIR/*.pt (state dicts): prints '<name> loads: <key>=<dtype>, ...'
                                   or '<name> fails: <why>', one line each
"""
import glob
import os
import sys

import numpy as np
import torch

USER_MODULE = '''
class Config:
    """A training script's own settings object: torch.save pickles it by its class."""
    def __init__(self, lr, layers):
        self.lr = lr
        self.layers = layers
'''


def model_state():
    torch.manual_seed(7)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).state_dict()


def optimizer_state(sd):
    params = [torch.nn.Parameter(v.clone()) for v in sd.values()]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    return opt.state_dict()


def cases(out):
    sys.path.insert(0, out)
    with open(os.path.join(out, "ckptlost_user.py"), "w") as f:
        f.write(USER_MODULE)
    import ckptlost_user
    sd = model_state()
    return {
        # An object of the user's own class (not one ckpt writes back) beside the weights.
        "custom_class": {"model_state_dict": sd, "optimizer_state_dict": optimizer_state(sd), "epoch": 3,
                         "cfg": ckptlost_user.Config(lr=0.1, layers=[3, 4, 2])},
        # A global: a function saved by reference.
        "global_ref": {"state_dict": sd, "activation": torch.nn.functional.relu},
        # A big-endian NumPy array, which ckpt holds little-endian.
        "big_endian": {"model_state_dict": sd, "epoch": 2, "history": np.arange(5, dtype=">f4")},
        # Structures ckpt records or reproduces: nothing lost.
        "plain_state_dict": {k: v for k, v in sd.items()},
        "module_state_dict": sd,
        "plain_checkpoint": {"epoch": 4, "model_state_dict": sd, "optimizer_state_dict": optimizer_state(sd), "loss": 0.25},
    }


class Differ(Exception):
    pass


def schema(orig_path, conv_path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(orig_path)))  # the custom class's module
    orig = torch.load(orig_path)
    conv = torch.load(conv_path)
    if not isinstance(conv, dict):
        raise Differ(f"the converted file holds a {type(conv).__name__}")
    if "model_state_dict" not in conv:
        raise Differ(f"no model_state_dict in the converted file: keys {list(conv)}")
    if list(conv.keys()) == list(orig.keys()):
        raise Differ(f"the converted file has the original's keys {list(orig)}: not ckpt's checkpoint layout")
    allowed = {"epoch", "model_state_dict", "optimizer_state_dict", "loss", "trainer", "extra"}
    if not set(conv) <= allowed:
        raise Differ(f"keys {sorted(set(conv) - allowed)} are not ckpt's checkpoint layout")
    sd = next(v for k, v in orig.items() if k in ("model_state_dict", "state_dict", "model"))
    got = conv["model_state_dict"]
    if list(got) != list(sd):
        raise Differ(f"model_state_dict has {list(got)}, the original {list(sd)}")
    for k, v in sd.items():
        if got[k].dtype != v.dtype or not torch.equal(got[k], v):
            raise Differ(f"model_state_dict[{k!r}] differs")


def main():
    mode = sys.argv[1]
    if mode == "write":
        out = sys.argv[2]
        for name, obj in cases(out).items():
            torch.save(obj, os.path.join(out, name + ".pt"))
            print(name)
        return 0
    if mode == "schema":
        try:
            schema(sys.argv[2], sys.argv[3])
        except Differ as e:
            print(e)
            return 1
        print("OK")
        return 0
    if mode == "unsigned":
        for path in sorted(glob.glob(os.path.join(sys.argv[2], "*.pt"))):
            name = os.path.basename(path)[:-3]
            try:
                obj = torch.load(path)
                print(f"{name} loads: " + ", ".join(f"{k}={v.dtype}" for k, v in obj.items()))
            except Exception as e:  # torch 1.13 fails with AttributeError on a storage class it lacks
                print(f"{name} fails: {type(e).__name__}: {e}".replace("\n", " "))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
