#!/usr/bin/python3
"""Checks ckpt-json files with Python's own json module, which knows nothing of ckpt.

  check_json.py base64 FILE    FILE holds the document test_format_json.cpp builds in
                               PythonReadsTheLayout (default tensor_encoding=base64).
  check_json.py numbers FILE   FILE holds the document of PythonReadsNumbers
                               (tensor_encoding=numbers).
  check_json.py sizes FILE     FILE holds the document of SizesAroundPaddingAndTheLexerBypass:
                               u8 tensors t0..t100 with byte i = (i * 37 + n) % 256.

Exits nonzero, printing every mismatch, unless the file has exactly the documented layout and
every tensor's bytes equal what the test wrote.
"""
import base64
import json
import math
import struct
import sys

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def pairs(items):
    """Keeps key order and refuses duplicate keys (json.load would keep the last)."""
    keys = [k for k, _ in items]
    check(len(keys) == len(set(keys)), "duplicate keys in %r" % keys)
    return items


def obj(items):
    return dict(items)


def keys(items):
    return [k for k, _ in items]


def check_header(doc):
    check(keys(doc)[:2] == ["$format", "$version"], "first keys are %r" % keys(doc)[:2])
    d = obj(doc)
    check(d.get("$format") == "ckpt-json", "$format is %r" % d.get("$format"))
    check(d.get("$version") == 1, "$version is %r" % d.get("$version"))


def tensor(items, dtype, shape):
    t = obj(items)
    check(keys(items) == ["$dtype", "$shape", "$data"] or keys(items) == ["$dtype", "$shape", "$values"],
          "tensor keys %r" % keys(items))
    check(t["$dtype"] == dtype, "dtype %r, expected %r" % (t["$dtype"], dtype))
    check(t["$shape"] == shape, "shape %r, expected %r" % (t["$shape"], shape))
    return t


def check_base64(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    doc = json.loads(text, object_pairs_hook=pairs)
    check_header(doc)
    check(keys(doc) == ["$format", "$version", "$attrs", "model", "empty_group"], "root keys %r" % keys(doc))
    attrs = obj(obj(doc)["$attrs"])
    check(keys(obj(doc)["$attrs"]) == ["epoch", "lr", "name", "flags", "sizes", "bad", "$$meta"],
          "attribute order %r" % keys(obj(doc)["$attrs"]))
    check(type(attrs["epoch"]) is int and attrs["epoch"] == 3, "epoch %r" % attrs["epoch"])
    check(type(attrs["lr"]) is float and attrs["lr"] == 0.001, "lr %r" % attrs["lr"])
    check(attrs["name"] == 'r\u00e9sum\u00e9 "q"\n\u0001', "name %r" % attrs["name"])
    check(attrs["flags"] == [True, False], "flags %r" % attrs["flags"])
    check(obj(attrs["sizes"]) == {"$type": "int64[]", "$value": []}, "sizes %r" % attrs["sizes"])
    check(obj(attrs["bad"]) == {"$type": "float64", "$value": "NaN"}, "bad %r" % attrs["bad"])
    check(attrs["$$meta"] == "x", "$$meta %r" % attrs["$$meta"])

    state = obj(obj(obj(doc)["model"])["state"])
    check(keys(obj(obj(doc)["model"])["state"]) == ["fc1.weight", "step", "empty", "mask", "\u91cd\u307f"],
          "state keys %r" % keys(obj(obj(doc)["model"])["state"]))
    expected = {
        "fc1.weight": ("f32", [2, 3], struct.pack("<6f", *[i * 0.5 - 1 for i in range(6)])),
        "step": ("i64", [], struct.pack("<q", 42)),
        "empty": ("u8", [0, 4], b""),
        "mask": ("bool", [3], b"\x01\x00\x01"),
        "\u91cd\u307f": ("bf16", [2], struct.pack("<2H", 0x3F80, 0xC000)),
    }
    for name, (dtype, shape, data) in expected.items():
        t = tensor(state[name], dtype, shape)
        got = base64.b64decode(t["$data"], validate=True)
        check(got == data, "%s: bytes %r, expected %r" % (name, got, data))
    check(obj(doc)["empty_group"] == [], "empty_group %r" % obj(doc)["empty_group"])
    # Tensor data stays on one line; groups get a line per member.
    for line in text.splitlines():
        if '"fc1.weight"' in line:
            check(line.strip().startswith('"fc1.weight": {"$dtype": "f32"') and line.endswith("},"),
                  "tensor line %r" % line)


def check_sizes(path):
    with open(path, encoding="utf-8") as f:
        d = obj(json.load(f, object_pairs_hook=pairs))
    for n in range(101):
        t = tensor(d["t%d" % n], "u8", [n])
        got = base64.b64decode(t["$data"], validate=True)
        want = bytes((i * 37 + n) % 256 for i in range(n))
        check(got == want, "t%d: bytes %r, expected %r" % (n, got, want))
        check(t["$data"] == base64.b64encode(want).decode(), "t%d: text %r" % (n, t["$data"]))


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def check_numbers(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f, object_pairs_hook=pairs)
    check_header(doc)
    d = obj(doc)
    f = tensor(d["f"], "f32", [5])["$values"]
    check(f[0] == 1.5, "f[0] %r" % f[0])
    check(f[1] == 0.0 and math.copysign(1, f[1]) < 0, "f[1] %r is not -0.0" % f[1])
    check(f[2] == "Infinity" and f[3] == "NaN", "f[2:4] %r" % f[2:4])
    check(struct.pack("<f", f[4]) == struct.pack("<f", f32(0.1)), "f[4] %r is not 0.1f" % f[4])
    h = tensor(d["h"], "f16", [2])["$values"]
    check(struct.pack("<2e", *h) == struct.pack("<2H", 0x3C00, 0x0001), "h %r" % h)
    i = tensor(d["i"], "i64", [2])["$values"]
    check(i == [-(2 ** 63), 2 ** 63 - 1], "i %r" % i)
    b = tensor(d["b"], "bool", [2])["$values"]
    check(b == [True, False], "b %r" % b)


def main():
    mode, path = sys.argv[1], sys.argv[2]
    try:
        {"base64": check_base64, "numbers": check_numbers, "sizes": check_sizes}[mode](path)
    except Exception as e:  # a missing key or a bad type is a mismatch too
        failures.append("%s: %s" % (type(e).__name__, e))
    for f in failures:
        print("MISMATCH:", f)
    sys.exit(1 if failures else 0)


main()
