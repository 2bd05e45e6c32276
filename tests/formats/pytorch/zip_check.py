#!/usr/bin/python3
"""Checks a .pt file ckpt's own zip writer made, as three other readers see it.

zip_check.py FILE COUNT ZIP64

- Python's zipfile: testzip() finds no bad CRC; every entry is stored; the data of every entry
  starts at a multiple of 64 (read from its local header), as torch's writer aligns it; the
  file has ZIP64 end records exactly when ZIP64 is "yes".
- Debian's unzip -t: exit 0.
- torch.load: a dict of COUNT tensors t0, t1, ..., tensor i being arange(i % 7 + 1) * (i + 1)
  as float32 (what test_pytorch_zip.cpp writes).
Prints OK or the problems, exit 1.
"""
import struct
import subprocess
import sys
import zipfile

import torch

path, count, zip64 = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "yes"
problems = []

with zipfile.ZipFile(path) as z:
    bad = z.testzip()
    if bad is not None:
        problems.append(f"zipfile: bad CRC in {bad}")
    raw = open(path, "rb").read()
    for info in z.infolist():
        if info.compress_type != zipfile.ZIP_STORED:
            problems.append(f"{info.filename}: compression {info.compress_type}")
        at = info.header_offset
        sig, = struct.unpack("<I", raw[at:at + 4])
        name_len, extra_len = struct.unpack("<HH", raw[at + 26:at + 30])
        data = at + 30 + name_len + extra_len
        if sig != 0x04034B50:
            problems.append(f"{info.filename}: no local header at {at}")
        if data % 64:
            problems.append(f"{info.filename}: data at {data}, not a multiple of 64")
    has_zip64 = b"PK\x06\x06" in raw[-200:] and b"PK\x06\x07" in raw[-200:]
    if has_zip64 != zip64:
        problems.append(f"ZIP64 end records {'present' if has_zip64 else 'absent'}, expected {zip64}")

r = subprocess.run(["unzip", "-tqq", path], capture_output=True, text=True)
if r.returncode != 0:
    problems.append(f"unzip -t exit {r.returncode}: {r.stdout[-500:]} {r.stderr[-500:]}")

sd = torch.load(path)
if len(sd) != count:
    problems.append(f"torch.load: {len(sd)} entries, expected {count}")
for i in range(count):
    want = torch.arange(i % 7 + 1, dtype=torch.float32) * (i + 1)
    got = sd.get(f"t{i}")
    if got is None or got.dtype != torch.float32 or not torch.equal(got, want):
        problems.append(f"torch.load: t{i} is {got!r}, expected {want!r}")
        break

print("\n".join(problems) if problems else "OK")
sys.exit(1 if problems else 0)
