"""Writes HDF5 files with h5py, as other tools would, and a manifest of what each must read as.

  h5py_write_fixtures.py FOLDER

plain.h5, gzip.h5, shuffle_gzip.h5, chunked.h5: the same tree of groups and datasets (h5py's
defaults: name order, contiguous, no compression; then with filters and chunks). Their manifest
is the document the plugin must list. keras_model.h5 (model.save layout) and keras_weights.h5
(save_weights layout) follow Keras' legacy HDF5 saver; their manifest holds the expected
model/state of PyTorch-layout tensors; keras_gzip.h5 is keras_weights.h5 with chunked,
compressed kernels. keras_split.h5 has so many (and such long) layer and
weight names that Keras' saver splits them into layer_names0, layer_names1, ...
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
        "ints/u64": np.array([2**64 - 1, 2**63, 0, 1, 12345], dtype=np.uint64),
        "complex/c64": (random((3, 2), np.float32) + 1j * random((3, 2), np.float32)).astype(np.complex64),
        "complex/c128": np.array([1e300 - 2.5j, -0.0 + 1j], dtype=np.complex128),
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


# Of plain_tree's attributes, those of a type other than int64, float64, bool and str: (type, shape).
ATTRIBUTE_TYPES = {"int32": ("<i4", ""), "float32": ("<f4", ""), "bytes": ("fixed 5 ascii nullpad", ""),
                   "fixed_texts": ("fixed 2 ascii nullpad", "2")}


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
    # The attributes whose HDF5 type or shape their value does not say, recorded in meta so that
    # the HDF5 writer makes them so again (by path, then name).
    typed = sorted(((g or "/"), k, ATTRIBUTE_TYPES[k]) for g in attrs for k, v in attrs[g] if k in ATTRIBUTE_TYPES)
    m.group("meta", [("hdf5_attribute_type_paths", [t[0] for t in typed]),
                     ("hdf5_attribute_type_names", [t[1] for t in typed]),
                     ("hdf5_attribute_types", [t[2][0] for t in typed]),
                     ("hdf5_attribute_type_shapes", [t[2][1] for t in typed])])
    for path in sorted(data):
        dtype, a = expected_dtype(data[path])
        m.tensor(path, dtype, np.asarray(a))
    m.save()


def write_keras(folder, name, model_group, **storage):
    """A small model as Keras' legacy saver lays it out: Conv2D, BatchNormalization, Dense,
    a layer without weights, and a Dense kernel large enough to be read in several blocks.
    `storage` (h5py's chunks and compression) is for the large Dense kernel."""
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
                lg.create_dataset("%s/%s" % (lname, w), data=a, **(storage if a.size >= 100 * 512 else {}))
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


# Keras' HDF5_OBJECT_HEADER_LIMIT, and its save_attributes_to_hdf5_group: a list whose numpy
# array is larger than that is split into name0, name1, ... of np.array_split pieces.
HDF5_OBJECT_HEADER_LIMIT = 64512


def save_attributes_to_hdf5_group(group, name, data):
    data_npy = np.asarray(data)
    num_chunks = 1
    chunked_data = np.array_split(data_npy, num_chunks)
    while any(x.nbytes > HDF5_OBJECT_HEADER_LIMIT for x in chunked_data):
        num_chunks += 1
        chunked_data = np.array_split(data_npy, num_chunks)
    if num_chunks > 1:
        for chunk_id, chunk_data in enumerate(chunked_data):
            group.attrs["%s%d" % (name, chunk_id)] = chunk_data
    else:
        group.attrs[name] = data
    return num_chunks


def write_keras_split(folder, name):
    """save_weights layout of a model with 720 layers of ~1000-character names (so layer_names
    is split into 12 attributes, more than 10, so that name order and number order differ), and
    one layer whose 80 long weight names are split too. Names sort opposite to model order."""
    layers = []
    for i in range(720):
        if i % 90 == 0:
            k = i // 90
            layers.append(("dense_%d" % (9 - k), [("dense_%d/kernel:0" % (9 - k), random((3, 2), np.float32)),
                                                  ("dense_%d/bias:0" % (9 - k), random((2,), np.float32))]))
        else:
            layers.append(("%s_%04d" % ("pad" * 330, 719 - i), []))
    layers.insert(400, ("blocks", [("blocks/%s_%02d/kernel:0" % ("w" * 900, 79 - j), random((2, 3), np.float32))
                                   for j in range(80)]))
    chunks = {}
    with h5py.File(os.path.join(folder, name + ".h5"), "w") as f:
        chunks["layer_names"] = save_attributes_to_hdf5_group(
            f, "layer_names", [n.encode("utf8") for n, _ in layers])
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.11.0"
        for lname, weights in layers:
            g = f.create_group(lname)
            n = save_attributes_to_hdf5_group(g, "weight_names", [w.encode("utf8") for w, _ in weights])
            if lname == "blocks":
                chunks["weight_names"] = n
            for w, a in weights:
                g.create_dataset(w, data=a)
    # The point of the fixture: both lists really are split, layer_names into more than ten.
    assert chunks["layer_names"] > 10 and chunks["weight_names"] > 1, chunks

    m = manifest.Writer(folder, name)
    for lname, weights in layers:
        for w, a in weights:
            parts = w.split("/")[1:]
            leaf = parts[-1].split(":")[0]
            prefix = ".".join([lname] + parts[:-1])
            if leaf == "kernel":
                m.tensor(prefix + ".weight", "f32", a.T)
            else:
                m.tensor(prefix + ".bias", "f32", a)
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
    # A fill value other than 0 is named: a conversion writes every element, with the fill value 0.
    m.group("meta", [("unread", ["/sparse_i32: its fill value 7 (a conversion writes the dataset with the fill value 0)"])])
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
    # Not what Keras writes, but what h5py may: kernels in compressed chunks whose rows do not
    # divide the kernel's (the transposing read goes by blocks of whole chunk rows).
    write_keras(folder, "keras_gzip", False, chunks=(100, 512), compression="gzip", compression_opts=1,
                shuffle=True)
    write_keras_split(folder, "keras_split")
    write_sliced(folder, "sliced")
    print("OK")


if __name__ == "__main__":
    main(sys.argv[1])
