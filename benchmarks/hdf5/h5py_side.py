"""The h5py half of bench_hdf5: one save (with fsync) and one load of the tensors in REF.

  h5py_side.py REF.h5 OUT.h5

Loads every tensor of REF's model/state into memory first (not timed), then writes them to OUT
the way a PyTorch or Keras user would with h5py (one create_dataset per tensor, h5py's defaults:
contiguous, uncompressed), fsyncs OUT, and reads every tensor back into new arrays. Prints the
two times in seconds.
"""
import os
import sys
import time

import h5py


def main(ref, out):
    with h5py.File(ref, "r") as f:
        tensors = [(k, v[()]) for k, v in f["model/state"].items()]
    t0 = time.perf_counter()
    with h5py.File(out, "w") as f:
        g = f.create_group("model").create_group("state")
        for k, a in tensors:
            g.create_dataset(k, data=a)
    fd = os.open(out, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    t1 = time.perf_counter()
    with h5py.File(out, "r") as f:
        back = {k: v[()] for k, v in f["model/state"].items()}
    t2 = time.perf_counter()
    assert len(back) == len(tensors)
    print("%.6f %.6f" % (t1 - t0, t2 - t1))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
