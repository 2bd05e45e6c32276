"""scikit-learn estimators as users pickle them, and calls a pickle may ask for.

  make_sklearn.py OUT MARKER   writes into OUT, for MLPClassifier and RandomForestClassifier
                               (fitted, seeded): <name>_p2.pkl, _p4.pkl, _p5.pkl (pickle.dump at
                               each protocol) and <name>.joblib (joblib.dump, compress=3); the
                               arrays a reader must extract bit for bit as <name>.<what>.bin; and
                               call_<module>.pkl, pickles that call a function of that module
                               (never run by ckpt: each would create MARKER, or worse)
"""
import os
import pickle
import sys
import warnings

import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.neural_network import MLPClassifier

warnings.simplefilter("ignore")
out, marker = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(4)
X = rng.standard_normal((40, 5))
y = (X[:, 0] > 0).astype(int)
models = {
    "mlp": MLPClassifier(hidden_layer_sizes=(7,), max_iter=50, random_state=0).fit(X, y),
    "forest": RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y),
}
for name, m in models.items():
    for proto in (2, 4, 5):
        with open(os.path.join(out, f"{name}_p{proto}.pkl"), "wb") as f:
            pickle.dump(m, f, protocol=proto)
    joblib.dump(m, os.path.join(out, f"{name}.joblib"), compress=3)


def expect(name, a):
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        f.write(np.ascontiguousarray(a).tobytes())


mlp = models["mlp"]
for i, (w, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_)):
    expect(f"mlp.coefs_.{i}", w)
    expect(f"mlp.intercepts_.{i}", b)
expect("mlp.random_state_key", mlp._random_state.get_state()[1])
tree = models["forest"].estimators_[0].tree_
state = tree.__getstate__()
expect("forest.tree0.nodes", state["nodes"])
expect("forest.tree0.values", state["values"])
with open(os.path.join(out, "forest.tree0.fields.txt"), "w") as f:
    nodes = state["nodes"].dtype
    f.write(" ".join(f"{n}:{nodes.fields[n][0].str}@{nodes.fields[n][1]}" for n in nodes.names))


class Call:
    """Pickles as a call of module.name(*args)."""

    def __init__(self, module, name, *args):
        self.module, self.name, self.args = module, name, args

    def __reduce__(self):
        mod = __import__(self.module, fromlist=[self.name])
        return getattr(mod, self.name), self.args


calls = {
    "builtins_eval": Call("builtins", "eval", f"open({marker!r}, 'w')"),
    "builtins_getattr": Call("builtins", "getattr", "os", "system"),
    "importlib": Call("importlib", "import_module", "os"),
    "pickle_loads": Call("pickle", "loads", b"N."),
    "shutil_rmtree": Call("shutil", "rmtree", marker),
    "posix_system": Call("os", "system", f"touch {marker}"),
    "numpy_load": Call("numpy", "load", marker),
    "functools_partial": Call("functools", "partial", print),
    "marshal_loads": Call("marshal", "loads", b"N"),
    "webbrowser": Call("webbrowser", "open", "http://127.0.0.1:9/"),
}
for name, c in calls.items():
    with open(os.path.join(out, f"call_{name}.pkl"), "wb") as f:
        pickle.dump({"payload": c}, f, protocol=2)
# A call of a function ckpt knows nothing about: refused.
# Ways around a list of modules that run code: a dotted name reached through another module,
# a private twin, a harmless call whose argument is the harmful one, and a function (not a
# class) of a module the allow-list trusts for classes.
hand_made = {
    "dotted_name": b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\tlinecache\x8c\tos.system\x93\x8c\x04true\x85R.",
    "private_twin": b"\x80\x02c_functools\npartial\ncposix\nsystem\nX\x04\x00\x00\x00true\x86R.",
    "nested_starmap": b"\x80\x02ccollections\ndeque\ncitertools\nstarmap\ncposix\nsystem\n]X\x04\x00\x00\x00true\x85a\x86R\x85R.",
    "sklearn_lowercase": b"\x80\x02csklearn.utils\nshow_versions\n)R.",
}
for name, data in hand_made.items():
    with open(os.path.join(out, f"call_{name}.pkl"), "wb") as f:
        f.write(data)
# User data spelled like the members ckpt's mapping makes for a raw array and a call record.
with open(os.path.join(out, "spoof.pkl"), "wb") as f:
    pickle.dump({"fake": {"__numpy_dtype__": "<u4", "__shape__": [1], "data": np.zeros(4, "u1")},
                 "real": np.array([b"ab"], dtype="S2"), "call": {"__call__": "numpy.random._pickle.__randomstate_ctor (not run)"}},
                f, protocol=4)
with open(os.path.join(out, "call_unknown.pkl"), "wb") as f:
    f.write(b"\x80\x02}X\x05\x00\x00\x00modelcsklearn_extra.builders\nmake_thing\nX\x03\x00\x00\x00abcK\x07\x86Rs.")
