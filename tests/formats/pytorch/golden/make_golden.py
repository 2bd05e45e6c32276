"""Writes the checked-in golden and corrupt .pt files of tests/formats/pytorch/golden/.
Run from anywhere with Debian's /usr/bin/python3 (python3-torch 1.13); torch.save and this
script are deterministic, so running it again gives the same bytes.

small.pt is torch.save's own file. Every other file is small.pt with one thing broken, as a
zip tool, a bad copy or a hostile writer would break it; each one's folder is its stem, as torch
names it. What ckpt must say about each is in test_format_pytorch.cpp."""
import os
import pickletools
import struct
import zipfile
import zlib

import torch

here = os.path.dirname(os.path.abspath(__file__))
DATE = (1980, 1, 1, 0, 0, 0)


def write_golden():
    w = torch.arange(6, dtype=torch.float32).reshape(2, 3) / 8
    d = {
        "fc.weight": w,  # storage '0', shared with the two views below
        "fc.bias": torch.tensor([0.5, -0.25]),  # storage '1'
        "row": w[1],  # a view at offset 3
        "col": w.t(),  # a transposed view
        "half": torch.tensor([1.0, -2.0, 0.5, 65504.0], dtype=torch.float16),
        "bf16": torch.tensor([[1.0, -1.5], [3.0, 0.0078125]], dtype=torch.bfloat16),
        "ids": torch.tensor([3, -1, 1 << 40], dtype=torch.int64),
        "mask": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.25, dtype=torch.float64),
    }
    torch.save(d, f"{here}/small.pt")
    os.makedirs(f"{here}/expect", exist_ok=True)
    for k, v in d.items():
        t = v.contiguous()
        if t.dtype == torch.bfloat16:
            t = t.view(torch.int16)
        with open(f"{here}/expect/small.{k}", "wb") as f:
            f.write(t.numpy().tobytes())


def entries():
    """small.pt's entries as (name below the folder, bytes), in torch's order."""
    with zipfile.ZipFile(f"{here}/small.pt") as z:
        return [(i.filename.split("/", 1)[1], z.read(i)) for i in z.infolist()]


def rewrite(name, items, deflate=()):
    """A zip of `items` under the folder `name`; entries named in `deflate` are deflated."""
    with zipfile.ZipFile(f"{here}/{name}.pt", "w") as z:
        for n, data in items:
            info = zipfile.ZipInfo(f"{name}/{n}", date_time=DATE)
            info.compress_type = zipfile.ZIP_DEFLATED if n in deflate else zipfile.ZIP_STORED
            z.writestr(info, data)


def replaced(items, name, data):
    return [(n, data if n == name else d) for n, d in items]


def patch_headers(path, entry, fields):
    """Overwrites fields of `entry`'s local and central headers in place, keeping the zip
    otherwise as it is: fields maps 'crc' or 'size' (uncompressed) to the new value."""
    blob = bytearray(open(path, "rb").read())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(entry)
    local = info.header_offset
    # The central header repeats the local one's fields from "version needed" on, after its own
    # "version made by".
    fixed = bytes(blob[local + 4:local + 26])
    central = next(i for i in range(len(blob)) if blob[i:i + 4] == b"PK\x01\x02" and blob[i + 6:i + 28] == fixed)
    at = {"crc": (14, 16), "size": (22, 24)}
    for field, value in fields.items():
        struct.pack_into("<I", blob, local + at[field][0], value)
        struct.pack_into("<I", blob, central + at[field][1], value)
    open(path, "wb").write(bytes(blob))


def overwrite_data(path, entry, data):
    """Overwrites `entry`'s (compressed) bytes in place, headers and CRC left as they are."""
    blob = bytearray(open(path, "rb").read())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(entry)
    name_len, extra_len = struct.unpack_from("<HH", blob, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    assert len(data) == info.compress_size
    blob[start:start + len(data)] = data
    open(path, "wb").write(bytes(blob))


def tensor_ops(pkl):
    """For each _rebuild_tensor_v2 call in order: the opcodes (op, arg, pos) of its storage
    offset, sizes and strides."""
    ops = list(pickletools.genops(pkl))
    out = []
    for i, (op, _, _) in enumerate(ops):
        if op.name != "BINPERSID":
            continue
        j = i + 1
        offset = ops[j]
        j += 1
        sizes = []
        while not ops[j][0].name.startswith("TUPLE") and ops[j][0].name != "EMPTY_TUPLE":
            sizes.append(ops[j])
            j += 1
        j += 2  # the tuple and its BINPUT
        strides = []
        while not ops[j][0].name.startswith("TUPLE") and ops[j][0].name != "EMPTY_TUPLE":
            strides.append(ops[j])
            j += 1
        # The call's own REDUCE (the first builds the empty backward-hooks OrderedDict): the
        # byte ckpt names for a problem with the tensor.
        reduces = [k for k in range(j, len(ops)) if ops[k][0].name == "REDUCE"]
        out.append({"offset": offset, "sizes": sizes, "strides": strides, "call": ops[reduces[1]][2]})
    return out


def with_int(pkl, op, value):
    """`pkl` with the BININT1 `op` saying `value` instead (the same length: nothing moves)."""
    assert op[0].name == "BININT1" and 0 <= value < 256
    b = bytearray(pkl)
    b[op[2] + 1] = value
    return bytes(b)


def write_corrupt():
    """The broken files, and expected.tsv: per file, the ckpt exception it must raise and
    substrings of its message (the file, the place, what was wrong), the places found here in
    the bytes, independently of ckpt's reader."""
    expected = []

    def expect(stem, error, *says):  # ckpt names the file by the path it was given: the tail of it
        expected.append("\t".join([f"{stem}.pt", error, f"/{stem}.pt' (pytorch)", *says]))

    items = entries()
    pkl = dict(items)["data.pkl"]
    views = tensor_ops(pkl)
    row = views[2]  # "row": offset 3, size 3, stride 1 into storage '0' of 6 elements
    assert row["offset"][1] == 3 and [s[1] for s in row["strides"]] == [1]

    # A storage shorter than its tensors need: fc.weight's 24 bytes cut to 8.
    rewrite("short", replaced(items, "data/0", dict(items)["data/0"][:8]))
    expect("short", "FormatError", f"short/data.pkl, at byte {views[0]['call']} (torch.FloatStorage)",
           "storage '0' needs 24 bytes, short/data/0 holds 8")
    # A storage record missing: fc.bias's entry gone.
    rewrite("gone", [(n, d) for n, d in items if n != "data/1"])
    expect("gone", "FormatError", f"gone/data.pkl, at byte {views[1]['call']}", "storage '1' has no gone/data/1")
    # Views reaching past their storage of 6: row at offset 4 (elements 4..6), row with stride 2
    # (elements 3, 5, 7).
    rewrite("view_offset", replaced(items, "data.pkl", with_int(pkl, row["offset"], 4)))
    rewrite("view_stride", replaced(items, "data.pkl", with_int(pkl, row["strides"][0], 2)))
    for stem, last in (("view_offset", 6), ("view_stride", 7)):
        expect(stem, "FormatError", f"{stem}/data.pkl, at byte {row['call']}",
               f"a tensor view reaches element {last} of a storage of 6")
    # A stored data.pkl whose bytes no longer match its CRC-32: one byte of a key changed.
    rewrite("flip", items)
    name_at = pkl.index(b"fc.bias")
    overwrite_data(f"{here}/flip.pt", "flip/data.pkl", pkl[:name_at] + b"fc.bia5" + pkl[name_at + 7:])
    expect("flip", "IntegrityError", "zip entry 'flip/data.pkl' fails its CRC-32 check")
    # The same in a stored storage, which torch does not check either (the documented rule).
    rewrite("flip_storage", items)
    bias = dict(items)["data/1"]
    overwrite_data(f"{here}/flip_storage.pt", "flip_storage/data/1", bias[:3] + bytes([bias[3] ^ 0x80]) + bias[4:])
    # Deflated by a zip tool: whole, it reads; with a CRC that does not match, or a stream that
    # does not inflate, or a size deflate cannot reach, it does not.
    everything = [n for n, _ in items]
    rewrite("deflated", items, deflate=everything)
    rewrite("deflated_crc", items, deflate=everything)
    crc = zlib.crc32(dict(items)["data/2"])
    patch_headers(f"{here}/deflated_crc.pt", "deflated_crc/data/2", {"crc": crc ^ 1})
    expect("deflated_crc", "IntegrityError", "at half", "zip entry 'deflated_crc/data/2' fails its CRC-32 check")
    rewrite("deflated_broken", items, deflate=everything)
    with zipfile.ZipFile(f"{here}/deflated_broken.pt") as z:
        n = z.getinfo("deflated_broken/data/2").compress_size
    overwrite_data(f"{here}/deflated_broken.pt", "deflated_broken/data/2", b"\xff" * n)  # block type 3: invalid
    expect("deflated_broken", "FormatError", "at half", "zip entry 'deflated_broken/data/2' does not inflate to its declared 8 bytes")
    rewrite("deflated_bomb", items, deflate=everything)
    patch_headers(f"{here}/deflated_bomb.pt", "deflated_bomb/data/2", {"size": 0x7FFFFFFF})
    with zipfile.ZipFile(f"{here}/deflated_bomb.pt") as z:
        n = z.getinfo("deflated_bomb/data/2").compress_size
    expect("deflated_bomb", "FormatError", f"zip entry 'deflated_bomb/data/2' claims to inflate {n} bytes to 2147483647")
    # data.pkl cut inside an opcode's argument: in the string 'fc.bias', its length read.
    rewrite("cut_pickle", replaced(items, "data.pkl", pkl[:name_at + 3]))
    op_at = next(pos for op, arg, pos in pickletools.genops(pkl) if arg == "fc.bias")
    # The place is where the missing bytes start: after the opcode and its 4-byte length.
    expect("cut_pickle", "FormatError", f"cut_pickle/data.pkl, at byte {op_at + 5}",
           "truncated: BINUNICODE needs 7 bytes, 3 remain")
    with open(f"{here}/expected.tsv", "w") as f:
        f.write("# file\texception\tsubstrings of its message (written by make_golden.py)\n")
        f.write("".join(line + "\n" for line in expected))


if __name__ == "__main__":
    write_golden()
    write_corrupt()
