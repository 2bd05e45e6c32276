#!/usr/bin/python3
"""Files whose fidelity through ckpt the tests check, and their comparison.

h5py_fidelity.py make DIR      DIR/secret.h5 (/secret: int32 0..4); DIR/sub/extlink.h5 (/w, /ext an
                               external link to ../secret.h5:/secret, /ext_abs one to secret.h5's
                               absolute path); DIR/sub/vds.h5 (a virtual dataset of ../secret.h5);
                               DIR/attrs.h5 (attributes of many types and shapes, on the root and a
                               dataset); DIR/u64.h5 (a uint64 attribute of 2^64-1 beside others);
                               DIR/props.h5 (a resizable dataset, a dataset with fill value 7)
h5py_fidelity.py secret DIR    rewrites DIR/secret.h5 with /secret = 666
h5py_fidelity.py compare A B   every attribute of A is in B with h5py's same dtype, shape and
                               value; prints OK or the differences (exit 1)
"""
import os
import sys

import h5py
import numpy as np


def attributes():
    return {
        "m": np.ones((2, 2)), "b": np.bytes_(b"ab\xff"), "i8": np.int8(-1), "i16": np.int16(-300),
        "u16": np.uint16(65535), "f16": np.float16(0.5), "f32": np.float32(1.25), "empty": h5py.Empty("f"),
        "u64": np.uint64(5), "cube": np.arange(24, dtype=np.int32).reshape(2, 3, 4),
        "fixed_list": np.array([b"x", b"yz"]), "text": "plain str", "i64": np.int64(7), "f64": 0.1,
        "flag": True,
    }


def make(d):
    os.makedirs(os.path.join(d, "sub"), exist_ok=True)
    with h5py.File(os.path.join(d, "secret.h5"), "w") as f:
        f["secret"] = np.arange(5, dtype=np.int32)
    with h5py.File(os.path.join(d, "sub", "extlink.h5"), "w") as f:
        f["w"] = np.ones(2)
        f["ext"] = h5py.ExternalLink("../secret.h5", "/secret")
        f["ext_abs"] = h5py.ExternalLink(os.path.abspath(os.path.join(d, "secret.h5")), "/secret")
    with h5py.File(os.path.join(d, "sub", "vds.h5"), "w") as f:
        lay = h5py.VirtualLayout(shape=(5,), dtype="i4")
        lay[:] = h5py.VirtualSource("../secret.h5", "secret", shape=(5,))
        f.create_virtual_dataset("v", lay, fillvalue=-1)
    with h5py.File(os.path.join(d, "attrs.h5"), "w") as f:
        ds = f.create_dataset("g/d", data=np.arange(3.0))
        for k, v in attributes().items():
            f.attrs[k] = v
            ds.attrs[k] = v
    with h5py.File(os.path.join(d, "u64.h5"), "w") as f:
        f["x"] = np.ones(2)
        f["x"].attrs["big"] = np.uint64(2**64 - 1)
        f["x"].attrs["small"] = np.uint64(3)
        f.attrs["big"] = np.array([1, 2**63], dtype=np.uint64)
    with h5py.File(os.path.join(d, "props.h5"), "w") as f:
        f.create_dataset("resizable", data=np.ones(3), maxshape=(None,))
        f.create_dataset("filled", shape=(3,), dtype="f4", fillvalue=7)


def compare(a_path, b_path):
    problems = []
    a, b = h5py.File(a_path, "r"), h5py.File(b_path, "r")

    def one(name, obj):
        where = "/" + name if name else "/"
        other = b[where]
        for k in obj.attrs:
            if k not in other.attrs:
                problems.append("%s@%s: missing" % (where, k))
                continue
            ia, ib = obj.attrs.get_id(k), other.attrs.get_id(k)
            if ia.dtype != ib.dtype or ia.shape != ib.shape:
                problems.append("%s@%s: %s %s -> %s %s" % (where, k, ia.dtype, ia.shape, ib.dtype, ib.shape))
                continue
            va, vb = obj.attrs[k], other.attrs[k]
            if isinstance(va, h5py.Empty) or isinstance(vb, h5py.Empty):
                same = isinstance(va, h5py.Empty) and isinstance(vb, h5py.Empty) and va.dtype == vb.dtype
            else:
                same = type(va) == type(vb) and np.array_equal(np.asarray(va), np.asarray(vb))
            if not same:
                problems.append("%s@%s: %r -> %r" % (where, k, va, vb))

    one("", a)
    a.visititems(one)
    print("\n".join(problems) if problems else "OK")
    return 1 if problems else 0


if __name__ == "__main__":
    mode, arg = sys.argv[1], sys.argv[2]
    if mode == "make":
        make(arg)
    elif mode == "secret":
        with h5py.File(os.path.join(arg, "secret.h5"), "w") as f:
            f["secret"] = np.full(5, 666, np.int32)
    else:
        sys.exit(compare(arg, sys.argv[3]))
    print("OK")
