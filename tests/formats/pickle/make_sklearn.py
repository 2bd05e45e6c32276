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
    f.write(" ".join(state["nodes"].dtype.names))


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
# A call of a function ckpt knows nothing about: kept as a call, not made.
with open(os.path.join(out, "call_unknown.pkl"), "wb") as f:
    f.write(b"\x80\x02}X\x05\x00\x00\x00modelcsklearn_extra.builders\nmake_thing\nX\x03\x00\x00\x00abcK\x07\x86Rs.")
