#!/usr/bin/python3
"""Runs bench_train and torch_train.py in alternation (so that load from other processes hits
both alike) and prints the median samples/s of each and their ratio.

  /usr/bin/python3 benchmarks/train/compare.py build/bin/bench_train --rounds 5
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OPENBLAS = "/usr/lib/x86_64-linux-gnu/openblas-openmp"


def ours(bench, seconds):
    out = subprocess.run([bench, "--benchmark_format=json", f"--benchmark_min_time={seconds}"],
                         check=True, capture_output=True, text=True).stdout
    res = {}
    for b in json.loads(out)["benchmarks"]:
        model, threads = b["name"].split("/")[0], int(b["name"].split("threads:")[1].split("/")[0])
        res[(model, threads)] = (b["samples/s"], b["samples/cpu_s"])
    return res


def torch(seconds):
    env = dict(os.environ)
    if os.path.isdir(OPENBLAS):
        env["LD_LIBRARY_PATH"] = OPENBLAS + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    else:
        print(f"compare.py: {OPENBLAS} is missing (package libopenblas0-openmp); torch runs on whatever "
              "libblas.so.3 points to", file=sys.stderr)
    out = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "torch_train.py"), "--seconds", str(seconds)],
                         check=True, capture_output=True, text=True, env=env).stdout
    res = {}
    for line in out.splitlines():
        r = json.loads(line)
        res[(r["model"], r["threads"])] = (r["samples_per_s"], r["samples_per_cpu_s"])
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bench")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    a, b = {}, {}
    for i in range(args.rounds):
        for k, v in ours(args.bench, args.seconds).items():
            a.setdefault(k, []).append(v)
        for k, v in torch(args.seconds).items():
            b.setdefault(k, []).append(v)
        print(f"round {i + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print("medians over the rounds; per CPU-s counts the CPU time of all the process's threads")
    print(f"{'model':8} {'thr':>3} {'ckpt/s':>8} {'torch/s':>8} {'ratio':>6}   "
          f"{'ckpt/cpu-s':>10} {'torch/cpu-s':>11} {'ratio':>6}")
    for k in sorted(a):
        wa, wb = (statistics.median(v[0] for v in d[k]) for d in (a, b))
        ca, cb = (statistics.median(v[1] for v in d[k]) for d in (a, b))
        print(f"{k[0]:8} {k[1]:>3} {wa:>8.0f} {wb:>8.0f} {wa / wb:>6.2f}   "
              f"{ca:>10.0f} {cb:>11.0f} {ca / cb:>6.2f}")


if __name__ == "__main__":
    main()
