#!/usr/bin/python3
"""Checks ckpt's msgpack files with Debian's python3-msgpack and numpy, which know nothing of ckpt.

  check_python.py read FILE   FILE holds the "interop" document that test_format_msgpack.cpp
                              builds; exits nonzero, saying why, unless every attribute and
                              tensor equals what the test put in and every $data payload
                              starts at a multiple of 64.
  check_python.py write FILE  writes a file the way a Python user would (no padding, float32
                              values, $attrs after the children, other key orders) for the
                              test to read back.

The tensor values follow a formula both sides compute, so numpy interprets the bytes itself.
"""
import math
import struct
import sys

import msgpack
import numpy as np

NUMPY = {"f32": "<f4", "f64": "<f8", "f16": "<f2", "i8": "i1", "u8": "u1",
         "i16": "<i2", "i32": "<i4", "i64": "<i8", "bool": "?"}
DTYPES = ["f32", "f64", "f16", "bf16", "i8", "u8", "i16", "i32", "i64", "bool"]

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def bits(x):
    return struct.pack(">d", x)


def pattern(dtype, n):
    """The values test_format_msgpack.cpp's pattern() fills a tensor with."""
    i = np.arange(n, dtype=np.int64)
    if dtype in ("f32", "f64", "f16", "bf16"):
        return (i - 5) * 0.5
    if dtype == "u8":
        return (i * 7) % 256
    if dtype == "bool":
        return i % 3 == 0
    return i % 17 - 8


def tensor_values(t):
    """The tensor's elements as numpy reads them from $data."""
    dtype, data = t["$dtype"], t["$data"]
    if dtype == "bf16":  # numpy has no bfloat16: widen the raw bits to float32
        raw = np.frombuffer(data, dtype="<u2")
        return (raw.astype("<u4") << 16).view("<f4").reshape(t["$shape"])
    return np.frombuffer(data, dtype=NUMPY[dtype]).reshape(t["$shape"])


def expect_tensor(group, key, dtype, shape, values=None):
    t = group.get(key)
    if not isinstance(t, dict):
        failures.append(f"tensor {key!r} missing")
        return
    check(t.get("$dtype") == dtype, f"{key}: $dtype {t.get('$dtype')!r}, expected {dtype!r}")
    check(t.get("$shape") == shape, f"{key}: $shape {t.get('$shape')!r}, expected {shape!r}")
    n = math.prod(shape)
    got = tensor_values(t)
    want = (pattern(dtype, n) if values is None else np.array(values)).reshape(shape)
    want = want.astype(got.dtype)
    check(got.shape == tuple(shape), f"{key}: numpy shape {got.shape}")
    check(np.array_equal(got, want), f"{key}: values {got.ravel()[:8]} != {want.ravel()[:8]}")
    check(set(t) <= {"$dtype", "$shape", "$pad", "$data"}, f"{key}: keys {sorted(t)}")


def payload_offsets(raw):
    """(key path, offset) of every $data payload, found by walking the bytes with Unpacker."""
    up = msgpack.Unpacker(raw=False, max_buffer_size=len(raw) + 1)
    up.feed(raw)
    found = []

    def walk_map(path):
        for _ in range(up.read_map_header()):
            key = up.unpack()
            pos = up.tell()
            tag = raw[pos]
            if key == "$data":
                found.append((path, pos + {0xc4: 2, 0xc5: 3, 0xc6: 5}[tag]))
                up.skip()
            elif 0x80 <= tag <= 0x8f or tag in (0xde, 0xdf):
                walk_map(path + "/" + key)
            else:
                up.skip()

    walk_map("")
    check(up.tell() == len(raw), f"document ends at {up.tell()}, file has {len(raw)} bytes")
    return found


def read(path):
    with open(path, "rb") as f:
        raw = f.read()
    doc = msgpack.unpackb(raw, raw=False)
    keys = list(doc)
    check(keys[:3] == ["$format", "$version", "$attrs"], f"root keys start {keys[:3]}")
    check(doc["$format"] == "ckpt-msgpack", "$format")
    check(doc["$version"] == 1, "$version")

    a = doc["$attrs"]
    expected = {
        "producer": "ckpt-test", "epoch": 3, "big": 2**63 - 1, "small": -2**63, "lr": 0.001,
        "flag": True, "ints": [1, -2, 300000, -5000000000], "floats": [0.5, -1.5, 1e300],
        "bools": [True, False, True], "strings": ["a", "\u03b2\u03b3", ""],
        "$$dollar": "escaped",
        "empty_ints": {"$type": "int64[]", "$value": []},
        "empty_bools": {"$type": "bool[]", "$value": []},
        "empty_floats": {"$type": "float64[]", "$value": []},
        "empty_strings": {"$type": "string[]", "$value": []},
    }
    for k, v in expected.items():
        check(k in a and a[k] == v and type(a[k]) is type(v), f"attribute {k}: {a.get(k)!r} != {v!r}")
    check(bits(a.get("neg_zero", 0.0)) == bits(-0.0), "neg_zero is not -0.0")
    check(a.get("inf") == math.inf and a.get("ninf") == -math.inf, "inf/ninf")
    check(isinstance(a.get("nan"), float) and bits(a["nan"]) == bytes.fromhex("7ff8000000000123"),
          f"nan bits {bits(a.get('nan', 0.0)).hex()}")
    check(set(a) == set(expected) | {"neg_zero", "inf", "ninf", "nan"}, f"attribute names {sorted(a)}")

    state = doc["model"]["state"]
    for d in DTYPES:
        expect_tensor(state, "t_" + d, d, [3, 5])
    expect_tensor(state, "scalar", "f32", [], [42.5])
    expect_tensor(state, "empty", "f32", [0, 4], [])
    expect_tensor(state, "$$dollar_tensor", "i32", [2])
    expect_tensor(state, "medium", "f32", [300])
    expect_tensor(state, "large", "f32", [200, 100])
    meta = doc["$$meta"]
    check(meta == {"$attrs": {"$$$x": 1}}, f"$$meta: {meta!r}")

    offsets = payload_offsets(raw)
    check(len(offsets) == 15, f"{len(offsets)} $data payloads, expected 15")
    for where, off in offsets:
        check(off % 64 == 0, f"{where}: $data payload at byte {off}, not a multiple of 64")


def write(path):
    # use_single_float: every float is written as float32, which ckpt widens exactly.
    packer = msgpack.Packer(use_single_float=True)
    doc = {
        "$format": "ckpt-msgpack",
        "$version": 1,
        "model": {
            # Keys in another order than ckpt writes them, no $pad: payloads are unaligned.
            "w": {"$shape": [2, 3], "$data": np.arange(6, dtype="<f4").tobytes(), "$dtype": "f32"},
            "b": {"$data": np.array([1, -2], dtype="<i8").tobytes(), "$dtype": "i64", "$shape": [2]},
            "$$odd": {"$dtype": "u8", "$shape": [0], "$data": b""},
        },
        "empty": {},
        "$attrs": {
            "half": 0.5,
            "name": "python",
            "typed": {"$value": [1, 2], "$type": "int64[]"},
            "none": {"$type": "string[]", "$value": []},
        },
    }
    with open(path, "wb") as f:
        f.write(packer.pack(doc))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("read", "write"):
        print(__doc__)
        return 2
    if sys.argv[1] == "write":
        write(sys.argv[2])
        return 0
    read(sys.argv[2])
    for f in failures:
        print("MISMATCH:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
