#!/usr/bin/python3
"""An independent safetensors reader and writer for test_format_safetensors.cpp, written from the
published specification with nothing but json, struct and numpy (Debian has no python3
safetensors package). Run it with /usr/bin/python3.

  check_python.py check FILE EXPECTED   parses FILE strictly per the specification and compares
                                        every tensor, bit for bit, and the metadata with
                                        EXPECTED.json and EXPECTED.bin, which the C++ test wrote
                                        from its own memory, not through the plugin.
  check_python.py write FILE EXPECTED   writes FILE the way the reference implementation does
                                        (tensors sorted by dtype alignment, then name; header
                                        JSON compact, padded with spaces to a multiple of 8),
                                        and EXPECTED.json / EXPECTED.bin for the test.

EXPECTED.json: {"tensors": [{"name", "dtype", "shape", "offset", "nbytes"}, ...] (offsets into
EXPECTED.bin), "metadata": {key: value} | null (the plain __metadata__ entries, the document
entry aside), "document": null | {"attributes": [[group path, name, type, value], ...]} (float64
values as "0x" + 16 hex digits of their bits), "alignment": the data start's alignment}.
Exits nonzero, saying why, on the first broken rule or difference.
"""
import json
import math
import struct
import sys

import numpy as np

MAX_HEADER = 100_000_000
ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
            "U8": 1, "BOOL": 1}
# bf16 has no numpy dtype: its raw bits are read as uint16.
NUMPY = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4",
         "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}
DOCUMENT_KEY = "ckpt.document"


class Broken(Exception):
    pass


def need(ok, what):
    if not ok:
        raise Broken(what)


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    need(len(keys) == len(set(keys)), f"duplicate keys in a JSON object: {keys}")
    return dict(pairs)


def parse(path):
    """(metadata or None, [(name, dtype, shape, bytes)] in header order, header size N)."""
    raw = open(path, "rb").read()
    need(len(raw) >= 8, f"{len(raw)} bytes: no room for the header size")
    (n,) = struct.unpack("<Q", raw[:8])
    need(n <= MAX_HEADER, f"header size {n} over the 100 MB cap")
    need(8 + n <= len(raw), f"header size {n} runs past the end of the file")
    text = raw[8:8 + n].decode("utf-8")  # strict: invalid UTF-8 raises
    need(text.startswith("{"), "the header does not start with '{'")
    header, end = json.JSONDecoder(object_pairs_hook=no_duplicates).raw_decode(text)
    need(isinstance(header, dict), "the header is not a JSON object")
    need(set(text[end:]) <= {" "}, f"the header is padded with {set(text[end:])!r}, not spaces")
    metadata = header.pop("__metadata__", None)
    if metadata is not None:
        need(isinstance(metadata, dict) and all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in metadata.items()),
             "__metadata__ is not a map of strings to strings")
    data = raw[8 + n:]
    tensors = []
    for name, info in header.items():
        need(isinstance(info, dict) and set(info) == {"dtype", "shape", "data_offsets"},
             f"{name}: keys {sorted(info) if isinstance(info, dict) else info!r}")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        need(dtype in ITEMSIZE, f"{name}: dtype {dtype!r}")
        need(isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape),
             f"{name}: shape {shape!r}")
        need(isinstance(offsets, list) and len(offsets) == 2
             and all(isinstance(o, int) and o >= 0 for o in offsets), f"{name}: data_offsets {offsets!r}")
        begin, end_ = offsets
        need(end_ - begin == math.prod(shape) * ITEMSIZE[dtype],
             f"{name}: shape {shape} {dtype} does not fit data_offsets {offsets}")
        tensors.append((name, dtype, shape, begin, end_))
    covered = 0
    for name, _, _, begin, end_ in sorted(tensors, key=lambda t: (t[3], t[4])):
        need(begin == covered, f"{name}: data_offsets start at {begin}, the data so far ends at {covered}")
        covered = end_
    need(covered == len(data), f"the tensors cover {covered} bytes of {len(data)} bytes of data")
    return metadata, [(t[0], t[1], t[2], data[t[3]:t[4]]) for t in tensors], n


def float_bits(value):
    """A float64 of the document entry as "0x" + its 16 hex bits."""
    if isinstance(value, str):
        if value == "NaN":
            bits = 0x7FF8000000000000
        elif value in ("Infinity", "-Infinity"):
            bits = struct.unpack("<Q", struct.pack("<d", float(value.replace("inity", ""))))[0]
        else:
            need(value.startswith("NaN:0x") and len(value) == 22, f"float token {value!r}")
            bits = int(value[6:], 16)
    else:
        bits = struct.unpack("<Q", struct.pack("<d", float(value)))[0]
    return "0x%016x" % bits


def document_attributes(doc, tensor_names):
    """[[group path, name, type, value]] of the document entry; checks its members too."""
    need(doc.get("format") == "ckpt-safetensors" and doc.get("version") == 1,
         f"document entry format/version {doc.get('format')!r} {doc.get('version')!r}")
    out, referenced = [], []

    def walk(group, path):
        for name, type_, value in group.get("attributes", []):
            if type_ == "float64":
                value = float_bits(value)
            elif type_ == "float64[]":
                value = [float_bits(v) for v in value]
            out.append([path, name, type_, value])
        for member in group.get("members", []):
            if "tensor" in member:
                referenced.append(path + "/" + member["tensor"] if path else member["tensor"])
            else:
                walk(member, path + "/" + member["group"] if path else member["group"])

    walk(doc["root"], "")
    need(sorted(referenced) == sorted(tensor_names),
         f"the document entry lists tensors {sorted(referenced)}, the header {sorted(tensor_names)}")
    return out


def check(path, expected_stem):
    expected = json.load(open(expected_stem + ".json", encoding="utf-8"))
    blob = open(expected_stem + ".bin", "rb").read()
    metadata, tensors, n = parse(path)
    need((8 + n) % expected["alignment"] == 0,
         f"the data starts at byte {8 + n}, not a multiple of {expected['alignment']}")
    got = {name: (dtype, shape, data) for name, dtype, shape, data in tensors}
    want_names = [t["name"] for t in expected["tensors"]]
    need(sorted(got) == sorted(want_names), f"tensors {sorted(got)}, expected {sorted(want_names)}")
    for t in expected["tensors"]:
        dtype, shape, data = got[t["name"]]
        need(dtype == t["dtype"] and shape == t["shape"],
             f"{t['name']}: {dtype} {shape}, expected {t['dtype']} {t['shape']}")
        want = blob[t["offset"]:t["offset"] + t["nbytes"]]
        need(data == want, f"{t['name']}: bytes differ from what the test wrote")
        # numpy interprets the bytes on its own terms (bf16 as raw bits).
        array = np.frombuffer(data, dtype=NUMPY[dtype]).reshape(shape)
        need(array.tobytes() == want, f"{t['name']}: numpy's view differs")
    plain = dict(metadata or {})
    document = plain.pop(DOCUMENT_KEY, None)
    need(plain == (expected["metadata"] or {}), f"__metadata__ {plain!r}, expected {expected['metadata']!r}")
    if expected.get("document") is None:
        need(document is None, "a document entry where none was expected")
    else:
        need(document is not None, "no document entry")
        attrs = document_attributes(json.loads(document, object_pairs_hook=no_duplicates), list(got))
        need(attrs == expected["document"]["attributes"],
             "document attributes differ:\n  got      %r\n  expected %r" % (attrs, expected["document"]["attributes"]))
    print(f"ok: {len(tensors)} tensors, header {n} bytes")


def write(path, expected_stem):
    rng = np.random.default_rng(7)

    def bits(dtype, shape, kind):
        n = math.prod(shape)
        return rng.integers(0, 2 ** (8 * ITEMSIZE[dtype]), size=n, dtype=np.uint64).astype(kind).tobytes()

    tensors = {
        "embed.weight": ("F32", [4, 3], bits("F32", [4, 3], "<u4")),
        "layers.0.attn.q_proj.weight": ("F16", [3, 5], bits("F16", [3, 5], "<u2")),
        "layers.0.mlp.bias": ("BF16", [7], bits("BF16", [7], "<u2")),
        "lm_head.weight": ("F64", [2, 2], np.array([0.5, -0.0, np.inf, 1e-310], "<f8").tobytes()),
        "step": ("I64", [], np.array([-(2 ** 63)], "<i8").tobytes()),
        "mask": ("BOOL", [5], np.array([1, 0, 0, 1, 1], "u1").tobytes()),
        "tokens": ("I32", [0, 3], b""),
        "positions": ("I16", [3], np.array([-32768, 0, 32767], "<i2").tobytes()),
        "quantized": ("I8", [4], np.array([-128, -1, 0, 127], "i1").tobytes()),
        "pixels": ("U8", [3], bytes([0, 128, 255])),
        "encoder/block.0/weight": ("F32", [2], np.array([1.5, -2.25], "<f4").tobytes()),
        "encoder/block.0/bias": ("F32", [2], np.array([0.0, 3.0], "<f4").tobytes()),
    }
    # The reference implementation's order: descending dtype alignment, then name.
    rank = ["BOOL", "U8", "I8", "I16", "F16", "BF16", "I32", "F32", "F64", "I64"]
    order = sorted(tensors, key=lambda k: (-rank.index(tensors[k][0]), k))
    metadata = {"format": "pt", "note": "written by check_python.py", "unicode": "Gewicht_\u00e4 \u6743\u91cd"}
    header, data, offset = {"__metadata__": metadata}, b"", 0
    for name in order:
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)

    listed, blob = [], b""
    for name in order:
        dtype, shape, raw = tensors[name]
        listed.append({"name": name, "dtype": dtype, "shape": shape, "offset": len(blob), "nbytes": len(raw)})
        blob += raw
    with open(expected_stem + ".json", "w", encoding="utf-8") as f:
        json.dump({"tensors": listed, "metadata": metadata, "document": None, "alignment": 8}, f,
                  ensure_ascii=False)
    with open(expected_stem + ".bin", "wb") as f:
        f.write(blob)
    print(f"wrote {path}: {len(order)} tensors")


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("check", "write"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        (check if sys.argv[1] == "check" else write)(sys.argv[2], sys.argv[3])
    except (Broken, UnicodeDecodeError, json.JSONDecodeError) as e:
        print(f"{sys.argv[2]}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
