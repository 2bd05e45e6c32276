"""h5py opens a file the hdf5 plugin wrote and checks it against the manifest the test wrote.

  h5py_check_written.py FILE.h5 MANIFEST.json

Every group, attribute and dataset must be there with the numpy type h5py users expect (float16
for f16, uint16 with attrs["dtype"] == "bfloat16" for bf16, numpy bool for bool, str for
strings) and every byte equal; nothing else may be there. Prints OK or the mismatches.
"""
import os
import struct
import sys

import h5py
import numpy as np

import manifest

LAYOUT_ATTR = "ckpt/layout_version"
errors = []


def fail(msg):
    errors.append(msg)


def stored_name(name):
    # The layout's escape for the one name HDF5 refuses, and for names starting with '%'.
    if name == ".":
        return "%2E"
    if name.startswith("%"):
        return "%25" + name[1:]
    return name


def stored_path(path):
    return "/" + "/".join(stored_name(n) for n in path.split("/")) if path else "/"


def needs_bytes(b):
    if b"\0" in b:
        return True
    try:
        b.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def check_string(where, got, hexval):
    want = bytes.fromhex(hexval)
    if needs_bytes(want):
        # Stored as a variable-length sequence of uint8.
        if not (isinstance(got, np.ndarray) and got.dtype == np.uint8 and got.tobytes() == want):
            fail("%s: expected the bytes %r as uint8, got %r" % (where, want, got))
    elif not (isinstance(got, str) and got.encode() == want):
        fail("%s: expected str %r, got %r (%s)" % (where, want, got, type(got)))


def check_attr(where, got, typ, value):
    if typ == "bool":
        if not (isinstance(got, np.bool_) and bool(got) == value):
            fail("%s: expected numpy bool %r, got %r (%s)" % (where, value, got, type(got)))
    elif typ == "int64":
        if not (isinstance(got, np.int64) and int(got) == value):
            fail("%s: expected int64 %r, got %r (%s)" % (where, value, got, type(got)))
    elif typ == "float64":
        if not (isinstance(got, np.float64) and manifest.f64_bits(got) == value):
            fail("%s: expected float64 bits %s, got %r (%s)" % (where, value, got, type(got)))
    elif typ == "string":
        check_string(where, got, value)
    else:
        if not isinstance(got, np.ndarray) or got.ndim != 1 or got.shape[0] != len(value):
            fail("%s: expected a 1-D array of %d, got %r" % (where, len(value), got))
            return
        elem = typ[:-2]
        want_dtype = {"bool": np.bool_, "int64": np.int64, "float64": np.float64}.get(elem)
        if want_dtype is not None and got.dtype != want_dtype:
            fail("%s: expected dtype %s, got %s" % (where, np.dtype(want_dtype), got.dtype))
            return
        if elem == "string" and got.dtype != object:
            fail("%s: expected an object array of strings, got %s" % (where, got.dtype))
            return
        if elem == "string" and any(needs_bytes(bytes.fromhex(v)) for v in value):
            for k, (g, v) in enumerate(zip(got, value)):
                if not (isinstance(g, np.ndarray) and g.tobytes() == bytes.fromhex(v)):
                    fail("%s[%d]: expected bytes %s, got %r" % (where, k, v, g))
            return
        for k, (g, v) in enumerate(zip(got, value)):
            if elem == "string":
                check_string("%s[%d]" % (where, k), g, v)
            elif elem == "float64":
                if manifest.f64_bits(g) != v:
                    fail("%s[%d]: expected bits %s, got %r" % (where, k, v, g))
            elif elem == "int64":
                if int(g) != v:
                    fail("%s[%d]: expected %r, got %r" % (where, k, v, g))
            elif bool(g) != v:
                fail("%s[%d]: expected %r, got %r" % (where, k, v, g))


def check_typed_attr(where, obj, a, record):
    """An attribute of a recorded type: h5py's dtype and shape are the recorded ones, its values the manifest's."""
    typ, shape = record
    aid = obj.attrs.get_id(a["name"])
    got = obj.attrs[a["name"]]
    if typ.startswith("fixed "):
        want_dtype = np.dtype("S" + typ.split()[1])
    else:
        want_dtype = np.dtype(typ)
    if aid.dtype != want_dtype:
        fail("%s: dtype %s, recorded %s" % (where, aid.dtype, typ))
    want_shape = () if shape == "" else tuple(int(d) for d in shape.split(","))
    if aid.shape != want_shape:
        fail("%s: shape %s, recorded %r" % (where, aid.shape, shape))
    values = a["value"] if isinstance(a["value"], list) else [a["value"]]
    flat = np.asarray(got).reshape(-1)
    for k, (v, g) in enumerate(zip(values, flat)):
        if a["type"].startswith("string"):
            ok = bytes(g) == bytes.fromhex(v)
        elif a["type"].startswith("float64"):
            ok = float(g) == struct.unpack(">d", bytes.fromhex(v))[0]
        else:
            ok = g == v
        if not ok:
            fail("%s[%d]: expected %r, got %r" % (where, k, v, g))


def main(h5path, mpath):
    m = manifest.load(mpath)
    folder = os.path.dirname(os.path.abspath(mpath))
    f = h5py.File(h5path, "r")
    if f.attrs.get(LAYOUT_ATTR) != 1:
        fail("root: attribute %s is %r" % (LAYOUT_ATTR, f.attrs.get(LAYOUT_ATTR)))
    seen = {"/"}
    # The records of attributes' HDF5 types (meta/@hdf5_attribute_type_*): the writer stores
    # none of them and makes those attributes of that type and shape.
    records = {}
    for g in m["groups"]:
        if g["path"] == "meta":
            cols = {a["name"]: [bytes.fromhex(x).decode() for x in a["value"]] for a in g["attrs"]
                    if a["name"].startswith("hdf5_attribute_type")}
            if cols:
                records = {(p, n): (t, s) for p, n, t, s in zip(cols["hdf5_attribute_type_paths"], cols["hdf5_attribute_type_names"],
                                                               cols["hdf5_attribute_types"], cols["hdf5_attribute_type_shapes"])}
                g["attrs"] = [a for a in g["attrs"] if not a["name"].startswith("hdf5_attribute_type")]
    for g in m["groups"]:
        sp = stored_path(g["path"])
        seen.add(sp)
        obj = f[sp]
        if not isinstance(obj, h5py.Group):
            fail("%s: not a group" % sp)
            continue
        want = {a["name"] for a in g["attrs"]}
        have = set(obj.attrs.keys()) - ({LAYOUT_ATTR} if sp == "/" else set())
        if want != have:
            fail("%s: attributes %s, expected %s" % (sp, sorted(have), sorted(want)))
        # Our groups remember creation order; h5py lists attributes in it.
        order = [k for k in obj.attrs.keys() if k != LAYOUT_ATTR]
        if order != [a["name"] for a in g["attrs"]]:
            fail("%s: attribute order %s" % (sp, order))
        for a in g["attrs"]:
            if a["name"] in have and (sp, a["name"]) in records:
                check_typed_attr("%s@%s" % (sp, a["name"]), obj, a, records[(sp, a["name"])])
            elif a["name"] in have:
                check_attr("%s@%s" % (sp, a["name"]), obj.attrs[a["name"]], a["type"], a["value"])
    for t in m["tensors"]:
        sp = stored_path(t["path"])
        seen.add(sp)
        ds = f[sp]
        if not isinstance(ds, h5py.Dataset):
            fail("%s: not a dataset" % sp)
            continue
        want_dtype = np.dtype(manifest.DTYPES[t["dtype"]])
        if ds.dtype != want_dtype:
            fail("%s: dtype %s, expected %s" % (sp, ds.dtype, want_dtype))
        if list(ds.shape) != t["shape"]:
            fail("%s: shape %s, expected %s" % (sp, ds.shape, t["shape"]))
        want_attrs = {"dtype"} if t["dtype"] == "bf16" else set()
        if set(ds.attrs.keys()) != want_attrs:
            fail("%s: dataset attributes %s" % (sp, list(ds.attrs.keys())))
        if t["dtype"] == "bf16" and ds.attrs.get("dtype") != "bfloat16":
            fail("%s: attrs['dtype'] is %r" % (sp, ds.attrs.get("dtype")))
        with open(os.path.join(folder, t["file"]), "rb") as fh:
            want = fh.read()
        got = ds[()]
        got = got.tobytes() if isinstance(got, np.ndarray) else np.asarray(got, dtype=ds.dtype).tobytes()
        if got != want:
            fail("%s: bytes differ" % sp)
    everything = set()
    f.visit(lambda name: everything.add("/" + name))
    # The hashes ckpt records in every file it writes (meta/integrity, and meta for them).
    extra = everything - seen - {"/meta/integrity"}
    if "/meta" in extra and set(f["meta"].keys()) == {"integrity"}:
        extra.discard("/meta")
    if extra:
        fail("objects not in the document: %s" % sorted(extra))
    if errors:
        print("\n".join(errors))
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
