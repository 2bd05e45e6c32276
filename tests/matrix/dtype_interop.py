#!/usr/bin/python3
"""The dtypes beyond ckpt 0.1's ten, against the tools that make and read them.

make OUT   writes files holding uint16/32/64 and complex64/128 arrays with torch (complex only:
           Debian's torch 1.13 predates its uint and float8 tensors), numpy pickles, h5py and
           onnx, and OUT/<name>.bin with each array's little-endian C-order bytes.
check OUT  reads the files ckpt wrote into OUT (written.h5, written.onnx, written.safetensors,
           roundtrip.pt) with h5py, onnx, a plain reading of the safetensors header, and
           torch.load, and compares every array with the .bin files: the dtype each tool sees
           and the bytes. float8 tensors (f8_e4m3fn, f8_e5m2; their .bin files written by the
           test) are checked as what each format stores for them. Prints OK or exits 1.
"""
import json
import os
import pickle
import struct
import sys

import numpy as np

ARRAYS = {
    "u16": np.array([[0, 1, 65535], [32768, 7, 12345]], dtype=np.uint16),
    "u32": np.array([0, 1, 2**32 - 1, 2**31], dtype=np.uint32),
    "u64": np.array([0, 2**64 - 1, 2**63, 2**53 + 1], dtype=np.uint64),
    "c64": np.array([1.5 - 2j, -0.0 + 0.25j, np.inf + 1j], dtype=np.complex64),
    "c128": np.array([[1e300 - 2.5j], [-1e-300 + 3j]], dtype=np.complex128),
}
NUMPY_OF = {"u16": "<u2", "u32": "<u4", "u64": "<u8", "c64": "<c8", "c128": "<c16"}
SAFETENSORS_OF = {"u16": "U16", "u32": "U32", "u64": "U64", "c64": "C64",
                  "f8_e4m3fn": "F8_E4M3", "f8_e5m2": "F8_E5M2"}
ONNX_OF = {"u16": 4, "u32": 12, "u64": 13, "c64": 14, "c128": 15, "f8_e4m3fn": 17, "f8_e5m2": 19}
problems = []


def le_bytes(a):
    return np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"))).tobytes()


def expect(what, ok):
    if not ok:
        problems.append(what)


def make(out):
    import h5py
    import onnx
    import torch
    from onnx import helper, numpy_helper
    for name, a in ARRAYS.items():
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(le_bytes(a))
    torch.save({"c64": torch.from_numpy(ARRAYS["c64"]), "c128": torch.from_numpy(ARRAYS["c128"])},
               os.path.join(out, "torch_complex.pt"))
    with open(os.path.join(out, "numpy.pkl"), "wb") as f:
        pickle.dump(dict(ARRAYS), f, protocol=4)
    with h5py.File(os.path.join(out, "h5py.h5"), "w") as f:
        for name, a in ARRAYS.items():
            f[name] = a
    inits = [numpy_helper.from_array(a, name) for name, a in ARRAYS.items()]
    graph = helper.make_graph([], "dtypes", [], [], initializer=inits)
    onnx.save(helper.make_model(graph), os.path.join(out, "onnx.onnx"))


def expected(out):
    names = list(ARRAYS) + ["f8_e4m3fn", "f8_e5m2"]
    return {n: open(os.path.join(out, n + ".bin"), "rb").read() for n in names}


def check(out):
    import h5py
    import onnx
    import onnx.numpy_helper
    import torch
    want = expected(out)

    with h5py.File(os.path.join(out, "written.h5"), "r") as f:
        for name, b in want.items():
            d = f[name]
            if name.startswith("f8"):
                expect(f"h5py {name}: uint8 marked {name}", d.dtype == np.uint8 and d.attrs.get("dtype") in
                       (name.replace("f8", "float8"), name.replace("f8", "float8").encode()))
            else:
                expect(f"h5py {name}: dtype {d.dtype}", d.dtype == np.dtype(NUMPY_OF[name]))
            expect(f"h5py {name}: bytes", le_bytes(d[()]) == b)

    model = onnx.load(os.path.join(out, "written.onnx"))
    by_name = {t.name.split("/")[-1].split(".")[-1]: t for t in model.graph.initializer}
    for name, b in want.items():
        t = by_name.get(name)
        expect(f"onnx {name}: present", t is not None)
        if t is None:
            continue
        expect(f"onnx {name}: data_type {t.data_type}", t.data_type == ONNX_OF[name])
        if name.startswith("f8"):  # onnx 1.12's numpy_helper predates float8: its raw bytes
            expect(f"onnx {name}: raw bytes", t.raw_data == b)
        else:
            a = onnx.numpy_helper.to_array(t)
            expect(f"onnx {name}: numpy dtype {a.dtype}", a.dtype == np.dtype(NUMPY_OF[name]))
            expect(f"onnx {name}: bytes", le_bytes(a) == b)

    with open(os.path.join(out, "written.safetensors"), "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    for name, b in want.items():
        if name not in SAFETENSORS_OF:
            continue  # c128: safetensors has no complex128
        entry = header.get(name)
        expect(f"safetensors {name}: present", entry is not None)
        if entry is None:
            continue
        expect(f"safetensors {name}: dtype {entry['dtype']}", entry["dtype"] == SAFETENSORS_OF[name])
        lo, hi = entry["data_offsets"]
        expect(f"safetensors {name}: bytes", raw[8 + n + lo:8 + n + hi] == b)

    original = torch.load(os.path.join(out, "torch_complex.pt"))
    back = torch.load(os.path.join(out, "roundtrip.pt"))
    expect(f"torch: keys {sorted(back)}", sorted(back) == sorted(original))
    for k, v in original.items():
        w = back.get(k)
        expect(f"torch {k}: dtype", w is not None and w.dtype == v.dtype)
        expect(f"torch {k}: values", w is not None and w.numpy().tobytes() == v.numpy().tobytes())

    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    {"make": make, "check": check}[sys.argv[1]](sys.argv[2])
