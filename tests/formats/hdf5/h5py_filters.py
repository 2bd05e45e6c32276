"""Datasets compressed with the filters h5py users meet, and the bytes each must read as.

  h5py_filters.py FOLDER

filters.h5 holds the same float32 array under lzf (h5py's own filter), lzf_shuffle, lzf_random
(chunks LZF cannot shrink, stored with the filter skipped), lz4, bzip2 and blosc (Debian's
hdf5-filter-plugin and hdf5-filter-plugin-blosc-serial, which libhdf5 loads from its plugin
folder); FOLDER/<name>.bin is each dataset's bytes. bitshuffle.h5 uses filter 32008, which no
Debian package provides in bookworm: ckpt must name it. Exits 1 when a filter cannot write
(a missing plugin is a failure of the set-up, not a reason to test less).
"""
import sys

import h5py
import numpy as np

out = sys.argv[1]
a = (np.arange(4000, dtype=np.float32).reshape(40, 100) / 3).astype("<f4")
noise = np.random.default_rng(7).integers(0, 2**32, size=(40, 100), dtype=np.uint32).view("<f4")
with h5py.File(f"{out}/filters.h5", "w") as f:
    f.create_dataset("lzf", data=a, chunks=(10, 100), compression="lzf")
    f.create_dataset("lzf_shuffle", data=a, chunks=(10, 100), compression="lzf", shuffle=True)
    f.create_dataset("lzf_random", data=noise, chunks=(10, 100), compression="lzf")
    for name, fid in (("lz4", 32004), ("bzip2", 307), ("blosc", 32001)):
        f.create_dataset(name, data=a, chunks=(10, 100), compression=fid, allow_unknown_filter=True)
for name in ("lzf", "lzf_shuffle", "lz4", "bzip2", "blosc"):
    with open(f"{out}/{name}.bin", "wb") as g:
        g.write(a.tobytes())
with open(f"{out}/lzf_random.bin", "wb") as g:
    g.write(noise.tobytes())
with h5py.File(f"{out}/filters.h5", "r") as f:  # h5py reads them back, so the filters really ran
    for name in ("lzf", "lzf_shuffle", "lz4", "bzip2", "blosc"):
        if not np.array_equal(f[name][...], a):
            sys.exit(f"h5py reads {name} back differently")
        if f[name].compression is None and not f[name]._filters:
            sys.exit(f"{name} was written without its filter")
with h5py.File(f"{out}/bitshuffle.h5", "w") as f:
    f.create_dataset("bitshuffle", data=a, chunks=(10, 100), compression=32008, allow_unknown_filter=True)
print("ok")
