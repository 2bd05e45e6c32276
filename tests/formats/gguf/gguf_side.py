"""An independent GGUF reader and writer, written from ggml's docs/gguf.md, and NumPy
dequantizers of ggml's block formats written from ggml-common.h's layouts: what the tests
hold ckpt's gguf plugin against. Only the standard library and NumPy.

  gguf_side.py make FILE [VERSION]      write a file with every value type and tensor type
  gguf_side.py dump FILE                print the file as JSON (independent reader)
  gguf_side.py dequant GGUF SAFETENSORS check every quantized tensor of GGUF, dequantized here,
                                        against the f32 tensor of the same name in SAFETENSORS
  gguf_side.py llama DIR                write DIR/model.pt, a small Llama-style state dict (f16)
  gguf_side.py craft FILE SPEC           write the file SPEC (a JSON file) describes: {"kvs": [[key,
                                        type, value]], "tensors": [[name, ggml type, dims innermost
                                        first, data (a list of f32 or a hex string), offset (optional:
                                        packed in order when absent)]], "version": 3, "align": 32}; an
                                        array value is [element type, items]
  gguf_side.py llama_check DIR PT SAFETENSORS [BOUND]
                                        every tensor of PT equal (BOUND: within the q8_0 bound)
                                        to the llama.cpp-named tensor of SAFETENSORS
  gguf_side.py llama_gguf PT GGUF       GGUF as llama.cpp's converter makes it of PT: attn_q and
                                        attn_k permuted for its rotary layout (NumPy, below), the
                                        other tensors as they are, the hyper-parameter keys
"""
import json
import struct
import sys

import numpy as np

ALIGN = 32
VT = dict(u8=0, i8=1, u16=2, i16=3, u32=4, i32=5, f32=6, bool=7, string=8, array=9, u64=10, i64=11, f64=12)
FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<B", 10: "<Q", 11: "<q", 12: "<d"}
# ggml type -> (name, block elements, block bytes)
GGML = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
        7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110),
        12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 24: ("I8", 1, 1),
        25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 30: ("BF16", 1, 2)}
PLAIN = {0: "<f4", 1: "<f2", 24: "i1", 25: "<i2", 26: "<i4", 27: "<i8", 28: "<f8"}


# ---- reading ------------------------------------------------------------------------------

class Reader:
    def __init__(self, data):
        self.b, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.p)[0]
        self.p += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.b[self.p:self.p + n]
        assert len(s) == n
        self.p += n
        return s.decode("utf-8", "surrogateescape")

    def value(self, t):
        if t == VT["string"]:
            return self.string()
        if t == VT["array"]:
            et, n = self.take("<I"), self.take("<Q")
            return {"array_of": et, "items": [self.value(et) for _ in range(n)]}
        v = self.take(FMT[t])
        if t == VT["bool"]:
            assert v in (0, 1)
            return bool(v)
        return v


def read(path):
    data = open(path, "rb").read()
    r = Reader(data)
    assert data[:4] == b"GGUF"
    r.p = 4
    version, nt, nkv = r.take("<I"), r.take("<Q"), r.take("<Q")
    kv = {}
    for _ in range(nkv):
        k = r.string()
        t = r.take("<I")
        kv[k] = {"type": t, "value": r.value(t)}
    align = kv.get("general.alignment", {"value": ALIGN})["value"]
    tensors = []
    for _ in range(nt):
        name = r.string()
        nd = r.take("<I")
        dims = [r.take("<Q") for _ in range(nd)]
        t, off = r.take("<I"), r.take("<Q")
        tensors.append({"name": name, "dims": dims, "type": t, "offset": off})
    start = (r.p + align - 1) // align * align
    for t in tensors:
        _, be, bb = GGML[t["type"]]
        n = int(np.prod(t["dims"], dtype=np.int64)) if t["dims"] else 1
        t["nbytes"] = n // be * bb
        t["raw"] = data[start + t["offset"]:start + t["offset"] + t["nbytes"]]
        assert len(t["raw"]) == t["nbytes"], t["name"]
        assert t["offset"] % align == 0
    return {"version": version, "kv": kv, "tensors": tensors, "data_start": start, "size": len(data)}


def array(t):
    """A plain tensor as NumPy, in PyTorch's order (GGUF's dims reversed)."""
    return np.frombuffer(t["raw"], dtype=PLAIN[t["type"]]).reshape(list(reversed(t["dims"])))


# ---- writing ------------------------------------------------------------------------------

def enc_value(t, v):
    if t == VT["string"]:
        b = v.encode("utf-8") if isinstance(v, str) else v
        return struct.pack("<Q", len(b)) + b
    if t == VT["array"]:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(enc_value(et, x) for x in items)
    return struct.pack(FMT[t], v)


def write(path, kvs, tensors, version=3, align=ALIGN):
    """kvs: [(key, type, value)]; tensors: [(name, ggml type, dims innermost first, bytes)]"""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += enc_value(VT["string"], k) + struct.pack("<I", t) + enc_value(t, v)
    off, data = 0, b""
    for name, t, dims, raw in tensors:
        out += enc_value(VT["string"], name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", t, off)
        pad = (-len(raw)) % align
        data += raw + b"\0" * pad
        off += len(raw) + pad
    out += b"\0" * ((-len(out)) % align)
    open(path, "wb").write(out + data)


def craft(path, spec_path):
    """A file exactly as a JSON spec says (hostile ones too: offsets, key types, names as given)."""
    spec = json.load(open(spec_path))
    version, align = spec.get("version", 3), spec.get("align", ALIGN)
    kvs, tensors = spec.get("kvs", []), spec.get("tensors", [])
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += enc_value(VT["string"], k) + struct.pack("<I", t) + enc_value(t, v)
    data, off = bytearray(), 0
    for tensor in tensors:
        name, t, dims, raw = tensor[:4]
        raw = struct.pack("<%df" % len(raw), *raw) if isinstance(raw, list) else bytes.fromhex(raw)
        at = tensor[4] if len(tensor) > 4 else off
        out += enc_value(VT["string"], name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", t, at)
        if len(data) < at + len(raw):
            data += b"\0" * (at + len(raw) - len(data))
        data[at:at + len(raw)] = raw
        off = max(off, (at + len(raw) + align - 1) // align * align)
    data += b"\0" * ((-len(data)) % align)
    out += b"\0" * ((-len(out)) % align)
    open(path, "wb").write(out + bytes(data))


def random_blocks(gtype, nblocks, rng):
    """Random blocks whose f16 scales are finite and moderate: every other byte is random."""
    _, be, bb = GGML[gtype]
    raw = bytearray(rng.integers(0, 256, size=nblocks * bb, dtype=np.uint8).tobytes())
    def half_at(block, at, lo, hi):
        h = np.float16(rng.uniform(lo, hi)).tobytes()
        raw[block * bb + at:block * bb + at + 2] = h
    for i in range(nblocks):
        if gtype in (2, 6, 8):          # d
            half_at(i, 0, -0.1, 0.1)
        elif gtype in (3, 7):           # d, m
            half_at(i, 0, 0.001, 0.1); half_at(i, 2, -1, 1)
        elif gtype == 10:               # Q2_K: d, dmin at 80, 82
            half_at(i, 80, 0.001, 0.1); half_at(i, 82, 0.001, 0.1)
        elif gtype == 11:               # Q3_K: d at 108
            half_at(i, 108, 0.001, 0.1)
        elif gtype in (12, 13):         # Q4_K, Q5_K: d, dmin
            half_at(i, 0, 0.001, 0.1); half_at(i, 2, 0.001, 0.1)
        elif gtype == 14:               # Q6_K: d at 208
            half_at(i, 208, 0.001, 0.1)
    return bytes(raw)


def make(path, version=3, big_mib=0):
    rng = np.random.default_rng(7)
    kvs = [
        ("general.architecture", VT["string"], "llama"),
        ("general.name", VT["string"], "ckpt gguf test \u00e4"),
        ("general.alignment", VT["u32"], 32),
        ("general.quantization_version", VT["u32"], 2),
        ("test.u8", VT["u8"], 255), ("test.i8", VT["i8"], -128), ("test.u16", VT["u16"], 65535),
        ("test.i16", VT["i16"], -32768), ("test.u32", VT["u32"], 4294967295), ("test.i32", VT["i32"], -2147483648),
        ("test.f32", VT["f32"], 0.1), ("test.bool", VT["bool"], 1), ("test.string", VT["string"], "nul\0inside"),
        ("test.u64", VT["u64"], 2**64 - 1), ("test.u64_small", VT["u64"], 7), ("test.i64", VT["i64"], -2**63),
        ("test.f64", VT["f64"], 1e300),
        ("test.array_u8", VT["array"], (VT["u8"], [0, 1, 255])),
        ("test.array_f32", VT["array"], (VT["f32"], [0.5, -2.0])),
        ("test.array_bool", VT["array"], (VT["bool"], [1, 0])),
        ("test.array_u64", VT["array"], (VT["u64"], [1, 2**64 - 1])),
        ("test.array_empty_i32", VT["array"], (VT["i32"], [])),
        ("test.array_of_arrays", VT["array"], (VT["array"], [(VT["i32"], [1, 2]), (VT["i32"], [3])])),
        ("test.array_of_string_arrays", VT["array"], (VT["array"], [(VT["string"], ["a", "\"q\""]), (VT["string"], [])])),
        ("tokenizer.ggml.tokens", VT["array"], (VT["string"], ["<s>", "</s>", "\u2581the", ""])),
        ("tokenizer.ggml.scores", VT["array"], (VT["f32"], [0.0, -1.5, -2.25, 0.0])),
        ("tokenizer.ggml.token_type", VT["array"], (VT["i32"], [3, 3, 1, 1])),
    ]
    if version != 3:
        kvs.append(("test.version", VT["u32"], version))
    tensors = []
    # The asymmetric one: PyTorch shape (2, 3, 5), so GGUF dims (5, 3, 2); value = 100a + 10b + c.
    a = np.array([[[100 * i + 10 * j + k for k in range(5)] for j in range(3)] for i in range(2)], dtype="<f4")
    tensors.append(("asym", 0, [5, 3, 2], a.tobytes()))
    for gtype, dt in [(1, "<f2"), (28, "<f8"), (24, "i1"), (25, "<i2"), (26, "<i4"), (27, "<i8")]:
        x = (rng.standard_normal((4, 3)) * 50).astype(dt)
        tensors.append(("plain." + GGML[gtype][0].lower(), gtype, [3, 4], x.tobytes()))
    bf = (rng.standard_normal((2, 4)).astype("<f4").view("<u4") >> 16).astype("<u2")
    tensors.append(("plain.bf16", 30, [4, 2], bf.tobytes()))
    tensors.append(("scalar", 0, [], np.array(3.5, dtype="<f4").tobytes()))
    for gtype in (2, 3, 6, 7, 8, 10, 11, 12, 13, 14):
        _, be, bb = GGML[gtype]
        rows = 3
        tensors.append(("q." + GGML[gtype][0].lower(), gtype, [2 * be, rows], random_blocks(gtype, 2 * rows, rng)))
    if big_mib:
        # Past the writer's staging: a Q8_0 matrix (scales set per block, vectorised) first and a
        # plain one after, then the small ones, so a streamed write holds both kinds.
        rows = big_mib * (1 << 20) // 2 // (34 * 128)
        q = rng.integers(0, 256, size=(rows * 128, 34), dtype=np.uint8)
        q[:, 0:2] = rng.uniform(-0.1, 0.1, size=rows * 128).astype("<f2").view(np.uint8).reshape(-1, 2)
        f = rng.standard_normal((big_mib * (1 << 20) // 2 // 4 // 1024, 1024)).astype("<f4")
        tensors = [("big.q8_0", 8, [4096, rows], q.tobytes()), ("big.f32", 0, [1024, f.shape[0]], f.tobytes())] + tensors
    write(path, kvs, tensors, version)


def dump(path):
    f = read(path)
    def plain(v):
        if isinstance(v, dict):
            return {"array_of": v["array_of"], "items": [plain(x) for x in v["items"]]}
        return v
    out = {"version": f["version"], "data_start": f["data_start"], "size": f["size"],
           "kv": {k: {"type": v["type"], "value": plain(v["value"])} for k, v in f["kv"].items()}, "tensors": []}
    for t in f["tensors"]:
        e = {"name": t["name"], "dims": t["dims"], "type": t["type"], "offset": t["offset"], "nbytes": t["nbytes"]}
        if t["type"] in PLAIN:
            e["values"] = [float(x) for x in array(t).astype(np.float64).ravel()[:64]]
        out["tensors"].append(e)
    print(json.dumps(out, default=str))


# ---- dequantization (ggml-common.h's layouts, ggml's float order) -----------------------------

f32 = np.float32


def halfs(b, at):
    return np.frombuffer(b[:, at:at + 2].tobytes(), dtype="<f2").astype(f32)


def dq_q4_0(b):
    d = halfs(b, 0)[:, None]
    qs = b[:, 2:18]
    q = np.concatenate([(qs & 15).astype(np.int32) - 8, (qs >> 4).astype(np.int32) - 8], axis=1)
    return q.astype(f32) * d


def dq_q4_1(b):
    d, m = halfs(b, 0)[:, None], halfs(b, 2)[:, None]
    qs = b[:, 4:20]
    q = np.concatenate([qs & 15, qs >> 4], axis=1)
    return q.astype(f32) * d + m


def dq_q5(b, with_min):
    d = halfs(b, 0)[:, None]
    m = halfs(b, 2)[:, None] if with_min else None
    o = 4 if with_min else 2
    qh = np.frombuffer(b[:, o:o + 4].tobytes(), dtype="<u4").astype(np.int64)[:, None]
    qs = b[:, o + 4:o + 20].astype(np.int64)
    j = np.arange(16)[None, :]
    x0 = (qs & 15) | (((qh >> j) << 4) & 0x10)
    x1 = (qs >> 4) | ((qh >> (j + 12)) & 0x10)
    q = np.concatenate([x0, x1], axis=1)
    return q.astype(f32) * d + m if with_min else (q - 16).astype(f32) * d


def dq_q8_0(b):
    return b[:, 2:34].view(np.int8).astype(f32) * halfs(b, 0)[:, None]


def dq_q2_k(b):
    d, dmin = halfs(b, 80), halfs(b, 82)
    out = np.zeros((b.shape[0], 256), dtype=f32)
    for i in range(b.shape[0]):
        scales, q = b[i, 0:16], b[i, 16:80]
        y, is_ = [], 0
        for n in range(2):
            qq = q[32 * n:32 * n + 32]
            for shift in (0, 2, 4, 6):
                for h in (0, 16):
                    sc = int(scales[is_]); is_ += 1
                    dl, ml = f32(d[i] * f32(sc & 15)), f32(dmin[i] * f32(sc >> 4))
                    y.append(dl * ((qq[h:h + 16] >> shift) & 3).astype(f32) - ml)
        out[i] = np.concatenate(y)
    return out


def dq_q3_k(b):
    d = halfs(b, 108)
    out = np.zeros((b.shape[0], 256), dtype=f32)
    for i in range(b.shape[0]):
        hm, q, packed = b[i, 0:32], b[i, 32:96], b[i, 96:108]
        sc = []
        for k in range(16):
            low = packed[k] & 15 if k < 8 else packed[k - 8] >> 4
            high = (packed[8 + k % 4] >> (2 * (k // 4))) & 3
            sc.append(int(low | (high << 4)))
        y, is_, m = [], 0, 1
        for n in range(2):
            qq = q[32 * n:32 * n + 32]
            for shift in (0, 2, 4, 6):
                for h in (0, 16):
                    dl = f32(d[i] * f32(sc[is_] - 32)); is_ += 1
                    v = ((qq[h:h + 16] >> shift) & 3).astype(np.int32) - np.where(hm[h:h + 16] & m, 0, 4)
                    y.append(dl * v.astype(f32))
                m <<= 1
        out[i] = np.concatenate(y)
    return out


def scale_min_k4(j, q):
    if j < 4:
        return int(q[j] & 63), int(q[j + 4] & 63)
    return int((q[j + 4] & 15) | ((q[j - 4] >> 6) << 4)), int((q[j + 4] >> 4) | ((q[j] >> 6) << 4))


def dq_q45_k(b, five):
    d, dmin = halfs(b, 0), halfs(b, 2)
    out = np.zeros((b.shape[0], 256), dtype=f32)
    for i in range(b.shape[0]):
        scales, qh = b[i, 4:16], b[i, 16:48]
        ql = b[i, 48:176] if five else b[i, 16:144]
        y, u1, u2 = [], 1, 2
        for n, is_ in zip(range(4), range(0, 8, 2)):
            sc, m = scale_min_k4(is_, scales)
            d1, m1 = f32(d[i] * f32(sc)), f32(dmin[i] * f32(m))
            sc, m = scale_min_k4(is_ + 1, scales)
            d2, m2 = f32(d[i] * f32(sc)), f32(dmin[i] * f32(m))
            qq = ql[32 * n:32 * n + 32].astype(np.int32)
            lo, hi = qq & 15, qq >> 4
            if five:
                lo = lo + np.where(qh & u1, 16, 0)
                hi = hi + np.where(qh & u2, 16, 0)
                u1 <<= 2; u2 <<= 2
            y.append(d1 * lo.astype(f32) - m1)
            y.append(d2 * hi.astype(f32) - m2)
        out[i] = np.concatenate(y)
    return out


def dq_q6_k(b):
    d = halfs(b, 208)
    out = np.zeros((b.shape[0], 256), dtype=f32)
    for i in range(b.shape[0]):
        ql, qh, sc = b[i, 0:128].astype(np.int32), b[i, 128:192].astype(np.int32), b[i, 192:208].view(np.int8)
        y = np.zeros(256, dtype=f32)
        for n in range(2):
            l = np.arange(32)
            L, H, S = ql[64 * n:64 * n + 64], qh[32 * n:32 * n + 32], sc[8 * n:8 * n + 8]
            is_ = l // 16
            q1 = ((L[l] & 15) | (((H[l] >> 0) & 3) << 4)) - 32
            q2 = ((L[l + 32] & 15) | (((H[l] >> 2) & 3) << 4)) - 32
            q3 = ((L[l] >> 4) | (((H[l] >> 4) & 3) << 4)) - 32
            q4 = ((L[l + 32] >> 4) | (((H[l] >> 6) & 3) << 4)) - 32
            for k, q in enumerate((q1, q2, q3, q4)):
                s = S[is_ + 2 * k].astype(f32)
                y[128 * n + 32 * k + l] = (f32(d[i]) * s) * q.astype(f32)
        out[i] = y
    return out


DEQUANT = {2: dq_q4_0, 3: dq_q4_1, 6: lambda b: dq_q5(b, False), 7: lambda b: dq_q5(b, True), 8: dq_q8_0,
           10: dq_q2_k, 11: dq_q3_k, 12: lambda b: dq_q45_k(b, False), 13: lambda b: dq_q45_k(b, True), 14: dq_q6_k}


def dequantize(t):
    _, be, bb = GGML[t["type"]]
    blocks = np.frombuffer(t["raw"], dtype=np.uint8).reshape(-1, bb)
    return DEQUANT[t["type"]](blocks).reshape(list(reversed(t["dims"])))


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack_from("<Q", data, 0)[0]
    header = json.loads(data[8:8 + n])
    dt = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "BF16": "<u2", "I8": "i1", "I16": "<i2", "I32": "<i4", "I64": "<i8"}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(data[8 + n + b:8 + n + e], dtype=dt[v["dtype"]]).reshape(v["shape"])
    return out


def check_dequant(gguf_path, st_path):
    f, st = read(gguf_path), read_safetensors(st_path)
    checked = 0
    for t in f["tensors"]:
        if t["type"] not in DEQUANT:
            continue
        want = dequantize(t)
        got = st[t["name"]]
        assert got.shape == want.shape, (t["name"], got.shape, want.shape)
        if not np.array_equal(got.view("<u4"), want.astype("<f4").view("<u4")):
            bad = np.argwhere(got != want)[:3]
            print(f"{t['name']}: differs at {bad.tolist()}: ckpt {got[tuple(bad[0])]} reference {want[tuple(bad[0])]}")
            sys.exit(1)
        checked += 1
    print(f"dequantized {checked} tensors bit for bit")


# ---- a Llama-style model ------------------------------------------------------------------

def llama(dir_):
    import torch
    torch.manual_seed(0)
    hidden, inter, vocab, layers = 64, 128, 96, 2
    sd = {"model.embed_tokens.weight": torch.randn(vocab, hidden)}
    for i in range(layers):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = torch.rand(hidden) + 0.5
        # Grouped-query attention: 4 heads of 16, 2 of them for k and v.
        sd[p + "self_attn.q_proj.weight"] = torch.randn(hidden, hidden) * 0.05
        for n in "kv":
            sd[p + f"self_attn.{n}_proj.weight"] = torch.randn(hidden // 2, hidden) * 0.05
        sd[p + "self_attn.o_proj.weight"] = torch.randn(hidden, hidden) * 0.05
        sd[p + "post_attention_layernorm.weight"] = torch.rand(hidden) + 0.5
        sd[p + "mlp.gate_proj.weight"] = torch.randn(inter, hidden) * 0.05
        sd[p + "mlp.up_proj.weight"] = torch.randn(inter, hidden) * 0.05
        sd[p + "mlp.down_proj.weight"] = torch.randn(hidden, inter) * 0.05
    sd["model.norm.weight"] = torch.rand(hidden) + 0.5
    sd["lm_head.weight"] = torch.randn(vocab, hidden) * 0.05
    torch.save({k: v.half() for k, v in sd.items()}, f"{dir_}/model.pt")


LLAMA = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
         "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
         "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}


def gguf_name(hf):
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".")
    return f"blk.{parts[2]}.{LLAMA['.'.join(parts[3:-1])]}.{parts[-1]}"


def llama_check(dir_, pt, st_path, bound=None):
    import torch
    sd = torch.load(pt)
    st = read_safetensors(st_path)
    assert len(st) == len(sd), (sorted(st), sorted(sd))
    worst = 0.0
    for k, v in sd.items():
        want = v.float().numpy() if bound else v.numpy()
        got = st[gguf_name(k)]
        assert got.shape == want.shape, (k, got.shape, want.shape)
        if bound is None or v.dim() < 2:
            assert got.dtype == want.dtype or bound, (k, got.dtype, want.dtype)
            assert np.array_equal(got.astype(np.float32), want.astype(np.float32)), k
            continue
        # q8_0: d = amax/127 rounded to f16, each value rounded to d's nearest multiple.
        blocks = want.reshape(-1, 32)
        amax = np.abs(blocks).max(axis=1, keepdims=True)
        allowed = amax / 127 * (0.5 + 127 * 2.0 ** -11) + 1e-7
        err = np.abs(got.reshape(-1, 32) - blocks)
        assert (err <= allowed).all(), (k, float(err.max()))
        worst = max(worst, float(err.max()))
    print(f"{len(sd)} tensors checked; worst q8_0 error {worst:.3g}")


def permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py's LlamaModel.permute, in NumPy."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama_gguf(pt, gguf_path):
    import torch
    sd = torch.load(pt)
    f = read(gguf_path)
    kv = {k: (v["type"], v["value"]) for k, v in f["kv"].items()}
    want = {"general.architecture": (VT["string"], b"llama"), "llama.block_count": (VT["u32"], 2),
            "llama.context_length": (VT["u32"], 256), "llama.embedding_length": (VT["u32"], 64),
            "llama.feed_forward_length": (VT["u32"], 128), "llama.attention.head_count": (VT["u32"], 4),
            "llama.attention.head_count_kv": (VT["u32"], 2), "llama.rope.dimension_count": (VT["u32"], 16),
            "llama.vocab_size": (VT["u32"], 96)}
    for k, v in want.items():
        got = kv[k] if not isinstance(kv[k][1], str) else (kv[k][0], kv[k][1].encode())
        assert got == v, (k, kv.get(k), v)
    assert kv["llama.attention.layer_norm_rms_epsilon"] == (VT["f32"], float(np.float32(1e-5))), kv["llama.attention.layer_norm_rms_epsilon"]
    tensors = {t["name"]: t for t in f["tensors"]}
    assert len(tensors) == len(sd)
    permuted = 0
    for k, v in sd.items():
        t = tensors[gguf_name(k)]
        got = array(t)
        w = v.numpy()
        if k.endswith("q_proj.weight"):
            w, permuted = permute(w, 4, 4), permuted + 1
        elif k.endswith("k_proj.weight"):
            w, permuted = permute(w, 4, 2), permuted + 1
        assert got.shape == w.shape and np.array_equal(got, w), k
    print(f"{len(sd)} tensors checked, {permuted} permuted")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "make":
        make(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 3, int(sys.argv[4]) if len(sys.argv) > 4 else 0)
    elif cmd == "dump":
        dump(sys.argv[2])
    elif cmd == "dequant":
        check_dequant(sys.argv[2], sys.argv[3])
    elif cmd == "llama":
        llama(sys.argv[2])
    elif cmd == "craft":
        craft(sys.argv[2], sys.argv[3])
    elif cmd == "llama_gguf":
        llama_gguf(sys.argv[2], sys.argv[3])
    elif cmd == "llama_check":
        llama_check(sys.argv[2], sys.argv[3], sys.argv[4], len(sys.argv) > 5)
    else:
        sys.exit(f"unknown command {cmd}")
