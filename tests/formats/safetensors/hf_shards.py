#!/usr/bin/python3
"""Hugging Face sharded checkpoints, written and checked from the published layout with json,
struct and numpy only (Debian has no python3-safetensors). Run with /usr/bin/python3.

  hf_shards.py write DIR          writes DIR/model-0000k-of-00003.safetensors and
                                  DIR/model.safetensors.index.json as Hugging Face's
                                  save_torch_state_dict does (keys sorted, shards filled greedily,
                                  each shard's __metadata__ {"format": "pt"}), and DIR/all.safetensors,
                                  the same tensors unsharded, for the test to compare with
  hf_shards.py check DIR MAX [ORDER]
                                  checks the folder ckpt wrote as a Hugging Face loader reads it:
                                  the index's weight_map (sorted) maps every tensor of every shard
                                  and nothing else, total_size is the sum of the tensors' bytes,
                                  the shards are named model-0000k-of-0000n and hold at most MAX
                                  bytes of tensors unless one tensor alone is larger, and (given
                                  ORDER, a file of one tensor name per line) the shards are split
                                  as huggingface_hub splits a state dict in that order; every
                                  shard's __metadata__ has "format": "pt" (transformers refuses a
                                  shard without it); or, with one shard, model.safetensors and no
                                  index. Exits nonzero naming the first broken rule.
"""
import json
import os
import re
import struct
import sys

import numpy as np

ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def write_file(path, tensors, metadata):
    header = {"__metadata__": metadata} if metadata is not None else {}
    offset = 0
    blobs = []
    for name in sorted(tensors, key=lambda n: (-tensors[n][0].itemsize, n)):
        dtype, array = tensors[name][1], tensors[name][0]
        data = array.tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_file(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", None)
    return header, meta


def write(out):
    rng = np.random.default_rng(7)
    tensors = {
        "model.embed_tokens.weight": (rng.standard_normal((64, 16)).astype("<f4"), "F32"),
        "model.layers.0.self_attn.q_proj.weight": (rng.standard_normal((16, 16)).astype("<f2"), "F16"),
        "model.layers.0.mlp.up_proj.weight": (rng.standard_normal((32, 16)).astype("<f4"), "F32"),
        "model.layers.1.self_attn.q_proj.weight": (rng.standard_normal((16, 16)).astype("<f4"), "F32"),
        "model.norm.weight": (np.ones(16, dtype="<f4"), "F32"),
        "lm_head.weight": (rng.standard_normal((64, 16)).astype("<f4"), "F32"),
        "step": (np.array([12], dtype="<i8"), "I64"),
    }
    names = sorted(tensors)
    shards = [names[:3], names[3:5], names[5:]]
    weight_map = {}
    for k, group in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        write_file(os.path.join(out, fname), {n: tensors[n] for n in group}, {"format": "pt"})
        for n in group:
            weight_map[n] = fname
    total = sum(tensors[n][0].nbytes for n in names)
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
    write_file(os.path.join(out, "all.safetensors"), tensors, {"format": "pt"})


def fail(msg):
    print(msg)
    sys.exit(1)


def check(folder, max_bytes, order_file=None):
    files = sorted(os.listdir(folder))
    if files == ["model.safetensors"]:
        return 0
    index_path = os.path.join(folder, "model.safetensors.index.json")
    if not os.path.exists(index_path):
        fail(f"no index among {files}")
    with open(index_path) as f:
        index = json.load(f)
    wm = index["weight_map"]
    if list(wm) != sorted(wm):
        fail("weight_map is not sorted")
    shards = sorted(set(wm.values()))
    n = len(shards)
    for k, s in enumerate(shards):
        if s != f"model-{k + 1:05d}-of-{n:05d}.safetensors":
            fail(f"shard {s} is not named model-{k + 1:05d}-of-{n:05d}.safetensors")
    if sorted(files) != sorted(shards + ["model.safetensors.index.json"]):
        fail(f"the folder holds {files}")
    total = 0
    held = {}
    for s in shards:
        header, meta = read_file(os.path.join(folder, s))
        size = 0
        for name, t in header.items():
            nbytes = t["data_offsets"][1] - t["data_offsets"][0]
            size += nbytes
            held[name] = (s, nbytes)
        if size > max_bytes and len(header) > 1:
            fail(f"{s} holds {size} bytes in {len(header)} tensors, over {max_bytes}")
        if (meta or {}).get("format") != "pt":
            fail(f"{s}'s __metadata__ {meta} has no format pt")
        total += size
    if set(held) != set(wm) or any(held[n][0] != wm[n] for n in wm):
        fail("the weight_map does not say where each tensor is")
    if index["metadata"]["total_size"] != total:
        fail(f"total_size {index['metadata']['total_size']} != {total}")
    if order_file:
        # huggingface_hub's split_torch_state_dict_into_shards, in the document's order.
        order = [l.strip() for l in open(order_file) if l.strip()]
        plan, current, size = [], [], 0
        for name in order:
            nbytes = held[name][1]
            if nbytes > max_bytes:
                plan.append([name])
                continue
            if size + nbytes > max_bytes:
                plan.append(current)
                current, size = [], 0
            current.append(name)
            size += nbytes
        if current:
            plan.append(current)
        for k, group in enumerate(plan):
            for name in group:
                if held[name][0] != shards[k]:
                    fail(f"{name} is in {held[name][0]}, huggingface_hub's split puts it in {shards[k]}")
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
        sys.exit(0)
    sys.exit(check(sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None))
