"""The expected-content manifest shared by the C++ tests and the h5py scripts.

A manifest is JSON: {"groups": [{"path", "attrs": [{"name", "type", "value"}]}],
"tensors": [{"path", "dtype", "shape", "file"}]}, with tensor bytes in raw files beside it.
Exact encodings so nothing is lost on the way: float64 values are the 16 hex digits of their
bits, strings are the hex of their bytes (they may hold NUL or be invalid UTF-8).
"""
import json
import os
import struct

import numpy as np

DTYPES = {
    "f32": np.float32, "f64": np.float64, "f16": np.float16, "bf16": np.uint16,
    "i8": np.int8, "u8": np.uint8, "i16": np.int16, "i32": np.int32, "i64": np.int64,
    "bool": np.bool_, "u16": np.uint16, "u32": np.uint32, "u64": np.uint64,
    "c64": np.complex64, "c128": np.complex128,
}


def f64_bits(x):
    return struct.pack(">d", float(x)).hex()


def encode_value(v):
    """A Python/numpy attribute value as (type, JSON value)."""
    if isinstance(v, (bool, np.bool_)):
        return "bool", bool(v)
    if isinstance(v, (int, np.integer)):
        return "int64", int(v)
    if isinstance(v, (float, np.floating)):
        return "float64", f64_bits(v)
    if isinstance(v, (str, bytes)):
        return "string", (v.encode() if isinstance(v, str) else v).hex()
    a = np.asarray(v)
    if a.dtype == np.bool_:
        return "bool[]", [bool(x) for x in a]
    if np.issubdtype(a.dtype, np.integer):
        return "int64[]", [int(x) for x in a]
    if np.issubdtype(a.dtype, np.floating):
        return "float64[]", [f64_bits(x) for x in a]
    return "string[]", [(x.encode() if isinstance(x, str) else bytes(x)).hex() for x in a]


class Writer:
    """Builds a manifest and its tensor files in `folder`."""

    def __init__(self, folder, name):
        self.folder, self.name = folder, name
        self.groups, self.tensors = [], []

    def group(self, path, attrs=()):
        self.groups.append({"path": path, "attrs": [
            dict(zip(("type", "value"), encode_value(v)), name=k) for k, v in attrs]})

    def tensor(self, path, dtype, array):
        array = np.asarray(array, order="C")
        file = "%s.%d.bin" % (self.name, len(self.tensors))
        with open(os.path.join(self.folder, file), "wb") as f:
            f.write(array.astype(array.dtype.newbyteorder("<")).tobytes())
        self.tensors.append({"path": path, "dtype": dtype, "shape": list(array.shape),
                             "file": file})

    def save(self):
        with open(os.path.join(self.folder, self.name + ".json"), "w") as f:
            json.dump({"groups": self.groups, "tensors": self.tensors}, f, indent=1)


def load(path):
    with open(path) as f:
        return json.load(f)
