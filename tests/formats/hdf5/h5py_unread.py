"""An h5py file holding what a ckpt document cannot: string datasets (fixed and variable
length, scalar and arrays), a compound dataset, an enum dataset, a dataset attribute, a group
attribute of compound records, and a soft link, beside one plain tensor.

  h5py_unread.py FILE
"""
import sys

import h5py
import numpy as np

with h5py.File(sys.argv[1], "w") as f:
    f["w"] = np.arange(3, dtype="f4")
    f["w"].attrs["units"] = "m/s"
    f["name"] = "resnet"
    f["labels"] = np.array([b"cat", b"dog"])
    f["vlabels"] = np.array(["a", "bb"], dtype=h5py.string_dtype())
    f["rec"] = np.array([(1, 2.5), (3, 4.5)], dtype=[("a", "i4"), ("b", "f8")])
    f.create_dataset("color", data=np.array([0, 1], dtype="i1"), dtype=h5py.enum_dtype({"red": 0, "green": 1}, basetype="i1"))
    f["alias"] = h5py.SoftLink("/w")
    f.attrs["bounds"] = np.array([(0, 1.0)], dtype=[("lo", "i4"), ("hi", "f8")])
