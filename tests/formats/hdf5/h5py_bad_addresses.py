"""Writes copies of an h5py file whose metadata addresses point where they must not.

  h5py_bad_addresses.py FOLDER

dense.h5 has a group whose 20 links live in "dense" storage: a fractal heap and two v2 B-trees
(names, creation order) that the group's link info message addresses. Each copy
<field>_<where>.h5 sets one of those three addresses to the undefined address, 0, the
superblock, the file's last byte, far beyond the file, or a value that wraps around, and then
recomputes the object header's checksum (Jenkins' lookup3, as HDF5 does), so that libhdf5 takes
the address as written. With libhdf5 1.10's default driver an undefined B-tree address made it
copy from a null buffer.

cont_<where>.h5: a dataset with so many attributes that its (version 1, unchecksummed) object
header continues in other chunks; the first continuation message's length or address is set
to 4 GiB - 1 bytes, the undefined address or one past the file. libhdf5 1.10 allocates a chunk
by that length before it reads it.

driver_info.h5: a version 0 superblock names a driver information block that claims 2 GiB;
libhdf5 1.10 allocates the block by that size before it reads it.

link_name.h5: a group's link message says its name is 200 bytes long, past the message's end
(the header's checksum recomputed); libhdf5 1.10 reports it and then frees entries of its link
table that it never filled.

compact_short.h5: a compact dataset (its bytes inside its object header) whose layout message
says it holds 0 of its 16 bytes; libhdf5 1.10 copied the dataset from a null buffer.

link_version.h5, link_flags.h5: the same link message with version 2, or a flag HDF5 does not
define; libhdf5 1.10 refuses such a message only after it started the group's link table, and
frees its unfilled entries.

chunk_zero.h5: a chunked dataset whose layout message gives a chunk dimension of 0; libhdf5
1.10 divides by it while opening the dataset.

efl_name.h5, efl_empty.h5: a dataset stored in an external file whose external file list names
the file at an offset past its local heap, or by an empty name: libhdf5 1.10 decodes that list as it opens the dataset (before
ckpt sees that the storage is external), with the same end as below.

snod_name.h5, btree_key.h5: an old-style group (a symbol table) whose symbol table node names
a link, or whose B-tree has a key, at an offset past the group's local heap; libhdf5 1.10
refuses it, and can then no longer close the file: the process crashed when libhdf5 shut down.

vds_heap_loop.h5 is a virtual dataset whose mapping's global heap collection holds a free-space
object of size 0, on which libhdf5 1.10 loops forever while it opens the dataset (before ckpt
can see that it is virtual). Prints the names written.
"""
import struct
import sys

import h5py
import numpy as np


def rot(x, k):
    return ((x << k) | (x >> (32 - k))) & 0xFFFFFFFF


def lookup3(data, initval=0):
    """Bob Jenkins' hashlittle, HDF5's metadata checksum."""
    m = 0xFFFFFFFF
    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & m
    i = 0
    while n > 12:
        a = (a + struct.unpack_from("<I", data, i)[0]) & m
        b = (b + struct.unpack_from("<I", data, i + 4)[0]) & m
        c = (c + struct.unpack_from("<I", data, i + 8)[0]) & m
        a = (a - c) & m; a ^= rot(c, 4); c = (c + b) & m
        b = (b - a) & m; b ^= rot(a, 6); a = (a + c) & m
        c = (c - b) & m; c ^= rot(b, 8); b = (b + a) & m
        a = (a - c) & m; a ^= rot(c, 16); c = (c + b) & m
        b = (b - a) & m; b ^= rot(a, 19); a = (a + c) & m
        c = (c - b) & m; c ^= rot(b, 4); b = (b + a) & m
        i += 12
        n -= 12
    if n == 0:
        return c
    tail = data[i:] + b"\0" * (12 - n)
    a = (a + struct.unpack_from("<I", tail, 0)[0]) & m
    b = (b + struct.unpack_from("<I", tail, 4)[0]) & m
    c = (c + struct.unpack_from("<I", tail, 8)[0]) & m
    c ^= b; c = (c - rot(b, 14)) & m
    a ^= c; a = (a - rot(c, 11)) & m
    b ^= a; b = (b - rot(a, 25)) & m
    c ^= b; c = (c - rot(b, 16)) & m
    a ^= c; a = (a - rot(c, 4)) & m
    b ^= a; b = (b - rot(a, 14)) & m
    c ^= b; c = (c - rot(b, 24)) & m
    return c


def ohdr_chunk(data, at):
    """(start, end) of the first chunk of the v2 object header at `at`, checksum excluded."""
    flags = data[at + 5]
    p = at + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
    width = 1 << (flags & 3)
    return at, p + width + int.from_bytes(data[p:p + width], "little")


def main():
    out = sys.argv[1]
    base = out + "/dense.h5"
    with h5py.File(base, "w") as f:
        g = f.create_group("g", track_order=True)
        for i in range(20):
            g.create_dataset(f"d{i}", data=np.arange(3, dtype="f4"))
    data = bytearray(open(base, "rb").read())
    start, end = ohdr_chunk(data, data.find(b"OHDR"))
    if lookup3(bytes(data[start:end])) != int.from_bytes(data[end:end + 4], "little"):
        sys.exit("the object header's checksum is not the one this script computes")
    heap = data.find(b"FRHP")
    at = data.find(heap.to_bytes(8, "little"), start, end)  # the link info message's addresses
    if heap < 0 or at < 0:
        sys.exit("no dense link storage in the file h5py wrote")
    size = len(data)
    where = {"undefined": 2**64 - 1, "zero": 0, "superblock": 8, "last_byte": size - 1,
             "beyond": 2**40, "wraps": 2**64 - 16}
    for field, offset in (("heap", 0), ("names", 8), ("order", 16)):
        for name, value in where.items():
            d = bytearray(data)
            d[at + offset:at + offset + 8] = value.to_bytes(8, "little")
            d[end:end + 4] = lookup3(bytes(d[start:end])).to_bytes(4, "little")
            path = f"{out}/{field}_{name}.h5"
            open(path, "wb").write(d)
            print(path)
    driver_info(out, bytes(data))
    continuation(out)
    link_name(out)
    compact(out)
    heap_loop(out)
    link_fields(out)
    chunk_zero(out)
    symbol_table(out)
    external_file_list(out)


def continuation(out):
    base = out + "/cont.h5"
    with h5py.File(base, "w") as f:
        d = f.create_dataset("d", data=np.arange(4, dtype="f4"))
        for i in range(40):
            d.attrs[f"attribute_{i}"] = np.arange(i + 1, dtype="i8")
    data = open(base, "rb").read()
    at = data.find(b"\x10\x00\x10\x00")  # a version 1 message: type 0x10, 16 bytes of data
    if at < 0:
        sys.exit("no continuation message in the file h5py wrote")
    for name, field, value in (("huge", 16, 2**32 - 1), ("undefined", 8, 2**64 - 1),
                               ("beyond", 8, len(data) + 1)):
        d = bytearray(data)
        d[at + field:at + field + 8] = value.to_bytes(8, "little")
        path = f"{out}/cont_{name}.h5"
        open(path, "wb").write(d)
        print(path)


def driver_info(out, data):
    d = bytearray(data)
    if d[8] != 0:
        sys.exit("h5py did not write a version 0 superblock")
    d[48:56] = len(d).to_bytes(8, "little")  # the driver information block's address
    d += b"\x00\x00\x00\x00" + (2**31).to_bytes(4, "little") + b"NCSAmult"
    path = out + "/driver_info.h5"
    open(path, "wb").write(d)
    print(path)


def link_name(out):
    base = out + "/links.h5"
    with h5py.File(base, "w", track_order=True) as f:  # links as messages in the root's header
        f.create_dataset("first_child", data=np.arange(3, dtype="f4"))
        f.create_dataset("second_child", data=np.arange(3, dtype="f4"))
    data = bytearray(open(base, "rb").read())
    start, end = ohdr_chunk(data, data.find(b"OHDR"))
    at = data.find(b"second_child", start, end)
    if at < 0 or data[at - 1] != len("second_child"):
        sys.exit("no link message for second_child in the root's header")
    data[at - 1] = 200
    data[end:end + 4] = lookup3(bytes(data[start:end])).to_bytes(4, "little")
    path = out + "/link_name.h5"
    open(path, "wb").write(data)
    print(path)


def compact(out):
    base = out + "/compact.h5"
    values = np.array([1.5, 2.5, 3.5, 4.5], dtype="<f4")
    with h5py.File(base, "w") as f:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        space = h5py.h5s.create_simple((4,))
        d = h5py.h5d.create(f.id, b"c", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
        d.write(h5py.h5s.ALL, h5py.h5s.ALL, values)
    data = bytearray(open(base, "rb").read())
    at = data.find(b"\x03\x00\x10\x00" + values.tobytes())  # layout v3, compact, 16 bytes
    if at < 0:
        sys.exit("no compact layout message in the file h5py wrote")
    data[at + 2:at + 4] = bytes(2)
    path = out + "/compact_short.h5"
    open(path, "wb").write(data)
    print(path)


def heap_loop(out):
    with h5py.File(out + "/vds.h5", "w", libver="latest") as f:
        f.create_dataset("src", data=np.arange(8, dtype="f4"))
        layout = h5py.VirtualLayout(shape=(8,), dtype="f4")
        layout[:] = h5py.VirtualSource(".", "src", shape=(8,))
        f.create_virtual_dataset("v", layout)
    d = bytearray(open(out + "/vds.h5", "rb").read())
    g = d.find(b"GCOL\x01")
    if g < 0:
        sys.exit("no global heap collection in the virtual dataset's file")
    d[g + 16:g + 18] = bytes(2)  # the first object's index: 0, free space
    d[g + 24:g + 32] = bytes(8)  # and its size: 0
    path = out + "/vds_heap_loop.h5"
    open(path, "wb").write(d)
    print(path)


def link_fields(out):
    with h5py.File(out + "/links2.h5", "w", track_order=True) as f:
        f.create_dataset("first_child", data=np.arange(3, dtype="f4"))
        f.create_dataset("second_child", data=np.arange(3, dtype="f4"))
    data = bytearray(open(out + "/links2.h5", "rb").read())
    start, end = ohdr_chunk(data, data.find(b"OHDR"))
    at = data.find(b"second_child", start, end)
    # version, flags (0x04: a creation order follows), 8 bytes of creation order, name length
    version, flags = at - 11, at - 10
    if data[version] != 1 or data[flags] != 0x04:
        sys.exit("the link message for second_child is not laid out as expected")
    for name, pos, value in (("link_version", version, 2), ("link_flags", flags, 0x24)):
        d = bytearray(data)
        d[pos] = value
        d[end:end + 4] = lookup3(bytes(d[start:end])).to_bytes(4, "little")
        path = f"{out}/{name}.h5"
        open(path, "wb").write(d)
        print(path)


def chunk_zero(out):
    with h5py.File(out + "/chunked.h5", "w") as f:
        f.create_dataset("c", data=np.arange(8, dtype="<f4"), chunks=(2,))
    data = bytearray(open(out + "/chunked.h5", "rb").read())
    # layout message version 3, class 2 (chunked), rank 2 (the data's and the element size)
    at = data.find(b"\x03\x02\x02")
    dims = at + 3 + 8
    if at < 0 or data[dims:dims + 8] != (2).to_bytes(4, "little") + (4).to_bytes(4, "little"):
        sys.exit("no chunked layout message in the file h5py wrote")
    data[dims:dims + 4] = bytes(4)
    path = out + "/chunk_zero.h5"
    open(path, "wb").write(data)
    print(path)


def symbol_table(out):
    with h5py.File(out + "/old_group.h5", "w") as f:  # h5py's default: old-style groups
        g = f.create_group("g")
        g.create_dataset("a", data=np.arange(3, dtype="f4"))
        g.create_dataset("b", data=np.arange(3, dtype="f4"))
    data = open(out + "/old_group.h5", "rb").read()
    # The group's symbol table node: "SNOD", version 1, reserved, 2 symbols, then the entries.
    snod = data.find(b"SNOD\x01\x00\x02\x00")
    # Its B-tree node: "TREE", type 0, level 0, 1 entry, two siblings, then key 0 and child 0.
    tree = data.find(b"TREE\x00\x00\x01\x00", data.find(b"TREE") + 1)
    if snod < 0 or tree < 0:
        sys.exit("no symbol table of two links in the file h5py wrote")
    for name, pos in (("snod_name", snod + 8), ("btree_key", tree + 8 + 16 + 16)):
        d = bytearray(data)
        d[pos:pos + 8] = (10**6).to_bytes(8, "little")
        path = f"{out}/{name}.h5"
        open(path, "wb").write(d)
        print(path)


def external_file_list(out):
    with h5py.File(out + "/efl.h5", "w") as f:
        f.create_dataset("x", (4,), "<f4", external=[("x.bin", 0, 16)])
    data = bytearray(open(out + "/efl.h5", "rb").read())
    names = data.find(b"x.bin")
    heap = data.rfind(b"HEAP", 0, names)
    # The message: version 1, 3 reserved bytes, allocated and used slots, the heap's address,
    # then slot 0's name offset.
    at = data.find(heap.to_bytes(8, "little"))
    if names < 0 or heap < 0 or at < 8 or data[at - 8:at - 4] != b"\x01\x00\x00\x00":
        sys.exit("no external file list in the file h5py wrote")
    for name, offset in (("efl_name", 10**6), ("efl_empty", 0)):  # the heap's first name is ""
        d = bytearray(data)
        d[at + 8:at + 16] = offset.to_bytes(8, "little")
        path = f"{out}/{name}.h5"
        open(path, "wb").write(d)
        print(path)


if __name__ == "__main__":
    main()
