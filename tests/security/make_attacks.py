"""Hand-made hostile files for tests/security, written at test time with the tools an attacker
would use (Python's zipfile, pickle, h5py, onnx, torch) and the real `ckpt` for the files ckpt
itself writes and signs. Run with Debian's /usr/bin/python3:

  make_attacks.py CKPT OUT MARKER

writes OUT/<attack files> and OUT/attacks.json, one entry per attack:

  name        the attack, class/what
  class       signature | differential | confinement | resources | target
  file        the input, relative to OUT
  format      the format to read it as (absent: detected)
  read        reader options (-r KEY=VALUE), for the attacks that need one
  expect      "refused" (inspect and convert exit 2 naming the problem, verify exits 1) or
              "accepted" (all three exit 0: a large but honest input, read within bounds)
  says        a substring of the refusal
  signed      for signature attacks: the public key; FILE.sig was made by `ckpt sign` before
              the file was changed, so `ckpt verify --pubkey` must fail
  unsigned    for signature attacks: what the file's reading alone gives ("refused" or
              "accepted": some changes are only visible to the signature)
  when        "data": refused only once tensor data is read (verify, convert); inspect, which
              reads none, lists the file
  stored      tensor bytes the file really holds (the memory bound is twice this + 64 MiB)
  other       what the other reader of the format (torch, h5py, python json) makes of the
              same bytes, found here by running it: the differential ckpt must not have
  cwd         run ckpt from OUT/<cwd> instead of OUT

Nothing here is ever loaded by ckpt's tests in Python with code execution enabled: the
pickles that call os.system would create MARKER if anything ran them.
"""
import base64
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib

import h5py
import numpy as np

CKPT, OUT, MARKER = sys.argv[1], sys.argv[2], sys.argv[3]
shutil.rmtree(OUT, ignore_errors=True)
if os.path.exists(MARKER):
    os.remove(MARKER)
os.makedirs(OUT)
attacks = []


def path(name):
    return os.path.join(OUT, name)


def add(name, cls, file, expect, says="", **kw):
    a = {"name": name, "class": cls, "file": file, "expect": expect, "says": says}
    a.update(kw)
    attacks.append(a)


def ckpt(*args):
    r = subprocess.run([CKPT, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("ckpt %s failed: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r.stdout


def run_python(code):
    """Runs `code` in a fresh interpreter (so torch's own unpickling, which may run code, never
    shares a process with us) and returns what it printed, or its error."""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return (r.stdout.strip() or r.stderr.strip().splitlines()[-1]) if (r.stdout or r.stderr) else "(nothing)"


# ---- bases: files ckpt writes, from a torch state dict -------------------------------------------

import torch  # noqa: E402

torch.manual_seed(0)
state = {"fc1.weight": torch.randn(4, 3), "fc1.bias": torch.randn(4), "fc2.weight": torch.randn(2, 4)}
torch.save(state, path("base_torch.pt"))
ckpt("keygen", path("key"))
PUB = path("key.pub")
for ext in ["pt", "onnx", "safetensors", "h5", "json", "msgpack"]:
    ckpt("convert", path("base_torch.pt"), path("base." + ext))

# A ckpt checkpoint with meta/integrity and every group, from the trainer's schema.
ckpt_json = {
    "$format": "ckpt-json", "$version": 1,
    "meta": {"$attrs": {"schema": "ckpt.checkpoint", "schema_version": 1}},
    "model": {"state": {"w": {"$dtype": "f32", "$shape": [2],
                              "$data": base64.b64encode(struct.pack("<2f", 1.0, 2.0)).decode()}}},
    "trainer": {"$attrs": {"epoch": 3}},
}


def signed_copy(src, name):
    """A copy of `src` signed by ckpt; returns its file name."""
    shutil.copy(path(src), path(name))
    ckpt("sign", path(name), "--key", path("key"))
    return name


def replace_zip_entry(src, dst, entry, data, extra=None):
    """Rewrites a zip as Python's zipfile would: same entries, `entry` replaced."""
    with zipfile.ZipFile(path(src)) as zin, zipfile.ZipFile(path(dst + ".tmp"), "w") as zout:
        for i in zin.infolist():
            zout.writestr(i, data if i.filename.endswith(entry) else zin.read(i.filename))
        for name, d in (extra or {}).items():
            zout.writestr(name, d)
    os.replace(path(dst + ".tmp"), path(dst))


def archive_prefix(file):
    with zipfile.ZipFile(path(file)) as z:
        return z.namelist()[0].split("/")[0] + "/"


# ---- 1. signatures and hashes cover what consumers read -------------------------------------------

EVIL = ("cposix\nsystem\n(V touch %s\ntR." % MARKER).encode()  # os.system("touch MARKER"), protocol 0

name = signed_copy("base.pt", "sig_pt_data_pkl_runs_code.pt")
replace_zip_entry(name, name, "data.pkl", EVIL)
add("signature/pt data.pkl replaced by a pickle calling os.system", "signature", name, "refused",
    "refused", signed=PUB, unsigned="refused")

# weights_only-acceptable, pointing at a storage entry that was not there: torch loads other weights.
pre = archive_prefix("base.pt")
buf = io.BytesIO()
torch.save({"fc1.weight": torch.full((4, 3), 1337.0)}, buf)
with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
    other_pkl = z.read([n for n in z.namelist() if n.endswith("data.pkl")][0])
    other_data = z.read([n for n in z.namelist() if "/data/" in n][0])
name = signed_copy("base.pt", "sig_pt_other_weights.pt")
with zipfile.ZipFile(path("base.pt")) as z:
    entries = [(i.filename, z.read(i.filename)) for i in z.infolist()]
other_pkl = other_pkl.replace(b"X\x01\x00\x00\x000", b"X\x02\x00\x00\x0099", 1)  # storage '0' -> '99'
with zipfile.ZipFile(path(name), "w") as z:
    for n, d in entries:
        z.writestr(n, other_pkl if n.endswith("data.pkl") else d)
    z.writestr(pre + "data/99", other_data)
seen = run_python("import torch; print(torch.load(%r)['fc1.weight'][0,0].item())" % path(name))
add("signature/pt data.pkl replaced by weights_only pickle of other storages", "signature", name, "refused",
    "disagree", signed=PUB, unsigned="refused", other={"tool": "torch.load", "sees": seen})

name = signed_copy("base.pt", "sig_pt_extra_entry.pt")
replace_zip_entry(name, name, "__none__", b"", extra={pre + "extra.txt": b"unsigned payload"})
add("signature/pt with an extra zip entry", "signature", name, "refused", "which ckpt's writer never makes",
    signed=PUB, unsigned="refused")

name = signed_copy("base.pt", "sig_pt_appended.pt")
open(path(name), "ab").write(b"appended")
add("signature/pt with bytes appended", "signature", name, "refused", "appended", signed=PUB, unsigned="refused")

name = signed_copy("base.h5", "sig_h5_appended.h5")
open(path(name), "ab").write(b"appended")
add("signature/h5 with bytes appended", "signature", name, "accepted", signed=PUB, unsigned="accepted")

for tag, what, edit, reading in [
    ("attribute", "an added attribute", lambda f: f.attrs.__setitem__("injected", "x"), "refused"),
    ("string", "an added string dataset", lambda f: f.create_dataset("note", data="payload"), "refused"),
    ("softlink", "an added soft link", lambda f: f.__setitem__("alias", h5py.SoftLink("/fc1.weight")), "refused"),
]:
    name = signed_copy("base.h5", "sig_h5_%s.h5" % tag)
    with h5py.File(path(name), "a") as f:
        edit(f)
    # base.h5 was converted by ckpt, which records the hashes and manifest of every file it
    # writes: each addition shows in ckpt's reading (the attribute as itself, the string dataset
    # as a value of its group with meta's record of it, the link in meta's records of links)
    # against the recorded manifest: verify reports it, convert
    # refuses to carry it on, and the signature covers it too.
    add("signature/h5 with " + what, "signature", name, "accepted", signed=PUB, unsigned=reading,
        **({"when": "data"} if reading == "refused" else {}))

import onnx  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402


def onnx_edit(what, edit):
    name = signed_copy("base.onnx", "sig_onnx_%s.onnx" % what.replace(" ", "_"))
    m = onnx.load(path(name))
    edit(m)
    onnx.save(m, path(name))
    add("signature/onnx with " + what, "signature", name, "refused", "", signed=PUB, unsigned="refused")


onnx_edit("an added node", lambda m: m.graph.node.append(helper.make_node("Relu", ["x"], ["y"], name="injected")))
onnx_edit("an added output", lambda m: m.graph.output.append(
    helper.make_tensor_value_info("fc1.weight", onnx.TensorProto.FLOAT, [4, 3])))
onnx_edit("producer_name changed", lambda m: setattr(m, "producer_name", "trusted-exporter"))
onnx_edit("doc_string changed", lambda m: setattr(m, "doc_string", "reviewed and approved"))
onnx_edit("metadata_props added", lambda m: m.metadata_props.append(onnx.StringStringEntryProto(key="k", value="v")))


def safetensors_edit(name, edit):
    raw = open(path(name), "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    edit(header)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    open(path(name), "wb").write(struct.pack("<Q", len(text)) + text.encode() + raw[8 + n:])


# A plain file as Hugging Face's writer makes it (a file ckpt converts records its hashes in a
# document entry, so an added entry there is refused: the next attack).
plain = json.dumps({"__metadata__": {"format": "pt"}, "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
                   separators=(",", ":"))
plain += " " * ((8 - len(plain) % 8) % 8)
open(path("plain.safetensors"), "wb").write(struct.pack("<Q", len(plain)) + plain.encode() + struct.pack("<2f", 1, 2))
name = signed_copy("plain.safetensors", "sig_st_metadata_added.safetensors")
safetensors_edit(name, lambda h: h.setdefault("__metadata__", {}).__setitem__("license", "changed"))
add("signature/safetensors with a __metadata__ entry added", "signature", name, "accepted",
    signed=PUB, unsigned="accepted")
# A plain file has no document entry: the added entry is simply one more attribute of meta in
# ckpt's reading, which only the signature can tell from the real one.

open(path("ckpt_checkpoint.json"), "w").write(json.dumps(ckpt_json))
ckpt("convert", path("ckpt_checkpoint.json"), path("ckpt_checkpoint.safetensors"))
name = signed_copy("ckpt_checkpoint.safetensors", "sig_st_doc_metadata_added.safetensors")
safetensors_edit(name, lambda h: h["__metadata__"].__setitem__("license", "changed"))
add("signature/safetensors (ckpt document) with a __metadata__ entry added", "signature", name, "refused",
    "not a copy", signed=PUB, unsigned="refused")

name = signed_copy("base.json", "sig_json_reformatted.json")
doc = json.load(open(path(name)))
json.dump(doc, open(path(name), "w"), indent=4)
add("signature/json reformatted (same document, other bytes)", "signature", name, "accepted",
    signed=PUB, unsigned="accepted")

# ---- 2. parser differentials ------------------------------------------------------------------------

def torch_zip(entries, name, comment=b""):
    with zipfile.ZipFile(path(name), "w") as z:
        for n, d in entries:
            z.writestr(n, d)
        z.comment = comment


def torch_entries(values):
    b = io.BytesIO()
    torch.save({"w": torch.tensor(values)}, b)
    with zipfile.ZipFile(io.BytesIO(b.getvalue())) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


import warnings  # noqa: E402

warnings.simplefilter("ignore")  # zipfile warns about the duplicate names we write on purpose
first, second = torch_entries([0.0]), torch_entries([1337.0])
data0 = [d for n, d in second if "/data/" in n][0]
storage0 = [n for n, _ in first if "/data/" in n][0]
torch_zip(first + [(storage0, data0)], "zip_duplicate_storage.pt")
seen = run_python("import torch; print(torch.load(%r)['w'].item())" % path("zip_duplicate_storage.pt"))
add("differential/zip with two entries of one storage's name", "differential", "zip_duplicate_storage.pt",
    "refused", "second entry named", other={"tool": "torch.load", "sees": seen})

pkl_name = [n for n, _ in first if n.endswith("data.pkl")][0]
torch_zip(first + [(pkl_name, EVIL)], "zip_duplicate_data_pkl.pt")
add("differential/zip with a second data.pkl that runs code", "differential", "zip_duplicate_data_pkl.pt",
    "refused", "second entry named")

torch_zip(first + [("elsewhere/data.pkl", EVIL)], "zip_entry_outside_folder.pt")
add("differential/zip entry outside the archive folder", "differential", "zip_entry_outside_folder.pt",
    "refused", "outside the archive folder")

raw = open(path("base_torch.pt"), "rb").read()
open(path("zip_prefixed.pt"), "wb").write(b"\x89HDF\r\n\x1a\n" + b"\0" * 504 + raw)
add("differential/zip with data before its first entry", "differential", "zip_prefixed.pt", "refused", "",
    format="pytorch")

# The local header names another file than the central directory does.
raw = bytearray(open(path("base_torch.pt"), "rb").read())
n = struct.unpack("<H", raw[26:28])[0]
name0 = raw[30:30 + n]
raw[30 + n - 1] ^= 0x20
open(path("zip_local_name_differs.pt"), "wb").write(bytes(raw))
add("differential/zip local header and central directory disagree", "differential", "zip_local_name_differs.pt",
    "refused", "local header", format="pytorch")

# Two entries whose data is the same bytes (a zip bomb's trick, and two readings of one span).
entries = torch_entries([2.0, 3.0])
torch_zip(entries, "zip_overlap_src.pt")
raw = bytearray(open(path("zip_overlap_src.pt"), "rb").read())
with zipfile.ZipFile(path("zip_overlap_src.pt")) as z:
    infos = z.infolist()
cd = struct.unpack("<I", raw[-6:-2])[0]
# Point the second central entry at the first entry's local header.
p = cd
for i, info in enumerate(infos):
    nl, xl, cl = struct.unpack("<HHH", raw[p + 28:p + 34])
    if i == 1:
        raw[p + 42:p + 46] = struct.pack("<I", infos[0].header_offset)
    p += 46 + nl + xl + cl
open(path("zip_overlap.pt"), "wb").write(bytes(raw))
add("differential/zip entries sharing bytes", "differential", "zip_overlap.pt", "refused", "")

good = json.dumps(ckpt_json).encode()
open(path("json_nul_then_text.json"), "wb").write(good + b"\0" + b'{"model": "other"}')
seen = run_python("import json; json.load(open(%r))" % path("json_nul_then_text.json"))
add("differential/json with a NUL and text after the document", "differential", "json_nul_then_text.json",
    "refused", "NUL", other={"tool": "python json", "sees": seen})

open(path("json_nul_in_document.json"), "wb").write(good[:-1] + b"\0}")
add("differential/json with a NUL inside the document", "differential", "json_nul_in_document.json",
    "refused", "NUL")

# Dict keys Python finds equal: 1, 1.0 and True are one key, the last value wins.
obj = {"w": np.arange(3, dtype=np.float32)}
p2 = pickle.dumps(obj, protocol=2)
equal_keys = b"\x80\x02}q\x00(K\x01X\x01\x00\x00\x00aq\x01\x88X\x01\x00\x00\x00bq\x02G?\xf0\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00cq\x03u."
open(path("pickle_equal_keys.pkl"), "wb").write(equal_keys)
seen = run_python("import pickle; print(pickle.load(open(%r,'rb')))" % path("pickle_equal_keys.pkl"))
add("differential/pickle dict keys 1, True and 1.0 (one key to Python)", "differential", "pickle_equal_keys.pkl",
    "accepted", other={"tool": "pickle.load", "sees": seen}, shows='@1 = "c"')

open(path("pickle_two_stops.pkl"), "wb").write(p2 + pickle.dumps({"w": 1}, protocol=2))
add("differential/pickle with a second pickle after STOP", "differential", "pickle_two_stops.pkl", "refused",
    "after the pickle's STOP")

m = onnx.load(path("base.onnx"))
m.metadata_props.append(onnx.StringStringEntryProto(key="k", value="first"))
m.metadata_props.append(onnx.StringStringEntryProto(key="k", value="second"))
onnx.save(m, path("onnx_duplicate_metadata.onnx"))
add("differential/onnx metadata key twice", "differential", "onnx_duplicate_metadata.onnx", "refused", "twice",
    read=["layout=onnx"])

# Found by an adversarial review: torch's own ways of reading the same bytes otherwise.
own_doc = {"$format": "ckpt-json", "$version": 1,
           "a": {"$dtype": "f32", "$shape": [2], "$data": base64.b64encode(struct.pack("<2f", 1.0, 2.0)).decode()},
           "b": {"$dtype": "f32", "$shape": [2], "$data": base64.b64encode(struct.pack("<2f", 1337.0, -1337.0)).decode()}}
json.dump(own_doc, open(path("own_ab.json"), "w"))
ckpt("convert", path("own_ab.json"), path("own_ab.pt"))
u8 = lambda t: b"X" + struct.pack("<I", len(t)) + t.encode()
with zipfile.ZipFile(path("own_ab.pt")) as z:
    own_entries = [(i.filename, z.read(i.filename)) for i in z.infolist()]
own_pkl = [d for n, d in own_entries if n.endswith("data.pkl")][0]


def own_variant(name, pkl=None, extra=()):
    with zipfile.ZipFile(path(name), "w") as z:
        for n, d in own_entries:
            z.writestr(n, pkl if (pkl is not None and n.endswith("data.pkl")) else d)
        for n, d in extra:
            z.writestr(n, d)


# BUILD after tensor 'a': torch runs Tensor.__setstate__ -> set_(storage '1'): a reads b's bytes.
state = (b"((" + u8("storage") + b"ctorch\nFloatStorage\n" + u8("1") + u8("cpu") + b"K\x02tQ" +
         b"K\x00(K\x02t(K\x01tt" + b"b")
at = own_pkl.index(u8("b"))
own_variant("own_build_on_tensor.pt", own_pkl[:at] + state + own_pkl[at:])
seen = run_python("import torch; print(torch.load(%r)['a'].tolist())" % path("own_build_on_tensor.pt"))
add("differential/.pt ckpt wrote, a BUILD on a tensor in data.pkl", "differential", "own_build_on_tensor.pt",
    "refused", "BUILD on a tensor", other={"tool": "torch.load", "sees": seen})

# A second data.pkl whose name differs only in case: miniz looks names up ignoring case.
pre_own = own_entries[0][0].split("/")[0] + "/"
own_variant("own_case_twin.pt", extra=[(pre_own + "DATA.PKL", own_pkl.replace(u8("a"), u8("z"), 1))])
add("differential/.pt with DATA.PKL beside data.pkl (torch's zip reader ignores case)", "differential",
    "own_case_twin.pt", "refused", "ignoring case")

# INT 010: 8 to CPython's C unpickler (strtol base 0), 10 to a decimal reader.
octal = b"\x80\x02}(" + u8("n") + b"I010\nu."
open(path("pickle_int_octal.pkl"), "wb").write(octal)
seen = run_python("import pickle; print(pickle.load(open(%r,'rb')))" % path("pickle_int_octal.pkl"))
add("differential/pickle INT 010 (octal to CPython)", "differential", "pickle_int_octal.pkl", "refused",
    "plain decimal", other={"tool": "pickle.load", "sees": seen})


def rebuild(key, cls, numel, size):
    return (b"ctorch._utils\n_rebuild_tensor_v2\n((" + u8("storage") + b"ctorch\n" + cls + b"\n" + u8(key) + u8("cpu") +
            b"J" + struct.pack("<i", numel) + b"tQK\x00(J" + struct.pack("<i", size) +
            b"t(K\x01t\x89ccollections\nOrderedDict\n)RtR")


def plain_pt(name, pkl, data, byteorder="little"):
    with zipfile.ZipFile(path(name), "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", byteorder)
        z.writestr("archive/data/0", data)
        z.writestr("archive/version", "3\n")


plain_pt("pt_key_two_dtypes.pt", b"\x80\x02}(" + u8("a") + rebuild("0", b"FloatStorage", 4, 4) + u8("b") +
         rebuild("0", b"HalfStorage", 8, 4) + b"u.", struct.pack("<4f", 1, 2, 3, 4))
seen = run_python("import torch; print(torch.load(%r)['b'].dtype)" % path("pt_key_two_dtypes.pt"))
add("differential/.pt storage key used as float32 and as float16", "differential", "pt_key_two_dtypes.pt", "refused",
    "two types or sizes", other={"tool": "torch.load", "sees": seen})
plain_pt("pt_byteorder_big.pt", b"\x80\x02}(" + u8("w") + rebuild("0", b"FloatStorage", 4, 4) + b"u.",
         struct.pack("<4f", 1, 2, 3, 4), byteorder="big")
seen = run_python("import torch; print(torch.load(%r)['w'].tolist())" % path("pt_byteorder_big.pt"))
add("differential/.pt with byteorder 'big' (torch 1.13 ignores it, 2.1 swaps)", "differential", "pt_byteorder_big.pt",
    "refused", "byteorder", other={"tool": "torch.load", "sees": seen})

# Found by a fidelity review: data.pkl can make torch read a tensor otherwise than its stored
# bytes, and the archive can make torch.load read the file otherwise than as a torch.save file.
import re  # noqa: E402


def with_metadata(pkl, md):
    """data.pkl with `md` (pickled) as the 7th argument of its first _rebuild_tensor_v2 call, as
    torch >= 2.0 writes a tensor whose neg or conj bit is set (Debian's torch 1.13 cannot)."""
    out, n = re.subn(rb"(\)R(?:q.|r....)?)t", lambda m: m.group(1) + md + b"t", pkl, count=1, flags=re.S)
    assert n == 1, "no _rebuild_tensor_v2 call found"
    return out


def pkl_variant(src, dst, edit, extra=()):
    """A copy of the zip `src` with its data.pkl edited and `extra` entries added."""
    pre = archive_prefix(src)
    with zipfile.ZipFile(path(src)) as zin, zipfile.ZipFile(path(dst + ".tmp"), "w") as zout:
        for i in zin.infolist():
            d = zin.read(i.filename)
            zout.writestr(i.filename, edit(d) if i.filename.endswith("data.pkl") else d)
        for n, d in extra:
            zout.writestr(pre + n, d)
    os.replace(path(dst + ".tmp"), path(dst))
    return dst


md_neg, md_conj, md_unknown = (b"}" + u8(k) + b"\x88s" for k in ("neg", "conj", "bogus"))
for tag, md, expect, says in [("neg", md_neg, "refused", "{'neg': True}: torch.load sets"),
                              ("conj", md_conj, "refused", "{'conj': True}"),
                              ("unknown_key", md_unknown, "refused", "a key other than 'neg' and 'conj'"),
                              ("none", b"N", "accepted", "")]:
    name = pkl_variant("base_torch.pt", "pt_metadata_%s.pt" % tag, lambda d: with_metadata(d, md))
    seen = run_python("import torch; print(torch.load(%r)['fc1.weight'][0].tolist())" % path(name))
    add("differential/.pt torch wrote, tensor metadata %s (torch >= 2.0 sets the bit)" % tag, "differential", name,
        expect, says, other={"tool": "torch.load " + torch.__version__, "sees": seen})
# Files ckpt wrote: base.pt follows its torch file's layout (meta/@torch_layout), own_ab.pt
# ckpt's own; data.pkl is checked against ckpt/document.json a different way in each.
for tag, md in [("neg", md_neg), ("none", b"N")]:
    name = pkl_variant(signed_copy("base.pt", "sig_pt_metadata_%s.pt" % tag), "sig_pt_metadata_%s.pt" % tag,
                       lambda d: with_metadata(d, md))
    add("signature/.pt ckpt wrote, tensor metadata %s added to data.pkl" % tag, "signature", name, "refused",
        signed=PUB, unsigned="refused")
for src, tag, md, says in [("base.pt", "neg", md_neg, "{'neg': True}: torch.load sets"),
                           ("base.pt", "none", b"N", "a tensor with torch's metadata (None or {})"),
                           ("own_ab.pt", "neg", md_neg, "found torch's metadata {'neg': True}"),
                           ("own_ab.pt", "none", b"N", "found torch's metadata (None or {})")]:
    name = pkl_variant(src, "%s_metadata_%s.pt" % (src[:-3], tag), lambda d: with_metadata(d, md))
    add("differential/.pt ckpt wrote (%s), tensor metadata %s added to data.pkl" % (src, tag), "differential", name,
        "refused", says)

cpu, meta, cuda = u8("cpu"), u8("meta"), u8("cuda:0")
name = pkl_variant("base_torch.pt", "pt_location_meta.pt", lambda d: d.replace(cpu, meta))
seen = run_python("import torch; print(torch.load(%r)['fc1.weight'].device)" % path(name))
add("differential/.pt torch wrote, storages on 'meta' (no data to torch)", "differential", name, "refused",
    "which holds no data", other={"tool": "torch.load", "sees": seen})
# torch.load(map_location='cpu') reads a CUDA storage's bytes, as ckpt does: not refused.
name = pkl_variant("base_torch.pt", "pt_location_cuda.pt", lambda d: d.replace(cpu, cuda))
add("differential/.pt torch wrote, storages on 'cuda:0'", "differential", name, "accepted")
for tag, new in [("meta", meta), ("cuda", cuda)]:
    name = pkl_variant(signed_copy("base.pt", "sig_pt_location_%s.pt" % tag), "sig_pt_location_%s.pt" % tag,
                       lambda d: d.replace(cpu, new))
    add("signature/.pt ckpt wrote, storages moved to '%s'" % new[5:].decode(), "signature", name, "refused",
        signed=PUB, unsigned="refused")
for src, tag, new, says in [("base.pt", "meta", meta, "which holds no data"),
                            ("base.pt", "cuda", cuda, "a storage on 'cuda:0', which ckpt's writer never makes"),
                            ("own_ab.pt", "cuda", cuda, "expected a storage on 'cpu', found one on 'cuda:0'")]:
    name = pkl_variant(src, "%s_location_%s.pt" % (src[:-3], tag), lambda d: d.replace(cpu, new))
    add("differential/.pt ckpt wrote (%s), storages moved to '%s'" % (src, new[5:].decode()), "differential", name,
        "refused", says)
name = pkl_variant(signed_copy("base.pt", "sig_pt_constants.pt"), "sig_pt_constants.pt", lambda d: d,
                   extra=[("constants.pkl", b"\x80\x02).")])
seen = run_python("import torch; torch.load(%r); print('loaded')" % path(name))
add("signature/.pt ckpt wrote, constants.pkl added (torch.load hands it to torch.jit.load)", "signature", name,
    "refused", signed=PUB, unsigned="refused", other={"tool": "torch.load", "sees": seen})
for src in ["base.pt", "own_ab.pt"]:
    name = pkl_variant(src, "%s_constants.pt" % src[:-3], lambda d: d, extra=[("constants.pkl", b"\x80\x02).")])
    add("differential/.pt ckpt wrote (%s), constants.pkl added" % src, "differential", name, "refused",
        "constants.pkl', which ckpt's writer never makes")

nan = struct.pack(">d", float("nan"))
open(path("pickle_nan_key_shared.pkl"), "wb").write(b"\x80\x02}(G" + nan + b"q\x00K\x01h\x00K\x02u.")
seen = run_python("import pickle; print(pickle.load(open(%r,'rb')))" % path("pickle_nan_key_shared.pkl"))
add("differential/pickle dict with one NaN object as key twice (one key to Python)", "differential",
    "pickle_nan_key_shared.pkl", "accepted", shows="@nan = 2", other={"tool": "pickle.load", "sees": seen})
open(path("pickle_set_duplicates.pkl"), "wb").write(
    b"\x80\x04}X\x01\x00\x00\x00s\x8f(K\x01K\x01\x88G?\xf0\x00\x00\x00\x00\x00\x00\x90s.")
seen = run_python("import pickle; print(pickle.load(open(%r,'rb')))" % path("pickle_set_duplicates.pkl"))
add("differential/pickle set {1, 1, True, 1.0} (one member to Python)", "differential", "pickle_set_duplicates.pkl",
    "accepted", shows="@s = [1]", other={"tool": "pickle.load", "sees": seen})

for name, text, says in [("json_int_below_int64.json", b'{"$format":"ckpt-json","$version":1,"$attrs":{"n":-9223372036854775809}}', "64-bit range"),
                         ("json_inexact_in_float_array.json", b'{"$format":"ckpt-json","$version":1,"$attrs":{"n":[1.0,9007199254740993]}}', "not exactly")]:
    open(path(name), "wb").write(text)
    seen = run_python("import json; print(json.load(open(%r)))" % path(name))
    add("differential/json " + name[5:-5].replace("_", " "), "differential", name, "refused", says,
        other={"tool": "python json", "sees": seen})

m = helper.make_model(helper.make_graph([], "g", [], []))
t = onnx.TensorProto(name="flag", data_type=onnx.TensorProto.BOOL, dims=[2])
t.int32_data.extend([2, 0])
m.graph.initializer.append(t)
open(path("onnx_bool_int32_two.onnx"), "wb").write(m.SerializeToString())
add("differential/onnx bool initializer with int32_data 2 (true to numpy and ONNX Runtime)", "differential",
    "onnx_bool_int32_two.onnx", "accepted")

name = signed_copy("base.json", "sig_field_twice.json")
sig = open(path(name + ".sig")).read()
import re  # noqa: E402
count = re.search(r'"tensors": (\d+),', sig).group(0)
open(path(name + ".sig"), "w").write(sig.replace(count, count.replace(re.search(r"\d+", count).group(0), "99") + "\n  " + count))
add("signature/signature file with a field given twice", "signature", name, "accepted", signed=PUB, unsigned="accepted")

# From a second review: a file valid as two formats, a graph ONNX Runtime computes otherwise,
# values other readers see otherwise.
with h5py.File(path("poly_src.h5"), "w", userblock_size=512) as f:
    f["evil"] = np.full(4, 1337.0, "f4")
raw = bytearray(open(path("poly_src.h5"), "rb").read())
for n in range(64, 480, 8):
    blob = len(raw) - (8 + n + 16)
    hdr = json.dumps({"benign": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                      "blob": {"dtype": "U8", "shape": [blob], "data_offsets": [16, 16 + blob]}}, separators=(",", ":"))
    if len(hdr) <= n:
        break
head = struct.pack("<Q", n) + (hdr + " " * (n - len(hdr))).encode() + struct.pack("<4f", 1, 2, 3, 4)
raw[:len(head)] = head
open(path("polyglot.safetensors"), "wb").write(bytes(raw))
seen = run_python("import h5py; print(h5py.File(%r)['evil'][:].tolist())" % path("polyglot.safetensors"))
add("differential/a file that is safetensors and HDF5 at once", "differential", "polyglot.safetensors", "refused",
    "and also", other={"tool": "h5py", "sees": seen})

x_in = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4])
y_out = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 2])
w1 = np.ones((2, 4), "f4")
shadow = helper.make_graph(
    [helper.make_node("Constant", [], ["fc1.weight"], value=numpy_helper.from_array(w1 * 100, "c")),
     helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["y"], name="fc1", transB=1)],
    "g", [x_in], [y_out], [numpy_helper.from_array(w1, "fc1.weight"), numpy_helper.from_array(np.zeros(2, "f4"), "fc1.bias")])
m = helper.make_model(shadow, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 8
onnx.save(m, path("onnx_constant_shadows_initializer.onnx"))
add("differential/onnx Constant node redefining an initializer (ONNX Runtime computes with it)", "differential",
    "onnx_constant_shadows_initializer.onnx", "refused", "already gives")

import msgpack  # noqa: E402
open(path("bool_byte_two.msgpack"), "wb").write(msgpack.packb(
    {"$format": "ckpt-msgpack", "$version": 1, "w": {"$dtype": "bool", "$shape": [2], "$data": bytes([1, 2])}}))
add("differential/bool tensor holding the byte 2 (True to torch, numpy, h5py)", "differential", "bool_byte_two.msgpack",
    "refused", "holds the byte 2", format="msgpack", when="data")

with h5py.File(path("h5_uint64_big.h5"), "w") as f:
    f.attrs["u"] = np.uint64(2**64 - 1)
    f["x"] = np.array([2**64 - 1, 1], dtype=np.uint64)
seen = run_python("import h5py; f=h5py.File(%r); print(int(f.attrs['u']), f['x'][:].tolist())" % path("h5_uint64_big.h5"))
# An attribute value no int64 holds is named in meta/@unread, never clamped; the rest of the file
# reads (it refused the whole file before), and convert names it as a loss.
add("differential/hdf5 uint64 attribute of 2^63 and more (clamped before, then refused; now named)", "differential",
    "h5_uint64_big.h5", "accepted", shows="its attribute 'u' (a uint64 value of 18446744073709551615",
    to=".msgpack", other={"tool": "h5py", "sees": seen})
with h5py.File(path("h5_uint64_dataset.h5"), "w") as f:
    f["x"] = np.array([2**64 - 1, 1], dtype=np.uint64)
# ckpt has a u64 dtype now: the dataset reads exactly (refused while it had only int64); the
# formats tests compare the value with h5py's.
add("differential/hdf5 uint64 dataset with a value of 2^64-1 (read as u64)", "differential", "h5_uint64_dataset.h5",
    "accepted", to=".msgpack")

doc = {"$format": "ckpt-json", "$version": 1, "$attrs": {"note": '{"format":"ckpt-safetensors", "x":1}'},
       "w": {"$dtype": "u8", "$shape": [1], "$data": "AQ=="}}
json.dump(doc, open(path("json_attr_like_a_document.json"), "w"))
add("differential/root string that starts like ckpt's safetensors document (converted, read back)", "differential",
    "json_attr_like_a_document.json", "accepted", to=".safetensors")

# ---- 3. no reader leaves its file's folder ------------------------------------------------------------

os.makedirs(path("secret"), exist_ok=True)
open(path("secret/key.bin"), "wb").write(b"SECRETDATA" * 10)
os.makedirs(path("models"), exist_ok=True)
open(path("models/inside.bin"), "wb").write(b"INSIDEDATA" * 10)
os.makedirs(path("cwd"), exist_ok=True)
open(path("cwd/inside.bin"), "wb").write(b"CWDSECRETS" * 10)
if os.path.exists(path("models/fifo")):
    os.remove(path("models/fifo"))
os.mkfifo(path("models/fifo"))
os.symlink("../secret/key.bin", path("models/link_out.bin")) if not os.path.lexists(path("models/link_out.bin")) else None

for tag, ext, says in [
    ("absolute", [("/etc/hostname", 0, 4)], "/etc/hostname"),
    ("dotdot", [("../secret/key.bin", 0, 10)], "key.bin"),
    ("devzero", [("/dev/zero", 0, 1 << 30)], "/dev/zero"),
    ("fifo", [("fifo", 0, 10)], "fifo"),
    ("symlink_out", [("link_out.bin", 0, 10)], "link_out.bin"),
    ("inside", [("inside.bin", 0, 10)], "inside.bin"),
]:
    n = "models/h5_external_%s.h5" % tag
    size = sum(s for _, _, s in ext)
    with h5py.File(path(n), "w") as f:
        f.create_dataset("x", shape=(size,), dtype="u1", external=ext)
    add("confinement/hdf5 external storage (%s)" % tag, "confinement", n, "refused", says)
# With external=inside: names resolve from the file's folder (not the working directory), stay
# inside it, and name regular files.
add("confinement/hdf5 external storage inside the folder, read with external=inside", "confinement",
    "models/h5_external_inside.h5", "accepted", read=["external=inside"], cwd="cwd", stored=10)
for tag, says in [("dotdot", "climbs out"), ("absolute", "absolute"), ("fifo", "FIFO"), ("symlink_out", "outside")]:
    add("confinement/hdf5 external storage (%s) with external=inside" % tag, "confinement",
        "models/h5_external_%s.h5" % tag, "refused", says, read=["external=inside"], cwd="cwd")

with h5py.File(path("models/h5_external_link.h5"), "w") as f:
    f["a"] = np.arange(3.0)
    f["l"] = h5py.ExternalLink("../secret/key.h5", "/x")
# Recorded as a link (meta/@hdf5_external_link_*), never followed: nothing outside is read.
add("confinement/hdf5 external link (recorded, not followed)", "confinement", "models/h5_external_link.h5", "accepted")

layout = h5py.VirtualLayout(shape=(10,), dtype="f4")
layout[:] = h5py.VirtualSource(".", "v", shape=(10,))
with h5py.File(path("models/h5_vds_self.h5"), "w") as f:
    f.create_virtual_dataset("v", layout, fillvalue=0)
add("confinement/hdf5 virtual dataset mapping itself (crashed libhdf5)", "confinement", "models/h5_vds_self.h5",
    "refused", "virtual dataset")
with h5py.File(path("secret/source.h5"), "w") as f:
    f["x"] = np.arange(10, dtype="f4")
layout = h5py.VirtualLayout(shape=(10,), dtype="f4")
layout[:] = h5py.VirtualSource(path("secret/source.h5"), "x", shape=(10,))
with h5py.File(path("models/h5_vds_other.h5"), "w") as f:
    f.create_virtual_dataset("v", layout, fillvalue=0)
add("confinement/hdf5 virtual dataset mapping another file", "confinement", "models/h5_vds_other.h5", "refused",
    "virtual dataset")


def onnx_external(tag, location, length):
    m = helper.make_model(helper.make_graph([], "g", [], []))
    t = onnx.TensorProto(name="w", data_type=onnx.TensorProto.UINT8, dims=[length])
    t.data_location = onnx.TensorProto.EXTERNAL
    t.external_data.append(onnx.StringStringEntryProto(key="location", value=location))
    t.external_data.append(onnx.StringStringEntryProto(key="length", value=str(length)))
    m.graph.initializer.append(t)
    n = "models/onnx_external_%s.onnx" % tag
    open(path(n), "wb").write(m.SerializeToString())
    return n


for tag, loc, says in [("absolute", "/etc/hostname", "absolute"), ("dotdot", "../secret/key.bin", "climbs out"),
                       ("fifo", "fifo", "FIFO"), ("devzero", "/dev/zero", "absolute"),
                       ("symlink_out", "link_out.bin", "outside")]:
    add("confinement/onnx external data (%s)" % tag, "confinement", onnx_external(tag, loc, 4), "refused", says)

open(path("fifo_input.json"), "w").close()
os.remove(path("fifo_input.json"))
os.mkfifo(path("fifo_input.json"))
add("confinement/a FIFO named as the input", "confinement", "fifo_input.json", "refused", "FIFO")

# ---- 4. bounded resources on any input -----------------------------------------------------------------

def memo_bomb(levels, leaf):
    """L(k+1) = [Lk, Lk] through the memo: a few hundred bytes that expand to 2^levels leaves.
    Memo slots from 100000 on (LONG_BINPUT/GET), clear of any the leaf's own opcodes use."""
    put = lambda i: b"r" + struct.pack("<I", 100000 + i)
    get = lambda i: b"j" + struct.pack("<I", 100000 + i)
    out = bytearray(b"\x80\x02") + leaf + put(0) + b"0"
    for k in range(levels):
        out += b"(" + get(k) + get(k) + b"l" + put(k + 1) + b"0"
    return bytes(out + get(levels) + b".")


bomb = memo_bomb(30, b"K\x07")
open(path("pickle_memo_bomb.pkl"), "wb").write(bomb)
add("resources/pickle whose memo shares lists 30 levels deep (%d bytes)" % len(bomb), "resources",
    "pickle_memo_bomb.pkl", "refused", "maps to a document of more than")

arr = pickle.dumps(np.arange(4, dtype=np.float32), protocol=2)
leaf = arr[2:-1]  # the array's opcodes, without PROTO and STOP
open(path("pickle_memo_bomb_numpy.pkl"), "wb").write(memo_bomb(30, leaf))
add("resources/pickle memo bomb with NumPy leaves", "resources", "pickle_memo_bomb_numpy.pkl", "refused", "")

torch_zip([(n, memo_bomb(30, b"K\x07") if n.endswith("data.pkl") else d) for n, d in first], "pt_memo_bomb.pt")
add("resources/.pt whose data.pkl is a memo bomb", "resources", "pt_memo_bomb.pt", "refused", "")

def torch_pickle(size, stride, numel=1, key="0"):
    """data.pkl of {'w': tensor} as torch writes it, with the size and stride given."""
    u = lambda t: b"X" + struct.pack("<I", len(t)) + t.encode()
    tup = lambda xs: b"(" + b"".join(b"J" + struct.pack("<i", x) for x in xs) + b"t"
    return (b"\x80\x02}(" + u("w") + b"ctorch._utils\n_rebuild_tensor_v2\n(" +
            b"(" + u("storage") + b"ctorch\nFloatStorage\n" + u(key) + u("cpu") + b"J" + struct.pack("<i", numel) + b"tQ" +
            b"K\x00" + tup(size) + tup(stride) + b"\x89ccollections\nOrderedDict\n)RtRu.")


# A tensor of 805306368 elements of stride 0 over one element of storage: 3 GiB from 4 bytes.
b = io.BytesIO()
torch.save({"w": torch.zeros(1)}, b)
with zipfile.ZipFile(io.BytesIO(b.getvalue())) as z:
    ents = [(i.filename, z.read(i.filename)) for i in z.infolist()]
torch_zip([(n, torch_pickle([805306368], [0]) if n.endswith("data.pkl") else d) for n, d in ents], "pt_stride0.pt")
seen = run_python("import torch; t=torch.load(%r)['w']; print(tuple(t.shape), t.stride())" % path("pt_stride0.pt"))
add("resources/.pt tensor of 805306368 elements, stride 0, over one element", "resources", "pt_stride0.pt",
    "refused", "max_expansion", other={"tool": "torch.load", "sees": seen})

with h5py.File(path("h5_never_written.h5"), "w") as f:
    f.create_dataset("x", shape=(805306368,), dtype="f4")
add("resources/hdf5 dataset of 3 GiB never written", "resources", "h5_never_written.h5", "refused", "never written")
with h5py.File(path("h5_sparse_chunks.h5"), "w") as f:
    d = f.create_dataset("x", shape=(805306368,), dtype="f4", chunks=(1 << 20,))
    d[0:10] = 1
add("resources/hdf5 chunked dataset of 3 GiB with one chunk written", "resources", "h5_sparse_chunks.h5", "refused",
    "never written")

# A deflated storage that inflates to 256 MiB from a few hundred KiB: honest data, read at its
# size (not twice it), and three entries that share one deflate stream.
size = 256 << 20
b = io.BytesIO()
torch.save({"w": torch.zeros(size // 4)}, b)
with zipfile.ZipFile(io.BytesIO(b.getvalue())) as z:
    ents = [(i.filename, z.read(i.filename)) for i in z.infolist()]
with zipfile.ZipFile(path("pt_deflated_256mib.pt"), "w") as z:
    for n, d in ents:
        z.writestr(n, d, compress_type=zipfile.ZIP_DEFLATED if "/data/" in n else zipfile.ZIP_STORED)
add("resources/.pt with a deflated 256 MiB storage (%d bytes on disk)" % os.path.getsize(path("pt_deflated_256mib.pt")),
    "resources", "pt_deflated_256mib.pt", "accepted", stored=size)

data_pkl = [d for n, d in torch_entries([0.0]) if n.endswith("data.pkl")][0]
huge = zlib.compressobj(9, zlib.DEFLATED, -15)
bomb_stream = huge.compress(b"\0" * (64 << 20)) + huge.flush()
with zipfile.ZipFile(path("pt_pickle_bomb_entry.pt"), "w") as z:
    for n, d in torch_entries([0.0]):
        if n.endswith("data.pkl"):
            z.writestr(n, d + b"\0" * (64 << 20), compress_type=zipfile.ZIP_DEFLATED)
        else:
            z.writestr(n, d)
add("resources/.pt whose data.pkl inflates to 64 MiB", "resources", "pt_pickle_bomb_entry.pt", "refused", "")

# Time: 300k keys sharing one memoised value; one object BUILT 300k times; 100k attributes.
n = 300_000
body = bytearray(b"\x80\x02K\x07q\x010}q\x00(")
for i in range(n):
    k = ("k%d" % i).encode()
    body += b"X" + struct.pack("<I", len(k)) + k + b"h\x01"
body += b"u."
open(path("pickle_300k_keys_shared.pkl"), "wb").write(bytes(body))
add("resources/pickle of 300k keys sharing one memoised value", "resources", "pickle_300k_keys_shared.pkl",
    "accepted")

body = bytearray(b"\x80\x02c__main__\nThing\nq\x00)\x81q\x01")
for i in range(n):
    body += b"}(X\x01\x00\x00\x00aK\x00ub"  # BUILD {'a': 0} again and again
body += b"."
open(path("pickle_300k_builds.pkl"), "wb").write(bytes(body))
add("resources/pickle of one object BUILT 300k times", "resources", "pickle_300k_builds.pkl", "accepted")

doc = {"$format": "ckpt-json", "$version": 1, "$attrs": {"a%d" % i: i for i in range(100_000)}}
doc.update({"g%d" % i: {} for i in range(100_000)})
json.dump(doc, open(path("json_100k_attributes_groups.json"), "w"))
add("resources/json with 100k attributes and 100k groups", "resources", "json_100k_attributes_groups.json",
    "accepted")

header = {"t%d" % i: {"dtype": "U8", "shape": [1], "data_offsets": [i, i + 1]} for i in range(100_000)}
text = json.dumps(header, separators=(",", ":"))
text += " " * ((8 - len(text) % 8) % 8)
open(path("st_100k_tensors.safetensors"), "wb").write(struct.pack("<Q", len(text)) + text.encode() + bytes(100_000))
add("resources/safetensors of 100k tensors", "resources", "st_100k_tensors.safetensors", "accepted", stored=100_000)

nested = b"\x80\x02" + b"]" * 100_000 + b"a" * 99_999 + b"."
open(path("pickle_deep_lists.pkl"), "wb").write(nested)
add("resources/pickle of lists nested 100k deep", "resources", "pickle_deep_lists.pkl", "refused", "")

# A vlen string attribute whose 4000 elements all point at one 1 MB heap object: libhdf5 copies it
# once per element (4 GB from a file of 1 MB).
big, count = 1_000_000, 4000
with h5py.File(path("h5_vlen_shared.h5"), "w", libver="earliest") as f:
    f.attrs.create("a", np.array(["B" * big] + ["x"] * (count - 1), dtype=object), dtype=h5py.string_dtype())
raw = bytearray(open(path("h5_vlen_shared.h5"), "rb").read())
i = 0
while True:
    i = raw.find(struct.pack("<I", big), i)
    addr = struct.unpack_from("<Q", raw, i + 4)[0]
    if addr < len(raw) and raw[addr:addr + 4] == b"GCOL" and struct.unpack_from("<I", raw, i + 16)[0] == 1:
        break
    i += 1
for k in range(1, count):
    raw[i + 16 * k:i + 16 * k + 16] = raw[i:i + 16]
open(path("h5_vlen_shared.h5"), "wb").write(bytes(raw))
add("resources/hdf5 attribute of 4000 strings all one 1 MB heap object", "resources", "h5_vlen_shared.h5", "refused",
    "sharing heap objects")

# A dict key T(k+1) = (Tk, Tk) through the memo, 28 levels: 2^28 elements from 500 bytes.
put, get = (lambda i: b"r" + struct.pack("<I", i)), (lambda i: b"j" + struct.pack("<I", i))
key = bytearray(b"\x80\x02K\x01" + put(0) + b"0")
for k in range(28):
    key += get(k) + get(k) + b"\x86" + put(k + 1) + b"0"
open(path("pickle_tuple_key_bomb.pkl"), "wb").write(bytes(key + b"}" + get(28) + b"K\x01s."))
add("resources/pickle dict key of tuples shared 28 levels deep", "resources", "pickle_tuple_key_bomb.pkl", "refused",
    "more than 65536 elements")

open(path("msgpack_16m_empty_strings.msgpack"), "wb").write(
    msgpack.packb({"$format": "ckpt-msgpack", "$version": 1, "$attrs": {"s": [""] * 16_000_000}}))
add("resources/msgpack attribute of 16 million empty strings (16 MB)", "resources", "msgpack_16m_empty_strings.msgpack",
    "refused", "MiB of memory")

open(path("pickle_4m_empty_dicts.pkl"), "wb").write(b"\x80\x02(" + b"}" * 4_000_000 + b"l.")
add("resources/pickle of 4 million empty dicts in 4 MB", "resources", "pickle_4m_empty_dicts.pkl", "refused",
    "builds more than")

json.dump(attacks, open(path("attacks.json"), "w"), indent=1)
print("%d attacks in %s" % (len(attacks), OUT))
