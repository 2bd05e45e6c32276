#!/usr/bin/python3
"""The Python peers of benchmarks/compare: the same state dict saved and loaded by PyTorch,
h5py, NumPy, python msgpack, ONNX and pickle, one line of JSON per measurement.

  /usr/bin/python3 benchmarks/peers/peers.py --shapes SHAPES.json --dir DIR [--peers torch,h5py]
  /usr/bin/python3 benchmarks/peers/peers.py --shapes SHAPES.json --write-pickle FILE.pkl

SHAPES.json is what `bench_op shapes SIZE` prints, so both sides hold the same tensors (f32,
random bits). The state dict is built first, untimed. For each peer:

  save        the peer's usual save call, to a new file, until the file is closed (page cache)
  save+fsync  the same call, timed through os.fsync of the file: one write, two clocks
  load        the peer's usual load into new memory (torch.load, dset[()], numpy.load, ...)
  load-reuse  where the peer has a way to load into existing arrays: torch's
              load_state_dict(torch.load()) (copy_ into the parameters), h5py read_direct,
              readinto for numpy; these are what ckpt's `load` (read_into) is compared with
  load-weights_only   torch.load(weights_only=True)

Each line also has the CPU seconds of the process (time.process_time), which mean more than
the wall clock on a loaded machine. Each peer first saves and loads one small tensor, untimed (imports, first calls). Peers not
installed are skipped with a note on stderr. Files are removed after each peer.
"""
import argparse
import json
import os
import sys
import time

import numpy

PEERS = ["torch", "h5py", "numpy", "msgpack", "onnx", "pickle"]


def make_state(shapes):
    rng = numpy.random.default_rng(1)
    state = {}
    for s in shapes:
        n = int(numpy.prod(s["shape"], dtype=numpy.int64))
        state[s["name"]] = rng.integers(0, 2**32, size=n, dtype=numpy.uint32).view(numpy.float32).reshape(s["shape"])
    return state


def emit(peer, op, seconds, nbytes, cpu_seconds=None):
    print(json.dumps({"peer": peer, "op": op, "seconds": seconds, "cpu_seconds": cpu_seconds, "bytes": nbytes}),
          flush=True)


def timed_save(path, save):
    """Runs save(path) to a new file; returns (seconds until it returned, the same plus an
    fsync of the file, and the CPU seconds of each)."""
    if os.path.exists(path):
        os.remove(path)
    os.sync()  # nothing else dirty while the save is timed, as bench_formats and dd start
    t0, c0 = time.perf_counter(), time.process_time()
    save(path)
    t1, c1 = time.perf_counter(), time.process_time()
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    t2, c2 = time.perf_counter(), time.process_time()
    return t1 - t0, t2 - t0, c1 - c0, c2 - c0


def clock(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


# Each peer gives its file extension, save(path), and its loads as (op, load(path)) pairs.

def peer_torch(state, params):
    import torch
    tstate = {k: torch.from_numpy(v) for k, v in state.items()}
    tparams = {k: torch.from_numpy(v) for k, v in params.items()}

    def load_reuse(path):
        loaded = torch.load(path)
        with torch.no_grad():
            for k, v in loaded.items():
                tparams[k].copy_(v)

    loads = [("load", lambda p: torch.load(p)),
             ("load-weights_only", lambda p: torch.load(p, weights_only=True)),
             ("load-reuse", load_reuse)]
    return ".pt", lambda p: torch.save(tstate, p), loads


def peer_h5py(state, params):
    import h5py

    def save(path):
        with h5py.File(path, "w") as h:
            g = h.create_group("model").create_group("state")
            for k, v in state.items():
                g.create_dataset(k, data=v)

    def load(path):
        with h5py.File(path, "r") as h:
            return {k: d[()] for k, d in h["model/state"].items()}

    def load_reuse(path):
        with h5py.File(path, "r") as h:
            for k, d in h["model/state"].items():
                d.read_direct(params[k])

    return ".h5", save, [("load", load), ("load-reuse", load_reuse)]


def peer_numpy(state, params):
    # One file holding the arrays one after another (numpy.save into an open file), read back
    # in the same order: NumPy's raw format without the zip of savez.
    def save(path):
        with open(path, "wb") as f:
            for v in state.values():
                numpy.save(f, v, allow_pickle=False)

    def load(path):
        with open(path, "rb") as f:
            return {k: numpy.load(f, allow_pickle=False) for k in state}

    def load_reuse(path):
        with open(path, "rb") as f:
            for k in state:
                version = numpy.lib.format.read_magic(f)
                numpy.lib.format._check_version(version)
                numpy.lib.format._read_array_header(f, version)
                f.readinto(memoryview(params[k]).cast("B"))

    return ".npy", save, [("load", load), ("load-reuse", load_reuse)]


def peer_msgpack(state, params):
    import msgpack

    def save(path):
        doc = {k: {"dtype": "f32", "shape": list(v.shape), "data": memoryview(v).cast("B")} for k, v in state.items()}
        with open(path, "wb") as f:
            f.write(msgpack.packb(doc, use_bin_type=True))

    def load(path):
        with open(path, "rb") as f:
            doc = msgpack.unpackb(f.read(), raw=False)
        return {k: numpy.frombuffer(v["data"], numpy.float32).reshape(v["shape"]) for k, v in doc.items()}

    return ".msgpack", save, [("load", load)]


def peer_onnx(state, params):
    import onnx
    from onnx import helper, numpy_helper

    def save(path):
        inits = [numpy_helper.from_array(v, k) for k, v in state.items()]
        graph = helper.make_graph([], "state", [], [], initializer=inits)
        onnx.save_model(helper.make_model(graph), path)

    def load(path):
        m = onnx.load(path)
        return {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}

    return ".onnx", save, [("load", load)]


def peer_pickle(state, params):
    import pickle

    def save(path):
        with open(path, "wb") as f:
            pickle.dump(state, f, protocol=5)

    def load(path):
        with open(path, "rb") as f:
            return pickle.load(f)

    return ".pkl", save, [("load", load)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", required=True)
    ap.add_argument("--dir", default="bench-tmp")
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--write-pickle", help="only write the state dict as a pickle here (for ckpt's pickle reader)")
    args = ap.parse_args()
    with open(args.shapes) as f:
        state = make_state(json.load(f))
    nbytes = sum(v.nbytes for v in state.values())
    if args.write_pickle:
        import pickle
        with open(args.write_pickle, "wb") as f:
            pickle.dump(state, f, protocol=5)
        return
    params = {k: numpy.ones_like(v) for k, v in state.items()}  # touched, like real parameters
    os.makedirs(args.dir, exist_ok=True)
    tiny = {"w": numpy.ones((4, 4), numpy.float32)}
    for name in args.peers.split(","):
        try:
            # A first save and load of one small tensor, untimed: imports and first calls.
            ext, save, loads = globals()["peer_" + name](tiny, {"w": tiny["w"].copy()})
            path = os.path.join(args.dir, "peer-" + name + ext)
            timed_save(path, save)
            for _, load in loads:
                load(path)
            ext, save, loads = globals()["peer_" + name](state, params)
        except ImportError as e:
            print(f"peers.py: {name} skipped: {e}", file=sys.stderr)
            continue
        t_close, t_fsync, c_close, c_fsync = timed_save(path, save)
        emit(name, "save", t_close, nbytes, c_close)
        emit(name, "save+fsync", t_fsync, nbytes, c_fsync)
        # One untimed load into new memory first, freed again, as bench_formats does before
        # its load-fresh: every timed load then starts from the same memory state on both sides.
        loads[0][1](path)
        for op, load in loads:
            seconds, cpu, out = clock(lambda: load(path))
            del out
            emit(name, op, seconds, nbytes, cpu)
        os.remove(path)


if __name__ == "__main__":
    main()
