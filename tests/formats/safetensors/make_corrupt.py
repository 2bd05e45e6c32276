#!/usr/bin/python3
"""Writes the golden corrupt files in corrupt/ and corrupt/expected.tsv.

Each file breaks one rule of the safetensors specification (or of ckpt's document entry, see
docs/formats/safetensors.md). expected.tsv lists, per file, the ckpt exception the reader must
throw and substrings its message must contain: the byte offset (located here in the bytes,
independently of the reader), the key and what was wrong. test_format_safetensors.cpp checks
every file against it, and that the message names the file. Run with /usr/bin/python3 after
changing a case; commit the outputs.

Where a message says "at byte N", N is the file offset just past the token the problem was
found in: past the closing quote of a tensor's key for what is wrong with the tensor as a
whole, past the offending value otherwise.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corrupt")

cases = []  # (name, bytes, exception, [substrings])


def case(name, raw, error, *substrings):
    cases.append((name, bytes(raw), error, list(substrings)))


def pad8(header):
    return header + b" " * ((8 - len(header) % 8) % 8)


def st(header, data=b"", pad=True, size=None):
    """A file: the 8-byte size (or `size`), the header text (padded), the data."""
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        header = pad8(header)
    return struct.pack("<Q", len(header) if size is None else size) + header + data


def t(dtype="F32", shape=(2,), begin=0, end=None):
    n = 4 if dtype == "F32" else 1
    for s in shape:
        n *= s
    return {"dtype": dtype, "shape": list(shape), "data_offsets": [begin, begin + n if end is None else end]}


def key_end(raw, key):
    """The file offset just past the closing quote of the JSON key `key`."""
    needle = b'"' + key.encode() + b'"'
    return raw.index(needle) + len(needle)


def at(n):
    return f"at byte {n} "


# ---- the size and the header text ---------------------------------------------------------------

case("short_file", b"\x05\x00\x00", "FormatError", "at byte 0:", "the file has 3 bytes, fewer than the 8")

raw = st({"w": t()}, bytes(8), size=1000)
case("header_size_past_eof", raw, "LimitError", "at byte 0:",
     f"the header size 1000 runs past the end of the file ({len(raw) - 8} bytes follow it)")

raw = st({"w": t()}, bytes(8), size=100_000_001)
case("header_size_over_cap", raw, "LimitError", "at byte 0:",
     "the header size 100000001 exceeds the cap of 100000000 bytes")

raw = st({"w": t()}, bytes(8), size=2 ** 64 - 1)
case("header_size_max_u64", raw, "LimitError", "at byte 0:", "the header size 18446744073709551615 exceeds the cap")

raw = st({"w": t()}, bytes(8))
case("truncated_header", raw[:20], "LimitError", "at byte 0:", "runs past the end of the file (12 bytes follow it)")

case("empty_header", st(b"", pad=False), "FormatError", "at byte 8:", "the header must start with '{', but it is empty")

raw = st(b'[{"w":1}]')
case("header_not_object", raw, "FormatError", "at byte 8:", "the header must start with '{', found '['")

raw = st(b' {"w":' + json.dumps(t()).encode() + b"}")
case("header_leading_space", raw, "FormatError", "at byte 8:", "must start with '{', found ' '")

good = json.dumps({"w": t()}, separators=(",", ":")).encode()
raw = st(good + b" {}", bytes(8))
case("garbage_after_header", raw, "FormatError", f"at byte {8 + len(good) + 1}:",
     "the header is not valid JSON", "expected end of input")

raw = st(good + b"\0\0\0\0\0\0", pad=False, data=bytes(8))
case("nul_padding", raw, "FormatError", f"at byte {8 + len(good)}:", "the header holds a NUL byte")

raw = st(b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}', pad=False, data=bytes(8))
case("unterminated_header", raw, "FormatError", "the header is not valid JSON", "unexpected end of input")

# ---- UTF-8 -----------------------------------------------------------------------------------------

body = b'{"w\xff":' + json.dumps(t()).encode() + b"}"
raw = st(body, bytes(8))
case("non_utf8_tensor_name", raw, "FormatError", "at byte %d:" % (8 + body.index(b"\xff")),
     "the header is not valid JSON", "ill-formed UTF-8 byte")

body = b'{"__metadata__":{"k":"v\xc0\xaf"},"w":' + json.dumps(t()).encode() + b"}"
raw = st(body, bytes(8))
case("overlong_utf8_metadata", raw, "FormatError", "at byte %d:" % (8 + body.index(b"\xc0")), "ill-formed UTF-8 byte")

body = b'{"__metadata__":{"k":"\\ud800"},"w":' + json.dumps(t()).encode() + b"}"
raw = st(body, bytes(8))
case("lone_surrogate_escape", raw, "FormatError", "the header is not valid JSON", "surrogate U+D800..U+DBFF")

# ---- keys ------------------------------------------------------------------------------------------

w = json.dumps(t()).encode()
body = b'{"w":' + w + b',"w":' + w + b"}"
raw = st(body, bytes(8))
first = key_end(raw, "w")
case("duplicate_tensor", raw, "FormatError", "at byte %d (header)" % (raw.index(b'"w"', first) + 3),
     f"duplicate key 'w' (first at byte {first})")

body = b'{"__metadata__":{"k":"1","k":"2"},"w":' + w + b"}"
raw = st(body, bytes(8))
case("duplicate_metadata_key", raw, "FormatError", "at byte %d (__metadata__)" % (raw.rindex(b'"k"') + 3),
     "duplicate __metadata__ key 'k'")

body = b'{"w":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
raw = st(body, bytes(8))
case("duplicate_field", raw, "FormatError", "at byte %d (tensor 'w')" % (raw.rindex(b'"dtype"') + 7),
     "duplicate key 'dtype'")

body = b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"offsets":[0,8]}}'
raw = st(body, bytes(8))
case("unknown_tensor_key", raw, "FormatError", f"at byte {key_end(raw, 'offsets')} (tensor 'w')",
     "unknown key 'offsets' (a tensor has dtype, shape and data_offsets)")

body = b'{"w":{"dtype":"F32","shape":[2]}}'
raw = st(body, bytes(8))
case("missing_data_offsets", raw, "FormatError", f"at byte {8 + body.rindex(b'}') } (tensor 'w')",
     "missing key 'data_offsets'")

raw = st({"__metadata__": {"epoch": 3}, "w": t()}, bytes(8))
case("metadata_value_not_string", raw, "FormatError",
     f"at byte {key_end(raw, 'epoch') + 2} (__metadata__['epoch'])",
     "expected a string (__metadata__ maps strings to strings), found a number")

raw = st({"w": [1, 2]}, bytes(8))
case("tensor_not_object", raw, "FormatError", f"at byte {key_end(raw, 'w') + 2} (tensor 'w')",
     "expected an object {dtype, shape, data_offsets}, found an array")

# ---- dtype, shape and offsets ----------------------------------------------------------------------

raw = st({"w": dict(t(), dtype="F33")}, bytes(8))
case("unknown_dtype", raw, "FormatError", f"at byte {key_end(raw, 'w')} (tensor 'w')", "unknown dtype 'F33'")

raw = st({"w": t("U8", (2,)), "f8": {"dtype": "F8_E8M0", "shape": [2], "data_offsets": [2, 4]}}, bytes(4))
case("foreign_dtype_f8", raw, "UnsupportedError", f"at byte {key_end(raw, 'f8')} (tensor 'f8')",
     "dtype F8_E8M0 is valid safetensors but has no ckpt equivalent")

raw = st({"w": dict(t(), shape=[2, -3])}, bytes(8))
case("negative_dimension", raw, "FormatError", f"at byte {raw.index(b'-3') + 2} (tensor 'w')",
     "shape has a negative dimension -3")

raw = st({"w": dict(t(), shape=[2.5])}, bytes(8))
case("fractional_dimension", raw, "FormatError", f"at byte {raw.index(b'2.5') + 3} (tensor 'w')",
     "shape dimension 2.5 is not a non-negative integer")

raw = st({"w": dict(t(), shape=[2 ** 62, 16], data_offsets=[0, 8])}, bytes(8))
case("size_overflow", raw, "LimitError", f"at byte {key_end(raw, 'w')} (tensor 'w')",
     "shape [4611686018427387904,16] F32 holds more than 2^62 bytes")

raw = st({"w": dict(t(), data_offsets=[0, 8, 16])}, bytes(8))
case("three_offsets", raw, "FormatError", f"at byte {raw.index(b',16]') + 3} (tensor 'w')",
     "data_offsets has more than two entries")

raw = st({"w": dict(t(), data_offsets=[8, 0])}, bytes(8))
case("offsets_backwards", raw, "FormatError", f"at byte {key_end(raw, 'w')} (tensor 'w')",
     "data_offsets [8, 0) end before they begin")

raw = st({"w": t("F32", (2, 3), 0, 20)}, bytes(20))
case("shape_offset_disagreement", raw, "FormatError", f"at byte {key_end(raw, 'w')} (tensor 'w')",
     "shape [2,3] F32 needs 24 bytes, data_offsets [0, 20) hold 20")

raw = st({"w": t("F32", (4,))}, bytes(8))
case("offsets_past_eof", raw, "LimitError", f"at byte {key_end(raw, 'w')} (tensor 'w')",
     f"data_offsets [0, 16) run past the end of the file (its data section holds 8 bytes, from byte {len(raw) - 8})")

raw = st({"a": t("F32", (4,), 0), "b": t("F32", (4,), 8)}, bytes(24))
case("overlapping_offsets", raw, "FormatError", f"at byte {key_end(raw, 'b')} (tensor 'b')",
     "data_offsets [8, 24) overlap tensor 'a' [0, 16)")

raw = st({"a": t("F32", (4,), 0), "b": t("F32", (4,), 20)}, bytes(36))
case("hole_between_tensors", raw, "FormatError", f"at byte {key_end(raw, 'b')} (tensor 'b')",
     "data bytes [16, 20) belong to no tensor")

raw = st({"a": t("F32", (4,), 4)}, bytes(20))
case("hole_at_start", raw, "FormatError", f"at byte {key_end(raw, 'a')} (tensor 'a')",
     "data bytes [0, 4) belong to no tensor")

raw = st({"a": t("F32", (2,), 0)}, bytes(12))
case("trailing_data", raw, "FormatError", f"at byte {len(raw) - 4}:",
     "the last 4 bytes of the file belong to no tensor (the last tensor, 'a', ends at data offset 8)")

raw = st({"__metadata__": {"format": "pt"}}, bytes(3))
case("data_without_tensors", raw, "FormatError", "the last 3 bytes of the file belong to no tensor (the header lists no tensor)")

# ---- names a ckpt document cannot hold ----------------------------------------------------------

raw = st({"a": t("U8", (1,), 0), "a/b": t("U8", (1,), 1)}, bytes(2))
case("tensor_and_group_share_a_name", raw, "UnsupportedError", f"at byte {key_end(raw, 'a/b')} (tensor 'a/b')",
     "'a' is the name of tensor 'a', so it cannot also be a group")

raw = st({"a//b": t("U8", (1,))}, bytes(1))
case("empty_path_segment", raw, "UnsupportedError", f"at byte {key_end(raw, 'a//b')} (tensor 'a//b')",
     "an empty name")

# ---- the document entry ----------------------------------------------------------------------------

def documented(doc_text, tensors, data):
    header = {"__metadata__": {"format": "pt", "ckpt.document": doc_text}}
    header.update(tensors)
    return st(header, data)


raw = documented("{not json", {"w": t()}, bytes(8))
case("document_not_json", raw, "FormatError", f"at byte {key_end(raw, 'ckpt.document')} (__metadata__['ckpt.document'])",
     "not valid JSON at character")

doc = {"format": "ckpt-safetensors", "version": 1, "root": {"attributes": [], "members": [{"tensor": "v"}]}}
raw = documented(json.dumps(doc), {"w": t()}, bytes(8))
case("document_names_missing_tensor", raw, "FormatError",
     f"at byte {key_end(raw, 'ckpt.document')} (__metadata__['ckpt.document']/root/members/0)",
     "the header has no tensor 'v'")

doc = {"format": "ckpt-safetensors", "version": 2, "root": {}}
raw = documented(json.dumps(doc), {"w": t()}, bytes(8))
case("document_newer_version", raw, "UnsupportedError", "(__metadata__['ckpt.document']/version)",
     "version 2 is newer than this reader (1)")

doc = {"format": "ckpt-safetensors", "version": 1,
       "root": {"members": [{"tensor": "w"}, {"group": "w", "members": []}]}}
raw = documented(json.dumps(doc), {"w": t()}, bytes(8))
case("document_duplicate_member", raw, "FormatError", "(__metadata__['ckpt.document']/root/members/1)",
     "a second member named 'w'")

doc = {"format": "ckpt-safetensors", "version": 1,
       "root": {"attributes": [["lr", "float64", "fast"]], "members": [{"tensor": "w"}]}}
raw = documented(json.dumps(doc), {"w": t()}, bytes(8))
case("document_bad_float", raw, "FormatError", "(__metadata__['ckpt.document']/root/attributes/0/2)",
     "expected a number, \"NaN\"")

doc_text = '{"format":"ckpt-safetensors","version":1,"version":1,"root":{}}'
raw = documented(doc_text, {"w": t()}, bytes(8))
case("document_duplicate_key", raw, "FormatError", "(__metadata__['ckpt.document'])", "duplicate key 'version'")

# Every other fault of the entry's layout, each naming its place as a JSON pointer into the entry
# (the reader parses the entry with the SDK's skeleton codec, in these words).
def document_case(name, root, error, place, says, top=None):
    doc = {"format": "ckpt-safetensors", "version": 1, "root": root}
    doc.update(top or {})
    text = root if isinstance(root, str) else json.dumps(doc)
    raw = documented(text, {"w": t()}, bytes(8))
    case(name, raw, error, f"at byte {key_end(raw, 'ckpt.document')} (__metadata__['ckpt.document']{place}): {says}")


document_case("document_unknown_top_key", {}, "FormatError", "", "unknown key 'extra'", {"extra": 1})
document_case("document_wrong_format", {}, "FormatError", "/format", 'expected "ckpt-safetensors"', {"format": "other"})
document_case("document_version_zero", {}, "FormatError", "/version", "expected a positive integer", {"version": 0})
document_case("document_root_not_object", [], "FormatError", "/root", "expected an object")
document_case("document_root_named", {"group": "r"}, "FormatError", "/root",
              "unknown key 'group' (a group has attributes and members)")
document_case("document_unknown_group_key", {"members": [{"group": "g", "extra": 1}]}, "FormatError", "/root/members/0",
              "unknown key 'extra' (a group has group, attributes and members)")
document_case("document_members_not_array", {"members": {}}, "FormatError", "/root/members", "expected an array")
document_case("document_member_not_object", {"members": [5]}, "FormatError", "/root/members/0",
              'a member is an object {"tensor": name} or a group')
document_case("document_tensor_extra_key", {"members": [{"tensor": "w", "x": 1}]}, "FormatError", "/root/members/0",
              'a tensor member has only the key "tensor"')
document_case("document_tensor_name_not_string", {"members": [{"tensor": 5}]}, "FormatError", "/root/members/0/tensor",
              "expected a string")
document_case("document_member_without_name", {"members": [{"members": []}]}, "FormatError", "/root/members/0",
              'a member is an object {"tensor": name} or has "group": name')
document_case("document_name_with_slash", {"members": [{"tensor": "w"}, {"group": "a/b"}]}, "FormatError",
              "/root/members/1", "the name 'a/b' holds '/' (ckpt names do not)")
document_case("document_attribute_not_triple", {"attributes": [["a", "int64"]]}, "FormatError", "/root/attributes/0",
              "an attribute is [name, type, value]")
document_case("document_unknown_type", {"attributes": [["a", "int8", 1]]}, "FormatError", "/root/attributes/0/1",
              "unknown type 'int8'")
document_case("document_duplicate_attribute", {"attributes": [["a", "int64", 1], ["a", "int64", 2]]}, "FormatError",
              "/root/attributes/1", "a second attribute named 'a'")
document_case("document_int_out_of_range", {"attributes": [["a", "int64", 9223372036854775808]]}, "FormatError",
              "/root/attributes/0/2", "integer out of the range of int64")
document_case("document_bad_array_element", {"attributes": [["a", "bool[]", [True, 1]]]}, "FormatError",
              "/root/attributes/0/2/1", "expected true or false")
document_case("document_value_not_array", {"attributes": [["a", "string[]", "x"]]}, "FormatError", "/root/attributes/0/2",
              "a string[] value is an array")
# As text: Python's json nests no deeper than its recursion limit.
document_case("document_groups_too_deep",
              '{"format":"ckpt-safetensors","version":1,"root":{"members":[' + '{"group":"g","members":[' * 1001 +
              "]}" * 1001 + "]}}",
              "LimitError", "/root" + "/members/0" * 1001, "groups nested deeper than 1000")
document_case("document_text_too_deep",
              '{"format":"ckpt-safetensors","version":1,"root":{"attributes":[["a","int64[]",' + "[" * 2100 + "]" * 2100 + "]]}}",
              "LimitError", "", "nested deeper than 1000 groups")


# ckpt.integrity, a plain file's record of hashes (docs/formats/safetensors.md): refused unless
# exactly as ckpt writes it, and bounded before it is parsed.
where_integrity = "(__metadata__['ckpt.integrity'])"
good_integrity = {"algorithm": "xxh3_64", "digests": "AAAAAAAAAAA", "manifest": "0123456789abcdef",
                  "manifest_encoding": "ckpt-manifest-2"}
for tag, value, says in [
    ("deep", "[" * 4000, "larger or deeper than a record of 1 tensors' hashes"),
    ("long", json.dumps(dict(good_integrity, digests="A" * 20000), separators=(",", ":")),
     "larger or deeper than a record of 1 tensors' hashes"),
    ("duplicate_key", '{"algorithm":"xxh3_64","algorithm":"xxh3_64","digests":"AAAAAAAAAAA","manifest":"0123456789abcdef"}',
     "as ckpt writes it"),
    ("spaced", json.dumps(good_integrity), "as ckpt writes it"),
    ("short_digests", json.dumps(dict(good_integrity, digests="AAAA"), separators=(",", ":")),
     "'digests' must be base64 of 8 bytes for each of the 1 tensors"),
]:
    raw = st({"__metadata__": {"format": "pt", "ckpt.integrity": value}, "w": t()}, bytes(8))
    case("integrity_" + tag, raw, "FormatError", where_integrity, says)
raw = st({"__metadata__": {"ckpt.integrity": json.dumps(good_integrity, separators=(",", ":"))},
          "meta/w": t()}, bytes(8))
case("integrity_beside_meta_tensor", raw, "FormatError", where_integrity, "whose tensors hold meta")


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    with open(os.path.join(OUT, "expected.tsv"), "w", encoding="utf-8") as tsv:
        tsv.write("# file\texception\tsubstrings of its message (written by make_corrupt.py)\n")
        for name, raw, error, subs in cases:
            fn = name + ".safetensors"
            with open(os.path.join(OUT, fn), "wb") as f:
                f.write(raw)
            tsv.write("\t".join([fn, error] + subs) + "\n")
    print(f"wrote {len(cases)} files to {OUT}")


if __name__ == "__main__":
    main()
