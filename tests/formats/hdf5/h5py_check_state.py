"""h5py reads the tensors of a manifest under one group of a file ckpt wrote.

  h5py_check_state.py FILE.h5 MANIFEST.json GROUP

Each manifest tensor PATH must be the dataset GROUP/PATH with the manifest's dtype and shape
and the same bytes, and GROUP must hold nothing else. Prints OK or the mismatches.
"""
import os
import sys

import h5py
import numpy as np

import manifest


def main(path, manifest_path, group):
    m = manifest.load(manifest_path)
    folder = os.path.dirname(manifest_path)
    errors = []
    with h5py.File(path, "r") as f:
        g = f[group]
        names = [t["path"] for t in m["tensors"]]
        if sorted(g.keys()) != sorted(names):
            errors.append("%s holds %s, expected %s" % (group, sorted(g.keys()), sorted(names)))
        for t in m["tensors"]:
            if t["path"] not in g:
                continue
            d = g[t["path"]][()]
            want = np.dtype(manifest.DTYPES[t["dtype"]]).newbyteorder("<")
            with open(os.path.join(folder, t["file"]), "rb") as b:
                data = b.read()
            if d.dtype != want or list(d.shape) != t["shape"]:
                errors.append("%s: %s %s, expected %s %s" % (t["path"], d.dtype, d.shape, want, t["shape"]))
            elif d.tobytes() != data:
                errors.append("%s: the bytes differ" % t["path"])
    print("\n".join(errors) if errors else "OK")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
