"""The h5py half of bench_hdf5: saves (with fsync) and one load of the tensors in REF.

  h5py_side.py REF.h5 OUT.h5

Loads every tensor of REF's model/state into memory first (not timed), then writes them the way
a PyTorch or Keras user would with h5py (one create_dataset per tensor, h5py's defaults:
contiguous, uncompressed) twice: over OUT in place, then as ckpt commits a file (a new temporary
file, fsync, rename over OUT, fsync of the folder). Then reads every tensor of OUT back into new
arrays, first with dset[()] (what most code does), then with read_direct into numpy.empty
(h5py's fastest way). Prints the four times in seconds: in place, atomic, load, load_direct.
"""
import os
import sys
import time

import h5py
import numpy


def fsync(path):
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def save(tensors, path):
    with h5py.File(path, "w") as f:
        g = f.create_group("model").create_group("state")
        for k, a in tensors:
            g.create_dataset(k, data=a)
    fsync(path)


def main(ref, out):
    with h5py.File(ref, "r") as f:
        tensors = [(k, v[()]) for k, v in f["model/state"].items()]
    t0 = time.perf_counter()
    save(tensors, out)
    t1 = time.perf_counter()
    save(tensors, out + ".tmp")
    os.rename(out + ".tmp", out)
    fsync(os.path.dirname(os.path.abspath(out)))
    t2 = time.perf_counter()
    with h5py.File(out, "r") as f:
        back = {k: v[()] for k, v in f["model/state"].items()}
    t3 = time.perf_counter()
    assert len(back) == len(tensors)
    del back
    t4 = time.perf_counter()
    with h5py.File(out, "r") as f:
        back = {}
        for k, v in f["model/state"].items():
            back[k] = numpy.empty(v.shape, v.dtype)
            v.read_direct(back[k])
    t5 = time.perf_counter()
    print("%.6f %.6f %.6f %.6f" % (t1 - t0, t2 - t1, t3 - t2, t5 - t4))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
