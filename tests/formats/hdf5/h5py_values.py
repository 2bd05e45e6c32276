#!/usr/bin/python3
"""String datasets, compound datasets and dataset attributes as h5py makes them, through ckpt
and back.

h5py_values.py make FILE          scalar, 1-d and 2-d string datasets (variable-length UTF-8 and
                                  ASCII, fixed-length bytes and UTF-8, non-ASCII text), compound
                                  datasets of 1 and 2 dimensions (int, float, uint8, bool fields),
                                  and attributes (string, float, int array) on a plain dataset,
                                  a string dataset and a compound one
h5py_values.py check WANT GOT     every dataset of WANT is in GOT with the same dtype (string
                                  kind and length, compound field names and dtypes), shape,
                                  values and attributes, and GOT has no other member outside
                                  /meta. Prints OK or the differences and exits 1.
h5py_values.py attacks FOLDER     files a reader must refuse or read within bounds (the test
                                  says what each must do)
"""
import sys

import h5py
import numpy as np

UNITS = {"units": "m/s", "scale": 0.5, "dims": np.array([1, 2, 3], dtype=np.int64)}


def put_attrs(obj):
    for k, v in UNITS.items():
        obj.attrs[k] = v


def make(path):
    with h5py.File(path, "w") as f:
        f["w"] = np.arange(6, dtype="f4").reshape(2, 3)
        put_attrs(f["w"])
        f["name"] = "résumé ✓"  # scalar, variable-length UTF-8
        put_attrs(f["name"])
        f["labels"] = np.array([b"cat", b"dog", b"emu"], dtype="S5")  # fixed-length bytes
        f.create_dataset("grid", data=np.array([["a", "βb", "c"], ["日本", "", "z"]], dtype=object),
                         dtype=h5py.string_dtype())  # 2-d variable-length UTF-8
        f.create_dataset("ascii", data=np.array([b"x", b"yy"], dtype=object),
                         dtype=h5py.string_dtype("ascii"))  # variable-length ASCII (bytes)
        f.create_dataset("fixed_utf8", shape=(2,), dtype=h5py.string_dtype("utf-8", 8))  # fixed-length UTF-8
        d = f["fixed_utf8"]  # numpy has no such type: written in the file's own type
        d.id.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array(["ü".encode(), b"ok"], dtype="S8"), mtype=d.id.get_type())
        g = f.create_group("g")
        g["note"] = "in a group"
        rec = np.array([(1, 2.5, 7, True), (-3, 4.5, 255, False), (5, -0.0, 0, True)],
                       dtype=[("a", "<i4"), ("b", "<f8"), ("c", "u1"), ("d", "?")])
        f["rec"] = rec
        put_attrs(f["rec"])
        table = np.zeros((3, 2), dtype=[("x", "<f4"), ("y", "<i8")])
        table["x"] = np.arange(6, dtype="f4").reshape(3, 2) / 4
        table["y"] = np.arange(6).reshape(3, 2) * -7
        g.create_dataset("table", data=table, chunks=(2, 1), compression="gzip")
    print("OK")


def kind(d):
    s = h5py.check_string_dtype(d)
    if s is not None:
        return ("string", s.encoding, s.length)
    if d.names:
        return ("compound", [(n, d.fields[n][0].str) for n in d.names])
    return ("plain", d.str)


def same_value(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.names or b.dtype.names:
        return a.dtype.names == b.dtype.names and a.shape == b.shape and all(
            np.array_equal(a[n], b[n]) for n in a.dtype.names)
    return a.shape == b.shape and a.dtype.kind == b.dtype.kind and np.array_equal(a, b)


def check(want_path, got_path):
    problems = []
    with h5py.File(want_path, "r") as want, h5py.File(got_path, "r") as got:
        names = []
        want.visit(names.append)
        for name in names:
            w = want[name]
            if name not in got:
                problems.append(f"{name}: missing")
                continue
            g = got[name]
            if isinstance(w, h5py.Group):
                if not isinstance(g, h5py.Group):
                    problems.append(f"{name}: {g!r}, expected a group")
                continue
            if not isinstance(g, h5py.Dataset):
                problems.append(f"{name}: {g!r}, expected a dataset")
                continue
            if kind(w.dtype) != kind(g.dtype):
                problems.append(f"{name}: dtype {kind(g.dtype)}, expected {kind(w.dtype)}")
            if w.shape != g.shape:
                problems.append(f"{name}: shape {g.shape}, expected {w.shape}")
            elif not same_value(w[()], g[()]):
                problems.append(f"{name}: {g[()]!r}, expected {w[()]!r}")
            if sorted(w.attrs) != sorted(g.attrs):
                problems.append(f"{name}: attributes {sorted(g.attrs)}, expected {sorted(w.attrs)}")
            for k in w.attrs:
                if k in g.attrs and (type(w.attrs[k]) != type(g.attrs[k]) or not same_value(w.attrs[k], g.attrs[k])):
                    problems.append(f"{name}: attribute {k} = {g.attrs[k]!r}, expected {w.attrs[k]!r}")
        extra = []
        got.visit(extra.append)
        for name in extra:
            if name not in want and name.split("/")[0] != "meta":
                problems.append(f"{name}: not in the source")
    print("\n".join(problems) if problems else "OK")
    sys.exit(1 if problems else 0)


def attacks(folder):
    # Many elements from no storage: a chunked, compressed string dataset never written.
    with h5py.File(f"{folder}/many.h5", "w") as f:
        f.create_dataset("s", shape=(200_000_000,), dtype=h5py.string_dtype(), chunks=(1_000_000,), compression="gzip")
    # Every element's heap reference points at one object of 1 MiB: 1,000 MiB read from a file
    # of about 1 MiB; and one reference claiming more bytes than its object holds.
    for name, claim in [("shared.h5", None), ("long.h5", 1 << 30)]:
        with h5py.File(f"{folder}/{name}", "w") as f:
            f.create_dataset("s", data=np.array(["x" * (1 << 20)] + ["ab"] * 999, dtype=object),
                             dtype=h5py.string_dtype())
            offset = f["s"].id.get_offset()
        with open(f"{folder}/{name}", "r+b") as raw:
            raw.seek(offset)
            first = bytearray(raw.read(16))
            if claim is None:
                raw.seek(offset + 16)
                raw.write(bytes(first) * 999)
            else:
                first[0:4] = claim.to_bytes(4, "little")
                raw.seek(offset)
                raw.write(first)
    # A compound of 2,000 fields (left unread), one of 256 (read, one column each), and one of
    # 200 fields whose columns, read apart, would convert 200 times its 100 MB of records.
    for name, n in [("fields.h5", 2000), ("fields256.h5", 256)]:
        with h5py.File(f"{folder}/{name}", "w", libver="latest") as f:
            data = np.zeros(4, dtype=[(f"f{i}", "u1") for i in range(n)])
            for i in range(n):
                data[f"f{i}"] = np.arange(4, dtype="u1") + i % 7
            f["wide"] = data
    with h5py.File(f"{folder}/wide_bomb.h5", "w", libver="latest") as f:
        dt = np.dtype([(f"f{i}", "u1") for i in range(200)])
        f.create_dataset("wide", data=np.zeros(500_000, dtype=dt), chunks=(5000,), compression="gzip")
    # A string dataset beside an attribute of its group with the same name.
    with h5py.File(f"{folder}/clash.h5", "w") as f:
        g = f.create_group("g")
        g.attrs["note"] = "the attribute"
        g["note"] = "the dataset"
    print("OK")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "make":
        make(sys.argv[2])
    elif mode == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        attacks(sys.argv[2])
