"""Files made by the tools ckpt's users use, at test time, and their comparison by those tools.

  make_corpus.py write OUT          writes the corpus into OUT and prints one line per file:
                                    "<file> <kind>", kind being torch, h5py, onnx or pickle
  make_corpus.py compare KIND ORIG BACK
                                    compares BACK (ORIG after ckpt's round trip through another
                                    format) with ORIG using the library that made ORIG: torch.load
                                    (deep, types included: torch_faithful.py), h5py (every group,
                                    dataset and attribute, bit for bit), onnx (checker, graph,
                                    initializers); exits 1 naming the first difference

Everything is seeded; torchvision models are built with weights=None.
"""
import os
import sys
import warnings

warnings.simplefilter("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "formats", "pytorch"))


def write_torch(out, lines):
    import torch
    import torchvision
    import torch_faithful

    for arch in ("resnet18", "mobilenet_v3_small", "squeezenet1_1", "shufflenet_v2_x0_5"):
        torch.manual_seed(0)
        m = getattr(torchvision.models, arch)(weights=None, num_classes=10)
        p = os.path.join(out, f"tv_{arch}.pt")
        torch.save(m.state_dict(), p)
        lines.append((p, "torch"))
    for name, make in torch_faithful.CASES.items():
        if name == "state_dict":
            continue
        p = os.path.join(out, f"user_{name}.pt")
        torch.save(make(), p)
        lines.append((p, "torch"))
    # The PyTorch tutorial's checkpoint: Adam, epoch, loss as a float.
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 26 * 26, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.randn(2, 1, 28, 28)).sum().backward()
    opt.step()
    p = os.path.join(out, "tutorial_checkpoint.tar")
    torch.save({"epoch": 5, "model_state_dict": net.state_dict(), "optimizer_state_dict": opt.state_dict(), "loss": 0.4}, p)
    os.rename(p, p[:-4] + ".pt")
    lines.append((p[:-4] + ".pt", "torch"))


def write_h5py(out, lines):
    import h5py
    import numpy as np

    rng = np.random.default_rng(2)
    p = os.path.join(out, "keras_like.h5")
    with h5py.File(p, "w") as f:
        f.attrs["keras_version"] = "2.11.0"
        f.attrs["backend"] = "tensorflow"
        w = f.create_group("model_weights")
        for layer in ("dense", "dense_1"):
            g = w.create_group(layer).create_group(layer)
            g.create_dataset("kernel:0", data=rng.standard_normal((8, 4)).astype("f4"))
            g.create_dataset("bias:0", data=np.zeros(4, "f4"))
        w.attrs["layer_names"] = np.array([b"dense", b"dense_1"])
    lines.append((p, "h5py"))
    p = os.path.join(out, "arrays.h5")
    with h5py.File(p, "w") as f:
        for dt in ("f2", "f4", "f8", "i1", "u1", "i2", "i4", "i8", "?"):
            f.create_dataset("plain_" + dt, data=(rng.standard_normal((3, 5)) * 10).astype(dt))
        f.create_dataset("chunked_gzip", data=rng.standard_normal((64, 32)).astype("f4"), chunks=(16, 32), compression="gzip")
        f.create_dataset("scalar", data=np.float64(3.25))
        f.create_dataset("empty", data=np.zeros((0, 4), "f4"))
        g = f.create_group("nested/deeper")
        g.create_dataset("x", data=np.arange(10, dtype="i8"))
        g.attrs["epoch"] = 7
        g.attrs["lr"] = 0.01
        g.attrs["name"] = "run"
    lines.append((p, "h5py"))


def write_onnx(out, lines):
    import torch

    torch.manual_seed(3)
    m = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2)).eval()
    p = os.path.join(out, "exported_mlp.onnx")
    torch.onnx.export(m, torch.randn(1, 6), p, input_names=["x"], output_names=["y"], opset_version=13)
    lines.append((p, "onnx"))


def write_pickles(out, lines):
    import pickle

    import joblib
    import numpy as np
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 5))
    y = (X[:, 0] > 0).astype(int)
    models = {
        "logreg": LogisticRegression().fit(X, y),
        "linreg": LinearRegression().fit(X, X[:, 1]),
        "ridge": Ridge().fit(X, X[:, 2]),
        "scaler": StandardScaler().fit(X),
        "pca": PCA(n_components=2).fit(X),
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
        "mlp": MLPClassifier(hidden_layer_sizes=(7,), max_iter=50, random_state=0).fit(X, y),
        "forest": RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y),
    }
    for name, model in models.items():
        for proto in (2, 4, 5):
            p = os.path.join(out, f"sk_{name}_p{proto}.pkl")
            with open(p, "wb") as f:
                pickle.dump(model, f, protocol=proto)
            lines.append((p, "pickle"))
        p = os.path.join(out, f"sk_{name}.joblib")
        joblib.dump(model, p, compress=3)
        lines.append((p, "pickle"))


def compare_h5(a_path, b_path):
    import h5py
    import numpy as np

    with h5py.File(a_path, "r") as a, h5py.File(b_path, "r") as b:
        def attrs(x, y, where):
            for k in x.attrs:
                if k not in y.attrs:
                    return f"{where}@{k} lost"
                va, vb = x.attrs[k], y.attrs[k]
                va = va.decode() if isinstance(va, bytes) else va
                vb = vb.decode() if isinstance(vb, bytes) else vb
                if isinstance(va, np.ndarray) and va.dtype.kind == "S":
                    va = [s.decode() for s in va]
                if isinstance(vb, np.ndarray) and vb.dtype.kind in "SO":
                    vb = [s.decode() if isinstance(s, bytes) else s for s in vb]
                if np.asarray(va).tolist() != np.asarray(vb).tolist():
                    return f"{where}@{k}: {va!r} became {vb!r}"
            return None

        def walk(x, y, where):
            r = attrs(x, y, where or "/")
            if r:
                return r
            for k in x:
                if k not in y:
                    return f"{where}/{k} lost"
                if isinstance(x[k], h5py.Group):
                    r = walk(x[k], y[k], f"{where}/{k}")
                else:
                    da, db = x[k][()], y[k][()]
                    if da.dtype != db.dtype or np.shape(da) != np.shape(db) or np.asarray(da).tobytes() != np.asarray(db).tobytes():
                        return f"{where}/{k}: {da.dtype}{np.shape(da)} became {db.dtype}{np.shape(db)} or its values changed"
                    r = attrs(x[k], y[k], f"{where}/{k}")
                if r:
                    return r
            return None

        return walk(a, b, "")


def compare_onnx(a_path, b_path):
    import onnx
    from onnx import numpy_helper

    a, b = onnx.load(a_path), onnx.load(b_path)
    onnx.checker.check_model(b)
    if [(o.domain, o.version) for o in a.opset_import] != [(o.domain, o.version) for o in b.opset_import]:
        return "opset changed"
    na = [(n.op_type, list(n.input), list(n.output)) for n in a.graph.node]
    nb = [(n.op_type, list(n.input), list(n.output)) for n in b.graph.node]
    if na != nb:
        return f"graph nodes changed: {na[:3]} became {nb[:3]}"
    ia = {i.name: numpy_helper.to_array(i) for i in a.graph.initializer}
    ib = {i.name: numpy_helper.to_array(i) for i in b.graph.initializer}
    if sorted(ia) != sorted(ib):
        return f"initializers {sorted(ia)} became {sorted(ib)}"
    for k in ia:
        if ia[k].dtype != ib[k].dtype or ia[k].shape != ib[k].shape or ia[k].tobytes() != ib[k].tobytes():
            return f"initializer {k} changed"
    return None


def main():
    if sys.argv[1] == "write":
        out = sys.argv[2]
        lines = []
        write_torch(out, lines)
        write_h5py(out, lines)
        write_onnx(out, lines)
        write_pickles(out, lines)
        for p, kind in lines:
            print(p, kind)
        return 0
    kind, a, b = sys.argv[2:5]
    if kind == "torch":
        import torch_faithful

        try:
            torch_faithful.compare(a, b)
            problem = None
        except torch_faithful.Differ as e:
            problem = str(e)
    elif kind == "h5py":
        problem = compare_h5(a, b)
    else:
        problem = compare_onnx(a, b)
    if problem:
        print(problem)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
