#!/usr/bin/python3
"""NumPy's side of the numpy plugin's tests (Debian's python3-numpy).

  numpy_side.py make DIR      files np.save / np.savez / np.savez_compressed / write_array write,
                              with DIR/manifest.tsv: file, key, ckpt dtype, shape, raw file (the
                              array's bytes in C order, little-endian: what ckpt must read)
  numpy_side.py check FILE MANIFEST
                              numpy.load(FILE, allow_pickle=False) must hold exactly the arrays
                              MANIFEST lists (key, ckpt dtype, shape, raw file), and every array
                              must be stored byte for byte as np.save writes it; prints "ok N"
  numpy_side.py attacks DIR   hostile files, with DIR/expected.tsv: file, error class, text
  numpy_side.py golden DIR    the few small files kept in golden/ (fuzzing seeds: scripts/fuzz.sh
                              starts the numpy target's corpus from them)
  numpy_side.py names DIR     archives whose member names are not flagged UTF-8 (code page 437,
                              as Python's zipfile reads them), with DIR/NAME.keys: the keys
                              numpy.load gives, one a line, in UTF-8
  numpy_side.py deep FILE N   N directory members each 64 levels deep, of long distinct names
  numpy_side.py crc FILE      a stored archive of arrays 'w' (data) and 'e' (empty), then
                              FILE.bad (a byte of w's data flipped) and FILE.empty (e's dtype
                              changed from '<f4' to '<i4' in its header)
"""
import io
import os
import struct
import sys
import zipfile
import zlib

import numpy as np
import numpy.lib.format as fmt

CKPT = {"?": "bool", "i1": "i8", "u1": "u8", "i2": "i16", "u2": "u16", "i4": "i32", "u4": "u32",
        "i8": "i64", "u8": "u64", "f2": "f16", "f4": "f32", "f8": "f64", "c8": "c64", "c16": "c128"}
FROM_CKPT = {v: k for k, v in CKPT.items()}


def code(dt):
    return "?" if dt.kind == "b" else dt.kind + str(dt.itemsize)


def values(dt, shape, seed):
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape)) if len(shape) else 1
    if dt.kind == "b":
        a = rng.integers(0, 2, n).astype(bool)
    else:
        # random bits: every pattern, NaN payloads included
        a = np.frombuffer(rng.bytes(n * dt.itemsize), dtype=dt.newbyteorder("<")).astype(dt)
    return a.reshape(shape)


def raw(a):
    return np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=True).tobytes()


def make(out):
    os.makedirs(out, exist_ok=True)
    rows = []

    def note(file, key, a):
        rawname = "%s.%s.raw" % (file, key.replace("/", "_"))
        with open(os.path.join(out, rawname), "wb") as f:
            f.write(raw(a))
        rows.append("\t".join([file, key, CKPT[code(a.dtype)], ",".join(map(str, a.shape)), rawname]))

    seed = 0
    for c in CKPT:
        for order in ["<", ">"]:
            dt = np.dtype(c) if c in ("?", "i1", "u1") else np.dtype(order + c)
            if c in ("?", "i1", "u1") and order == ">":
                continue
            for layout in ["C", "F"]:
                seed += 1
                a = values(dt, (3, 4, 5), seed)
                a = np.asfortranarray(a) if layout == "F" else np.ascontiguousarray(a)
                name = "%s_%s_%s.npy" % (CKPT[c], "be" if order == ">" else "le", layout)
                np.save(os.path.join(out, name), a)
                note(name, "array", a)
    for shape, tag in [((), "scalar"), ((0,), "empty"), ((2, 0, 3), "empty3"), ((7,), "vector")]:
        a = values(np.dtype("<f8"), shape, 100 + len(tag))
        np.save(os.path.join(out, tag + ".npy"), a)
        note(tag + ".npy", "array", a)
    for version in [(1, 0), (2, 0), (3, 0)]:
        a = values(np.dtype("<i4"), (4, 3), 200 + version[0])
        name = "v%d.npy" % version[0]
        with open(os.path.join(out, name), "wb") as f:
            fmt.write_array(f, a, version=version)
        note(name, "array", a)
    flax = {
        "params/Dense_0/kernel": values(np.dtype("<f4"), (4, 3), 300),
        "params/Dense_0/bias": values(np.dtype("<f4"), (3,), 301),
        "params/LayerNorm_0/scale": values(np.dtype(">f8"), (3,), 302),
        "batch_stats/mean": np.asfortranarray(values(np.dtype("<f2"), (2, 3), 303)),
        "step": np.int64(1234),
    }
    for name, save in [("flax.npz", np.savez), ("flax_compressed.npz", np.savez_compressed)]:
        save(os.path.join(out, name), **flax)
        for k, v in flax.items():
            note(name, k, np.asarray(v))
    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        f.write("\n".join(rows) + "\n")


def check(path, manifest):
    want = {}
    folder = os.path.dirname(manifest)
    for line in open(manifest):
        if not line.strip():
            continue
        key, dtype, shape, rawname = line.rstrip("\n").split("\t")
        want[key] = (dtype, tuple(int(x) for x in shape.split(",")) if shape else (), rawname)
    problems = []
    if path.endswith(".npy"):
        a = np.load(path, allow_pickle=False)
        got = {"array": a}
        members = {"array": open(path, "rb").read()}
    else:
        with np.load(path, allow_pickle=False) as z:
            # Directory entries ('group/') are ckpt's empty groups, not arrays.
            got = {k: z[k] for k in z.files if not k.endswith("/")}
        with zipfile.ZipFile(path) as zf:
            if zf.testzip() is not None:
                problems.append("zip CRC failure")
            members = {i.filename[:-4]: zf.read(i) for i in zf.infolist() if i.filename.endswith(".npy")}
    if set(got) != set(want):
        problems.append("keys %s, expected %s" % (sorted(got), sorted(want)))
    for key, (dtype, shape, rawname) in want.items():
        if key not in got:
            continue
        a = got[key]
        if code(a.dtype) != FROM_CKPT[dtype] or a.dtype.byteorder == ">":
            problems.append("%s: dtype %s, expected %s" % (key, a.dtype, dtype))
        if a.shape != shape:
            problems.append("%s: shape %s, expected %s" % (key, a.shape, shape))
        if raw(a) != open(os.path.join(folder, rawname), "rb").read():
            problems.append("%s: values differ" % key)
        buf = io.BytesIO()
        np.save(buf, a)
        if members[key] != buf.getvalue():
            problems.append("%s: not the bytes np.save writes (header %r, np.save's %r)" %
                            (key, members[key][:128], buf.getvalue()[:128]))
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print("ok %d" % len(want))


def npy(header, data=b"", version=1, length=None):
    text = header.encode("latin1")
    hlen = len(text) + 1
    prefix = 10 if version == 1 else 12
    pad = 64 - (prefix + hlen) % 64
    body = text + b" " * pad + b"\n"
    n = len(body) if length is None else length
    size = struct.pack("<H", n) if version == 1 else struct.pack("<I", n)
    return b"\x93NUMPY" + bytes([version, 0]) + size + body + data


def attacks(out):
    os.makedirs(out, exist_ok=True)
    rows = []

    def put(name, data, kind, text):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        rows.append("%s\t%s\t%s" % (name, kind, text))

    def zip_of(name, members, method=zipfile.ZIP_STORED):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", method) as zf:
            for k, v in members:
                zf.writestr(k, v)
        put_bytes = buf.getvalue()
        return put_bytes

    f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }"
    put("huge_shape.npy", npy(f4 % "(1099511627776, 1099511627776)"), "LimitError", "overflows")
    put("big_claim.npy", npy(f4 % "(1073741824,)", b"\0" * 16), "FormatError", "truncated")
    put("header_past_end.npy", npy(f4 % "(2,)", length=9000), "FormatError", "runs past the end")
    put("header_too_long.npy", npy(f4 % "(2,)" + " " * 20000, b"\0" * 8), "LimitError", "10000")
    put("negative_dim.npy", npy(f4 % "(-1, 3)"), "FormatError", "non-negative")
    put("overflow_dim.npy", npy(f4 % "(99999999999999999999,)"), "LimitError", "2^63")
    put("not_a_tuple.npy", npy(f4 % "(3)", b"\0" * 12), "FormatError", "a tuple")
    put("object.npy", npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", b"\0" * 16),
        "UnsupportedError", "pickle")
    put("unicode.npy", npy("{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", b"\0" * 24),
        "UnsupportedError", "string")
    put("structured.npy", npy("{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }",
                              b"\0" * 16), "UnsupportedError", "structured")
    put("datetime.npy", npy("{'descr': '<M8[s]', 'fortran_order': False, 'shape': (2,), }", b"\0" * 16),
        "UnsupportedError", "datetime")
    put("not_dict.npy", npy("[1, 2, 3]"), "FormatError", "'{'")
    put("import.npy", npy("{'descr': __import__('os').system('touch /tmp/ckpt-numpy-pwned'), "
                          "'fortran_order': False, 'shape': (2,), }"), "FormatError", "a dtype string")
    put("extra_key.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1, }", b"\0" * 8),
        "FormatError", "'x'")
    put("missing_key.npy", npy("{'descr': '<f4', 'shape': (2,), }", b"\0" * 8), "FormatError", "fortran_order")
    put("twice.npy", npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", b"\0" * 8),
        "FormatError", "twice")
    put("escape.npy", npy("{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2,), }", b"\0" * 8),
        "FormatError", "no escapes")
    put("version4.npy", b"\x93NUMPY\x04\x00" + b"\0" * 100, "UnsupportedError", "version 4.0")
    put("trailing.npy", npy(f4 % "(2,)", b"\0" * 12), "FormatError", "belong to nothing")
    good = npy(f4 % "(2,)", b"\0" * 8)
    put("truncated_member.npz", zip_of("t", [("w.npy", npy(f4 % "(10,)", b"\0" * 8))]), "FormatError",
        "member 'w.npy' is truncated")
    put("object_member.npz", zip_of("o", [("ok.npy", good),
                                          ("obj.npy", npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
                                                          b"\0" * 8))]), "UnsupportedError", "member 'obj.npy'")
    with zipfile.ZipFile(io.BytesIO(), "w") as _:
        pass
    buf = io.BytesIO()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("a.npy", good)
            zf.writestr("a.npy", good)
    put("duplicate.npz", buf.getvalue(), "FormatError", "a second entry named 'a.npy'")
    put("empty_segment.npz", zip_of("e", [("a//b.npy", good)]), "UnsupportedError", "empty name")
    put("not_npy.npz", zip_of("n", [("readme.txt", b"hello")]), "UnsupportedError", "not a .npy")
    put("tensor_and_group.npz", zip_of("g", [("a.npy", good), ("a/b.npy", good)]), "UnsupportedError",
        "cannot also be")
    # A zip bomb: 256 MiB of zeros in one deflated member of a few hundred KiB. The arrays a
    # file lists are bounded by twice its size plus 64 MiB (option max_expansion).
    n = 256 << 20
    header = npy("{'descr': '|u1', 'fortran_order': False, 'shape': (%d,), }" % n)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    crc = zlib.crc32(header)
    parts = [co.compress(header)]
    chunk = b"\0" * (1 << 20)
    for _ in range(n >> 20):
        parts.append(co.compress(chunk))
        crc = zlib.crc32(chunk, crc)
    parts.append(co.flush())
    put("bomb.npz", stored_zip("bomb.npy", b"".join(parts), len(header) + n, crc), "LimitError", "max_expansion")
    # A member that claims more than deflate can give (1032:1).
    small = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = small.compress(good) + small.flush()
    put("liar.npz", stored_zip("w.npy", body, 1 << 40, zlib.crc32(good)), "FormatError", "claims to inflate")
    # Names: deeper than 64 levels; flagged UTF-8 but not; a UTF-8 name and a code page 437 one
    # that decode alike; a key numpy.load reads as another member ('x.npy' is member 'x.npy').
    put("deep.npz", zip_of("d", [("a/" * 64 + "w.npy", good)]), "LimitError", "65 levels deep; ckpt reads at most 64")
    put("utf8_flag_invalid.npz", raw_zip([(b"\xff.npy", 0x800, good)]), "FormatError", "is not valid UTF-8")
    put("decoded_twice.npz", raw_zip([("\u00e9.npy".encode(), 0x800, good), (b"\x82.npy", 0, good)]), "FormatError",
        "two zip entries named '\u00e9.npy' once decoded")
    put("key_is_member.npz", zip_of("k", [("x.npy", good), ("x.npy.npy", good)]), "UnsupportedError",
        "members 'x.npy.npy' and 'x.npy'")
    put("dims65.npy", npy(f4 % ("(" + "1, " * 65 + ")"), b"\0" * 4), "LimitError", "more than 64 dimensions")
    # CRC-32: a deflated member whose recorded CRC is not its data's; a stored empty array whose
    # header (all of its bytes) has a flipped byte.
    put("crc_deflated.npz", stored_zip("w.npy", body, len(good), zlib.crc32(good) ^ 1), "IntegrityError",
        "fails its CRC-32 check")
    empty = npy(f4 % "(0,)")
    put("crc_empty.npz", raw_zip([(b"e.npy", 0, empty.replace(b"<f4", b"<i4"), zlib.crc32(empty))]), "IntegrityError",
        "zip entry 'e.npy' fails its CRC-32 check")
    with open(os.path.join(out, "expected.tsv"), "w") as f:
        f.write("\n".join(rows) + "\n")


def stored_zip(name, compressed, size, crc):
    """One deflated entry whose header says `size` and `crc`, written by hand (zipfile would
    compute them itself)."""
    n = name.encode()
    zip64 = size >= 0xffffffff
    extra = struct.pack("<HHQQ", 1, 16, size, len(compressed)) if zip64 else b""
    usize = 0xffffffff if zip64 else size
    csize = 0xffffffff if zip64 else len(compressed)
    local = struct.pack("<IHHHHHIIIHH", 0x04034b50, 45, 0, 8, 0, 0x21, crc, csize, usize, len(n), len(extra)) + n + extra
    central_at = len(local) + len(compressed)
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 45, 45, 0, 8, 0, 0x21, crc, csize, usize, len(n),
                          len(extra), 0, 0, 0, 0, 0) + n + extra
    end = struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 1, 1, len(central), central_at, 0)
    return local + compressed + central + end


def raw_zip(entries):
    """Stored entries written by hand: (raw name bytes, general purpose flags, data[, crc])."""
    out, central = b"", b""
    for e in entries:
        name, flags, data = e[:3]
        crc = e[3] if len(e) > 3 else zlib.crc32(data)
        local = struct.pack("<IHHHHHIIIHH", 0x04034b50, 20, flags, 0, 0, 0x21, crc, len(data), len(data), len(name), 0)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 20, 20, flags, 0, 0, 0x21, crc, len(data), len(data),
                               len(name), 0, 0, 0, 0, 0, len(out)) + name
        out += local + name + data
    end = struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, len(entries), len(entries), len(central), len(out), 0)
    return out + central + end


def names(out):
    os.makedirs(out, exist_ok=True)
    one = io.BytesIO()
    np.save(one, np.arange(3, dtype="<f8"))
    files = {
        # UTF-8 bytes without the flag: Python reads them as code page 437 ('\u251c\u2310').
        "cp437.npz": [("\u00e9.npy".encode(), 0, one.getvalue())],
        # A byte that is no UTF-8: code page 437's 0xff is U+00A0.
        "ff.npz": [(b"\xff.npy", 0, one.getvalue())],
        # Flagged: UTF-8, in a group.
        "flagged.npz": [("g/\u00e9.npy".encode(), 0x800, one.getvalue()), (b"g/\x83.npy", 0, one.getvalue())],
    }
    for name, entries in files.items():
        path = os.path.join(out, name)
        with open(path, "wb") as f:
            f.write(raw_zip(entries))
        with np.load(path, allow_pickle=False) as z:
            with open(path + ".keys", "w", encoding="utf-8") as f:
                f.write("".join(k + "\n" for k in z.files))


def deep(path, n):
    """n directory members 64 levels deep, each of distinct 60-byte folder names: as many
    nodes as names allow, and what a reader indexing every folder's full path pays most for."""
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(n):
            zf.writestr("/".join("%04d%s" % (i, chr(97 + k % 26) * 56) for k in range(64)) + "/", b"")


def crc(path):
    with zipfile.ZipFile(path, "w") as zf:
        for k, a in [("w", np.arange(16, dtype="<f4")), ("e", np.zeros(0, dtype="<f4"))]:
            buf = io.BytesIO()
            np.save(buf, a)
            zf.writestr(k + ".npy", buf.getvalue())
    data = open(path, "rb").read()
    with zipfile.ZipFile(path) as zf:
        w, e = zf.getinfo("w.npy"), zf.getinfo("e.npy")
    # A member's data follows its local header: 30 bytes, the name and the extra field.
    def data_at(info):
        n, m = struct.unpack_from("<HH", data, info.header_offset + 26)
        return info.header_offset + 30 + n + m
    bad = bytearray(data)
    bad[data_at(w) + w.file_size - 1] ^= 0x40  # the last byte of w's data
    open(path + ".bad", "wb").write(bytes(bad))
    bad = bytearray(data)
    at = data.index(b"<f4", data_at(e))
    bad[at + 1] = ord("i")  # e's dtype: still a header that parses, of no data
    open(path + ".empty", "wb").write(bytes(bad))


def golden(out):
    os.makedirs(out, exist_ok=True)
    a = values(np.dtype("<f4"), (2, 3), 1)
    np.save(os.path.join(out, "f4.npy"), a)
    np.save(os.path.join(out, "i2_be_fortran.npy"), np.asfortranarray(values(np.dtype(">i2"), (3, 2), 2)))
    np.save(os.path.join(out, "c8_scalar.npy"), values(np.dtype("<c8"), (), 3))
    for version in [(2, 0), (3, 0)]:
        with open(os.path.join(out, "v%d.npy" % version[0]), "wb") as f:
            fmt.write_array(f, values(np.dtype("|b1"), (4,), 4), version=version)
    state = {"params/Dense_0/kernel": a, "params/Dense_0/bias": values(np.dtype("<f2"), (3,), 5),
             "step": np.int64(7)}
    np.savez(os.path.join(out, "flax.npz"), **state)
    np.savez_compressed(os.path.join(out, "flax_compressed.npz"), **state)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    elif sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "attacks":
        attacks(sys.argv[2])
    elif sys.argv[1] == "golden":
        golden(sys.argv[2])
    elif sys.argv[1] == "names":
        names(sys.argv[2])
    elif sys.argv[1] == "deep":
        deep(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "crc":
        crc(sys.argv[2])
    else:
        sys.exit("usage: numpy_side.py make DIR | check FILE MANIFEST | attacks DIR")
