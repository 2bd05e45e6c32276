"""Damages one stored chunk of a dataset in place, found through h5py's chunk index.

  h5py_damage_chunk.py FILE.h5 DATASET ROW,COL,... garbage|short

garbage: every stored byte of the chunk becomes 0x5a. short: the chunk's bytes become a valid
zlib stream of a smaller chunk (10 zero bytes), padded with zeros to the stored size, the damage
that made libhdf5 1.10 copy past its buffer. Prints the chunk's byte offset and size.
"""
import sys
import zlib

import h5py


def main(path, dataset, coords, mode):
    offset = tuple(int(c) for c in coords.split(","))
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info_by_coord(offset)
    if mode == "garbage":
        new = b"\x5a" * info.size
    elif mode == "short":
        new = zlib.compress(b"\0" * 10)
        assert len(new) <= info.size, (len(new), info.size)
        new += b"\0" * (info.size - len(new))
    else:
        raise SystemExit("unknown mode " + mode)
    with open(path, "r+b") as f:
        f.seek(info.byte_offset)
        f.write(new)
    print(info.byte_offset, info.size)


if __name__ == "__main__":
    main(*sys.argv[1:])
