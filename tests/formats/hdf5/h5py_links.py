#!/usr/bin/python3
"""Links as h5py makes them, through ckpt and back.

h5py_links.py make FILE   a dataset /w, a soft link /alias -> /w, a group /g with a dangling
                          soft link /g/later -> /g/missing, and an external link /g/ext to
                          /x in ../elsewhere.h5 (which does not exist: ckpt never follows it)
h5py_links.py check FILE  the same links, read with h5py: each is a SoftLink or ExternalLink
                          with its target, /alias reads as /w does. Prints OK or exits 1.
"""
import sys

import h5py
import numpy as np

W = np.arange(6, dtype=np.float32).reshape(2, 3)
mode, path = sys.argv[1], sys.argv[2]
if mode == "make":
    with h5py.File(path, "w") as f:
        f["w"] = W
        f["alias"] = h5py.SoftLink("/w")
        f.create_group("g")
        f["g/later"] = h5py.SoftLink("/g/missing")
        f["g/ext"] = h5py.ExternalLink("../elsewhere.h5", "/x")
    print("OK")
    sys.exit(0)

problems = []
with h5py.File(path, "r") as f:
    for at, target in [("alias", "/w"), ("g/later", "/g/missing")]:
        link = f.get(at, getlink=True)
        if not isinstance(link, h5py.SoftLink) or link.path != target:
            problems.append(f"{at}: {link!r}, expected a soft link to {target}")
    ext = f.get("g/ext", getlink=True)
    if not isinstance(ext, h5py.ExternalLink) or (ext.filename, ext.path) != ("../elsewhere.h5", "/x"):
        problems.append(f"g/ext: {ext!r}, expected an external link to ../elsewhere.h5:/x")
    if not np.array_equal(f["alias"][()], W):
        problems.append("alias does not read as w")
print("\n".join(problems) if problems else "OK")
sys.exit(1 if problems else 0)
