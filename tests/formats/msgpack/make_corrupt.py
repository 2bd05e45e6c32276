#!/usr/bin/python3
"""Writes the golden corrupt files in corrupt/ and corrupt/expected.tsv.

Each file breaks one rule of docs/formats/msgpack.md. expected.tsv lists, per file, the
ckpt exception the reader must throw and substrings its message must contain: the byte offset
(located here in the bytes, independently of the reader), the key path and what was wrong.
test_format_msgpack.cpp checks every file against it. Run with /usr/bin/python3 (Debian's
python3-msgpack) after changing a case; commit the outputs.
"""
import os

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corrupt")
pk = msgpack.Packer()
HEAD = {"$format": "ckpt-msgpack", "$version": 1}

cases = []  # (name, bytes, exception, [substrings])


def case(name, raw, error, *substrings):
    cases.append((name, bytes(raw), error, list(substrings)))


def doc(body):
    d = dict(HEAD)
    d.update(body)
    return msgpack.packb(d)


def tensor(dtype="f32", shape=(2, 3), data=None):
    n = 4
    for s in shape:
        n *= s
    return {"$dtype": dtype, "$shape": list(shape), "$data": bytes(n) if data is None else data}


def at(raw, marker, skip=0):
    return f"at byte {raw.index(marker) + skip} "


raw = doc({"model": {"w": tensor()}})
cut = raw[:-10]
i = cut.index(b"\xc4\x18")
case("truncated_data", cut, "FormatError", f"at byte {i} (model/w/$data)",
     f"file truncated: a bin declares 24 bytes but only {len(cut) - i - 2} remain")

raw = doc({"model": {"w": tensor()}})
raw = raw[:raw.index(b"\xa5model") + 6] + b"\x82" + raw[raw.index(b"\xa5model") + 7:]
case("truncated_map", raw, "FormatError", "(model)",
     f"the file ends at byte {len(raw)} inside the map at byte {raw.index(b'model') + 5} "
     "after 1 complete items")

raw = msgpack.packb({"$format": "ckpt-json", "$version": 1})
case("bad_format", raw, "FormatError", at(raw, b"\xa9ckpt-json") + "($format)",
     'expected $format "ckpt-msgpack", found "ckpt-json"')

raw = doc({"model": {"w": tensor(data=bytes(10))}})
case("data_size_mismatch", raw, "FormatError", at(raw, b"\xc4\x0a") + "(model/w)",
     "$data has 10 bytes, shape [2,3] f32 needs 24")

raw = doc({"model": {"w": tensor(shape=(2, -3), data=b"")}})
case("negative_dim", raw, "FormatError", at(raw, b"\x92\x02\xfd", 2) + "(model/w/$shape[1])",
     "negative dimension -3")

raw = doc({"model": {"w": tensor(shape=(2**40, 2**40), data=b"")}})
case("shape_overflow", raw, "LimitError", at(raw, b"\x92\xcf") + "(model/w)", "overflows")

raw = doc({"model": {"w": tensor(dtype="f128")}})
case("unknown_dtype", raw, "FormatError", at(raw, b"\xa4f128") + "(model/w/$dtype)",
     'found the str "f128"')

raw = doc({"model": {"w": {"$dtype": "f32", "$shape": [2, 3]}}})
case("missing_data", raw, "FormatError", at(raw, b"\xa1w\x82", 2) + "(model/w)",
     "tensor has no $data")

raw = pk.pack_map_header(3) + pk.pack("$format") + pk.pack("ckpt-msgpack") + pk.pack("$version")
raw += pk.pack(1) + pk.pack("model") + pk.pack_map_header(2) + pk.pack("w") + pk.pack(tensor())
second = len(raw)
raw += pk.pack("w") + pk.pack(tensor())
case("duplicate_name", raw, "FormatError", f"at byte {second} (model)", 'duplicate child name "w"')

base = doc({"model": {}})
case("trailing_garbage", base + b"junk", "FormatError", f"at byte {len(base)} (<root>)",
     f"4 bytes of trailing data after the document (it ends at byte {len(base)})")

raw = b"\xdf\xff\xff\xff\xff" + pk.pack("$format") + pk.pack("ckpt-msgpack")
case("huge_count", raw, "FormatError", "at byte 0 (<root>)",
     f"map declares 4294967295 entries but only {len(raw) - 5} bytes follow")

prefix = pk.pack_map_header(3) + pk.pack("$format") + pk.pack("ckpt-msgpack")
prefix += pk.pack("$version") + pk.pack(1)
levels = 1100
raw = prefix + b"\xa1g\x81" * (levels - 1) + b"\xa1g\x80"
# The root is depth 0; the map at depth 1025 is refused where it starts, once its first key
# makes it a group (a tensor may sit in a group at depth 1024).
case("deep_nesting", raw, "LimitError", f"at byte {len(prefix) + 3 * 1024 + 2} ",
     "groups nest deeper than 1024 levels")

raw = doc({"model": {"w": {"$dtype": "f32", "$shape": "2x3", "$data": b""}}})
case("wrong_type", raw, "FormatError", at(raw, b"\xa32x3") + "(model/w/$shape)",
     "expected an array of dimensions, found str")

raw = doc({"model": {"a/b": {}}})
case("slash_name", raw, "FormatError", at(raw, b"\xa3a/b") + "(model)",
     "child name \"a/b\" holds '/'")

raw = msgpack.packb([1, 2, 3])
case("not_a_map", raw, "FormatError", "at byte 0 (<root>)", "expected the document map, found array")

raw = msgpack.packb({"$version": 1, "$format": "ckpt-msgpack"})
case("first_key_not_format", raw, "FormatError", "at byte 1 (<root>)",
     'expected the first key of the document to be "$format", found "$version"')

raw = msgpack.packb({"$format": "ckpt-msgpack"})
case("missing_version", raw, "FormatError", "at byte 0 (<root>)", "the document has no $version")

raw = doc({"$attrs": {"x": [1, "a"]}})
case("mixed_array", raw, "FormatError", at(raw, b"\x92\x01\xa1a", 2) + "($attrs/x[1])",
     "array element is str but the array holds int")

raw = doc({"$attrs": {"x": {"$type": "float64[]", "$value": [1]}}})
case("typed_mismatch", raw, "FormatError", at(raw, b"\x91\x01", 1) + "($attrs/x/$value[0])",
     "array element is int but the array holds float")

raw = doc({"$attrs": {"x": []}})
case("bare_empty_array", raw, "FormatError", at(raw, b"\xa1x\x90", 2) + "($attrs/x)",
     "an empty array has no element type")

raw = doc({"$attrs": {"x": 2**63}})
case("int_out_of_range", raw, "FormatError", at(raw, b"\xcf") + "($attrs/x)",
     "int 9223372036854775808 does not fit in int64")

raw = bytearray(doc({"$attrs": {"x": 1}}))
i = raw.index(b"\xa1x\x01") + 2
raw[i] = 0xC1
case("invalid_byte", raw, "FormatError", f"at byte {i} ($attrs/x)",
     "invalid MessagePack type byte 0xc1")

raw = doc({"model": {"$foo": {}}})
case("unknown_reserved_key", raw, "FormatError", at(raw, b"\xa4$foo") + "(model)",
     'unknown reserved key "$foo"')

raw = doc({"model": {"a": {}, "$dtype": "f32"}})
case("tensor_key_in_group", raw, "FormatError", at(raw, b"\xa6$dtype") + "(model)",
     'tensor key "$dtype" in a group')

raw = doc({"$attrs": {"x": None}})
case("nil_attribute", raw, "FormatError", at(raw, b"\xa1x\xc0", 2) + "($attrs/x)", "found nil")

raw = doc({"$attrs": {"x": msgpack.ExtType(1, b"ab")}})
case("ext_attribute", raw, "FormatError", at(raw, b"\xd5\x01ab") + "($attrs/x)", "found ext")

raw = doc({"model": {"n": {}}})
raw = raw.replace(b"\xa1n", b"\xa1\xff")
case("invalid_utf8_name", raw, "FormatError", at(raw, b"\xa1\xff") + "(model)",
     'child name "\\xff" is not valid UTF-8')

# A zero dimension must not hide the others: their product is what strides and element
# counts are computed from.
raw = doc({"model": {"w": tensor(dtype="u8", shape=(0, 2**62, 2**62), data=b"")}})
case("zero_dim_hides_overflow", raw, "LimitError", at(raw, b"\x93\x00") + "(model/w)",
     "tensor size overflows (its non-zero dimensions alone)")

# Names reach messages escaped: a file must not drive the terminal that shows its error.
raw = doc({"model": {"b\x1b[31m\u009b2J\xe9/x": {}}})
case("control_bytes_in_name", raw, "FormatError", at(raw, b"b\x1b[31m", -1) + "(model)",
     'child name "b\\x1b[31m\\xc2\\x9b2J\xe9/x" holds \'/\'')

case("empty_file", b"", "FormatError", "at byte 0 (<root>)", "the file is empty")

case("truncated_header", b"\xdf\x00", "FormatError", "at byte 0 (<root>)",
     "file truncated: the header of a map needs 5 bytes, 2 remain")

raw = msgpack.packb({"$format": "ckpt-msgpack", "$version": 2})
case("newer_version", raw, "UnsupportedError", at(raw, b"\xa8$version\x02", 9) + "($version)",
     "ckpt-msgpack version 2 is newer than this reader (1)")


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".msgpack"):
            os.remove(os.path.join(OUT, f))
    lines = []
    for name, raw, error, subs in cases:
        with open(os.path.join(OUT, name + ".msgpack"), "wb") as f:
            f.write(raw)
        assert all("\t" not in s and "\n" not in s for s in subs)
        lines.append("\t".join([name + ".msgpack", error] + subs))
    with open(os.path.join(OUT, "expected.tsv"), "w", encoding="utf-8") as f:
        f.write("# file\texception\tsubstrings of its message (written by make_corrupt.py)\n")
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
