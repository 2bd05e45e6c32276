"""Files crafted against the reader's bounds on string and compound datasets (the test says what
each must do):

h5py_hostile.py FOLDER
"""
import struct
import sys

import h5py
import numpy as np


def patch(path, old, new, count=1):
    with open(path, "rb") as f:
        data = f.read()
    assert data.count(old) == count, (path, old, data.count(old))
    with open(path, "wb") as f:
        f.write(data.replace(old, new))


def collections(data):
    """Global heap objects: {(collection address, index): (length, bytes)}."""
    out = {}
    at = data.find(b"GCOL")
    while at >= 0:
        size = struct.unpack_from("<Q", data, at + 8)[0]
        p = at + 16
        while p + 16 <= at + size:
            index, _, _, length = struct.unpack_from("<HHIQ", data, p)
            if index == 0:
                break
            out[(at, index)] = (length, data[p + 16:p + 16 + length])
            p += 16 + ((length + 7) & ~7)
        at = data.find(b"GCOL", at + 4)
    return out


def main(folder):
    # A compound field placed far beyond its 8-byte record (libhdf5 converts by the offset as
    # stored: it crashed).
    with h5py.File(f"{folder}/beyond.h5", "w") as f:
        f["c"] = np.zeros(4, dtype=[("ppa", "<i4"), ("qqb", "<i4")])
    patch(f"{folder}/beyond.h5", b"qqb\0\0\0\0\0" + struct.pack("<I", 4), b"qqb\0\0\0\0\0" + struct.pack("<I", 0x7FFFFFF0))
    # Two million one-byte strings compressed to a few KB: each costs a std::string when read.
    with h5py.File(f"{folder}/strings.h5", "w") as f:
        f.create_dataset("s", data=np.full(2_000_000, b"x", dtype="S1"), chunks=(500_000,), compression="gzip")
    # A chunk of 2^30 one-byte elements for a dataset of one (patched from a chunk of 777): a
    # string dataset and a tensor.
    for name, dtype in [("bigchunk_strings.h5", "S1"), ("bigchunk_tensor.h5", "u1")]:
        with h5py.File(f"{folder}/{name}", "w") as f:
            f.create_dataset("s", shape=(1,), maxshape=(None,), dtype=dtype, chunks=(777,))
        patch(f"{folder}/{name}", struct.pack("<II", 777, 1), struct.pack("<II", 1 << 30, 1))
    # 20 attributes of nine strings each, every string patched to refer to one heap object of
    # 2 MiB: 360 MiB from a file of about 2 MiB, 18 MiB per attribute.
    with h5py.File(f"{folder}/shared_attrs.h5", "w") as f:
        f["big"] = "y" * (2 << 20)
        f["d"] = np.zeros(2, dtype="f4")
        for a in range(20):
            f["d"].attrs[f"a{a:02}"] = np.array([f"s{a:02}_{k}" for k in range(9)], dtype=object)
    with open(f"{folder}/shared_attrs.h5", "rb") as raw:
        data = raw.read()
    objects = collections(data)
    big = [key for key, (length, _) in objects.items() if length == 2 << 20]
    assert len(big) == 1, big
    target = struct.pack("<IQI", 2 << 20, big[0][0], big[0][1])
    for (addr, index), (length, body) in objects.items():
        if body.startswith(b"s") and length == 5:
            patch(f"{folder}/shared_attrs.h5", struct.pack("<IQI", length, addr, index), target)
    # A compound of 64 one-byte fields and 300,000 records, compressed: its columns read apart
    # would decode and convert 1.2 GB from a file of a few KB.
    with h5py.File(f"{folder}/wide.h5", "w") as f:
        f.create_dataset("wide", data=np.zeros(300_000, dtype=[(f"f{i}", "u1") for i in range(64)]),
                         chunks=(10_000,), compression="gzip")
    # /meta's own values named like records ckpt adds: an attribute, and a string dataset named
    # unread, beside an enum dataset (unread) and a compound (recorded).
    with h5py.File(f"{folder}/meta_names.h5", "w") as f:
        f["c"] = np.zeros(1, dtype=[("x", "<i4"), ("y", "<i4")])
        f.create_dataset("e", data=np.zeros(1, dtype="i1"), dtype=h5py.enum_dtype({"A": 0, "B": 1}, basetype="i1"))
        m = f.create_group("meta")
        m.attrs["hdf5_compound_dataset_paths"] = np.array(["user value"], dtype=object)
        m["unread"] = "a user's own string"
        m["unread"].attrs["units"] = "none"
    # Compound fields read as columns but not kept exactly: a long double, a big-endian field,
    # and padding (an aligned dtype).
    with h5py.File(f"{folder}/inexact.h5", "w") as f:
        f["ld"] = np.zeros(2, dtype=[("x", np.longdouble), ("y", "<i4")])
        f["be"] = np.zeros(2, dtype=[("x", ">i4"), ("y", "<i4")])
        f["pad"] = np.zeros(2, dtype=np.dtype([("x", "u1"), ("y", "<i4")], align=True))
        f["ok"] = np.zeros(2, dtype=[("x", "u1"), ("y", "<i4")])
    print("OK")


if __name__ == "__main__":
    main(sys.argv[1])
