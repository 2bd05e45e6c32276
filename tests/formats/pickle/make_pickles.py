"""Pickles of NumPy data as Python and joblib write them, malicious pickles, and the exact
bytes every array must read as (expect/<file>.<path>, C order, little-endian)."""
import os
import pickle
import subprocess
import sys

import joblib
import numpy as np

out, marker = sys.argv[1], sys.argv[2]
os.makedirs(f"{out}/expect", exist_ok=True)


def expect(name, a):
    with open(f"{out}/expect/{name}", "wb") as f:
        f.write(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes())


class SimpleModel:  # unknown to ckpt: read as a record of its attributes
    def __init__(self):
        self.weight = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
        self.bias = np.array([0.5, -0.5, 0.25], dtype=np.float32)
        self.name = "simple"


a = np.arange(12, dtype=np.float32).reshape(3, 4)
for proto in (2, 4, 5):
    with open(f"{out}/plain_p{proto}.pkl", "wb") as f:
        pickle.dump(a, f, protocol=proto)
    expect(f"plain_p{proto}.pkl.array", a)

d = {"w": np.arange(6, dtype=np.float64).reshape(2, 3) / 7, "ids": np.array([3, -1, 4], dtype=np.int64),
     "mask": np.array([True, False, True]), "half": np.arange(4, dtype=np.float16),
     "fortran": np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
     "big": np.arange(5, dtype=">f4"), "lr": 0.5, "epoch": 7, "flag": True, "name": "run",
     "sizes": [1, 2, 3], "np_loss": np.float64(0.125)}
for proto in (2, 4, 5):
    with open(f"{out}/dict_p{proto}.pkl", "wb") as f:
        pickle.dump(d, f, protocol=proto)
    for k, v in d.items():
        if isinstance(v, np.ndarray):
            expect(f"dict_p{proto}.pkl.{k}", v)

l = [np.arange(4, dtype=np.float32) - 1.5, np.array([[1, -2], [3, 1 << 40]], dtype=np.int64), np.array([True, False]),
     np.arange(6, dtype=np.uint8).reshape(3, 2).T]
for proto in (2, 5):
    with open(f"{out}/list_p{proto}.pkl", "wb") as f:
        pickle.dump(l, f, protocol=proto)
    for i, v in enumerate(l):
        expect(f"list_p{proto}.pkl.{i}", v)

m = SimpleModel()
with open(f"{out}/my_simple_model.pkl", "wb") as f:
    pickle.dump(m, f)
expect("my_simple_model.pkl.weight", m.weight)
expect("my_simple_model.pkl.bias", m.bias)

joblib.dump({"w": a, "b": np.ones(3)}, f"{out}/arrays.joblib")
expect("arrays.joblib.w", a)
expect("arrays.joblib.b", np.ones(3))

# joblib.dump(..., compress=...) with each of joblib's compressors (lz4 needs a package
# Debian's joblib does not pull in): the same data as fitted.joblib, uncompressed.
fitted = {"coef_": np.arange(12, dtype=np.float64).reshape(3, 4) / 7, "intercept_": np.array([0.5, -1.5], dtype=np.float32),
          "classes_": np.array([0, 1, 2]), "n_iter_": 7, "solver": "lbfgs", "model": SimpleModel()}
joblib.dump(fitted, f"{out}/fitted.joblib")
for name in ("coef_", "intercept_", "classes_"):
    expect(f"fitted.joblib.{name}", fitted[name])
for c in ("zlib", "gzip", "bz2", "lzma", "xz"):
    joblib.dump(fitted, f"{out}/fitted_{c}.joblib", compress=(c, 3))
joblib.dump(fitted, f"{out}/fitted_default.joblib", compress=True)  # zlib, level 3
with open(f"{out}/fitted_zlib.joblib", "rb") as f:
    z = f.read()
with open(f"{out}/cut_zlib.joblib", "wb") as f:  # the stream cut short
    f.write(z[:len(z) // 2])
with open(f"{out}/trailing_zlib.joblib", "wb") as f:  # bytes after the stream's end
    f.write(z + b"more")


class System:
    def __reduce__(self):
        return (os.system, ("touch " + marker,))


class Subprocess:
    def __reduce__(self):
        return (subprocess.check_call, (["touch", marker],))


with open(f"{out}/evil_system.pkl", "wb") as f:
    pickle.dump(System(), f)
with open(f"{out}/evil_subprocess.pkl", "wb") as f:
    pickle.dump({"weights": a, "payload": Subprocess()}, f)
with open(f"{out}/evil_nested.pkl", "wb") as f:
    pickle.dump({"model": {"layers": [{"w": a}, {"hook": [1, 2, System()]}]}}, f, protocol=2)
# Compression hides nothing from the unpickler's policy.
joblib.dump({"weights": a, "payload": System()}, f"{out}/evil_gzip.joblib", compress=("gzip", 3))
# A decompression bomb: 1 GiB of zeros inside a valid pickle's bytes object, zlib-compressed to
# about a megabyte.
import zlib
bomb = zlib.compressobj(9)
with open(f"{out}/bomb_zlib.joblib", "wb") as f:
    f.write(bomb.compress(b"\x80\x04\x95" + (2**30 + 6).to_bytes(8, "little") + b"B" + (2**30).to_bytes(4, "little")))
    zeros = bytes(1 << 20)
    for _ in range(1024):
        f.write(bomb.compress(zeros))
    f.write(bomb.compress(b"."))
    f.write(bomb.flush())
