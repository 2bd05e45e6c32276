"""Writes HDF5 files with h5py, as other tools would, and a manifest of what each must read as.

  h5py_write_fixtures.py FOLDER

plain.h5, gzip.h5, shuffle_gzip.h5, chunked.h5: the same tree of groups and datasets (h5py's
defaults: name order, contiguous, no compression; then with filters and chunks). Their manifest
is the document the plugin must list. keras_model.h5 (model.save layout) and keras_weights.h5
(save_weights layout) follow Keras' legacy HDF5 saver; their manifest holds the expected
model/state of PyTorch-layout tensors.
sliced.h5: chunked datasets (gzip, shuffle, fletcher32, big-endian, partly unwritten) for reading
slices; its manifest holds each dataset whole.
"""
import os
import sys

import h5py
import numpy as np

import manifest

rng = np.random.default_rng(1234)


def random(shape, dtype):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    return rng.standard_normal(size=shape).astype(dtype)


def plain_tree():
    """(datasets, groups): what h5py writes; the manifest's expected document follows from it."""
    data = {
        "weights/w_f32": random((3, 5), np.float32),
        "weights/w_f64": random((4,), np.float64),
        "weights/w_f16": random((2, 3, 4), np.float16),
        "weights/big_endian": random((6,), np.float32).astype(">f4"),
        "ints/i8": random((7,), np.int8),
        "ints/u8": random((7,), np.uint8),
        "ints/i16": random((7,), np.int16),
        "ints/i32": random((2, 2), np.int32),
        "ints/i64": random((3,), np.int64),
        "ints/u16": random((5,), np.uint16),
        "ints/u32": random((5,), np.uint32),
        "mask": random((4, 4), np.bool_),
        "scalar": np.float64(2.5),
        "empty": np.zeros((0, 3), np.float32),
        "a_rows": random((50, 40), np.float32),
    }
    attrs = {
        "": [("int", np.int64(-7)), ("int32", np.int32(12)), ("float", 0.1), ("float32", np.float32(1.5)),
             ("flag", True), ("text", "héllo"), ("bytes", np.bytes_(b"fixed")),
             ("ints", np.arange(4, dtype=np.int64)), ("floats", np.array([1.0, -0.0, np.inf])),
             ("flags", np.array([True, False])), ("texts", ["a", "bc", ""]),
             ("fixed_texts", np.array([b"x", b"yz"])), ("empty_ints", np.zeros(0, np.int64))],
        "weights": [("note", "w")],
        "ints": [],
    }
    return data, attrs


def expected_dtype(a):
    a = np.asarray(a)
    little = a.dtype.newbyteorder("<")
    if little == np.dtype("<u2"):
        return "i32", a.astype(np.int32)
    if little == np.dtype("<u4"):
        return "i64", a.astype(np.int64)
    name = {np.dtype(v).newbyteorder("<").str: k for k, v in manifest.DTYPES.items() if k != "bf16"}
    return name[a.dtype.newbyteorder("<").str], a


def expected_attr(v):
    # What an attribute of another tool's type becomes: integers int64, floats float64.
    if isinstance(v, np.bytes_):
        return v.decode()
    if isinstance(v, np.ndarray) and v.dtype.kind == "S":
        return [x.decode() for x in v]
    if isinstance(v, np.floating):
        return float(v)
    return v


def write_plain(folder, name, **kwargs):
    data, attrs = plain_tree()
    with h5py.File(os.path.join(folder, name + ".h5"), "w") as f:
        for path, a in data.items():
            extra = {} if np.ndim(a) == 0 or np.size(a) == 0 else kwargs
            f.create_dataset(path, data=a, **extra)
        for path, items in attrs.items():
            for k, v in items:
                f[path or "/"].attrs[k] = v
    m = manifest.Writer(folder, name)
    # h5py files do not track creation order: the plugin lists them by name.
    groups = sorted({p.rsplit("/", 1)[0] for p in data if "/" in p} | {""})
    for g in groups:
        m.group(g, sorted(((k, expected_attr(v)) for k, v in attrs.get(g, [])), key=lambda kv: kv[0]))
    for path in sorted(data):
        dtype, a = expected_dtype(data[path])
        m.tensor(path, dtype, np.asarray(a))
    m.save()


def write_keras(folder, name, model_group):
    """A small model as Keras' legacy saver lays it out: Conv2D, BatchNormalization, Dense,
    a layer without weights, and a Dense kernel large enough to be read in several blocks."""
    layers = [
        ("conv2d", [("kernel:0", random((3, 3, 2, 4), np.float32)), ("bias:0", random((4,), np.float32))]),
        ("batch_normalization", [("gamma:0", random((4,), np.float32)), ("beta:0", random((4,), np.float32)),
                                 ("moving_mean:0", random((4,), np.float32)),
                                 ("moving_variance:0", random((4,), np.float32))]),
        ("flatten", []),
        ("dense", [("kernel:0", random((1024, 4096), np.float32)), ("bias:0", random((4096,), np.float32))]),
        ("dense_1", [("kernel:0", random((7, 3), np.float64))]),
    ]
    with h5py.File(os.path.join(folder, name + ".h5"), "w") as f:
        if model_group:
            f.attrs["keras_version"] = "2.11.0"
            f.attrs["backend"] = "tensorflow"
            f.attrs["model_config"] = b'{"class_name": "Sequential"}'
            g = f.create_group("model_weights")
        else:
            g = f
        # Keras' save_attributes_to_hdf5_group: numpy arrays of utf-8 bytes (fixed length).
        g.attrs["layer_names"] = np.array([n.encode("utf8") for n, _ in layers])
        g.attrs["backend"] = "tensorflow"
        g.attrs["keras_version"] = "2.11.0"
        for lname, weights in layers:
            lg = g.create_group(lname)
            names = [("%s/%s" % (lname, w)).encode("utf8") for w, _ in weights]
            lg.attrs["weight_names"] = np.array(names) if names else np.asarray([])
            for w, a in weights:
                lg.create_dataset("%s/%s" % (lname, w), data=a)
        if model_group:
            opt = f.create_group("optimizer_weights")
            opt.attrs["weight_names"] = np.array([b"Adam/iter:0"])
            opt.create_dataset("Adam/iter:0", data=np.int64(10))

    m = manifest.Writer(folder, name)
    torch = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
             "moving_mean": "running_mean", "moving_variance": "running_var"}
    for lname, weights in layers:
        for w, a in weights:
            leaf = w.split(":")[0]
            if leaf == "kernel":
                a = a.T if a.ndim == 2 else a.transpose(3, 2, 0, 1)
            dtype, a = expected_dtype(a)
            m.tensor("%s.%s" % (lname, torch[leaf]), dtype, a)
    m.save()


def write_sliced(folder, name):
    data = {}
    with h5py.File(os.path.join(folder, name + ".h5"), "w") as f:
        def put(path, a, **kwargs):
            f.create_dataset(path, data=a, **kwargs)
            data[path] = a
        put("gzip_f32", random((50, 40), np.float32), chunks=(7, 6), compression="gzip")
        put("shuffle_fletcher_f64", random((23, 17, 5), np.float64), chunks=(4, 5, 2), shuffle=True,
            compression="gzip", fletcher32=True)
        put("fletcher_u8", random((31, 9), np.uint8), chunks=(4, 4), fletcher32=True)
        put("be_u16", random((40, 12), np.uint16).astype(">u2"), chunks=(9, 5), shuffle=True, compression="gzip")
        put("bool_mask", random((33,), np.bool_), chunks=(8,), compression="gzip")
        put("f16_rank4", random((6, 5, 4, 3), np.float16), chunks=(2, 5, 3, 2), shuffle=True, compression="gzip")
        # Only some chunks written: the others read as the fill value.
        sparse = f.create_dataset("sparse_i32", shape=(30, 30), dtype=np.int32, chunks=(10, 10),
                                  compression="gzip", fillvalue=7)
        a = np.full((30, 30), 7, np.int32)
        a[0:10, 10:20] = random((10, 10), np.int32)
        a[20:30, 0:15] = random((10, 15), np.int32)
        sparse[0:10, 10:20] = a[0:10, 10:20]
        sparse[20:30, 0:15] = a[20:30, 0:15]
        data["sparse_i32"] = a
        assert sparse.id.get_num_chunks() == 3, sparse.id.get_num_chunks()  # of 9
    m = manifest.Writer(folder, name)
    for path in sorted(data):
        dtype, a = expected_dtype(data[path])
        m.tensor(path, dtype, a)
    m.save()


def main(folder):
    os.makedirs(folder, exist_ok=True)
    write_plain(folder, "plain")
    write_plain(folder, "gzip", compression="gzip", compression_opts=6)
    write_plain(folder, "shuffle_gzip", compression="gzip", shuffle=True)
    write_plain(folder, "chunked", chunks=True)
    write_keras(folder, "keras_model", True)
    write_keras(folder, "keras_weights", False)
    write_sliced(folder, "sliced")
    print("OK")


if __name__ == "__main__":
    main(sys.argv[1])
