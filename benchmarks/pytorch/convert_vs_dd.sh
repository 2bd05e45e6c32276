#!/bin/bash
# Convert into pytorch against dd, interleaved: per round, `dd conv=fdatasync` of the source's
# bytes, then `bench_op convert SRC out.pt --to pytorch` (with fsync, as `ckpt convert` runs).
# Prints each round's MB/s and ratio (convert / dd); take the median of the ratios.
#   benchmarks/pytorch/convert_vs_dd.sh BUILD_DIR SCRATCH_DIR [ROUNDS]
set -euo pipefail
bin=$(cd "$1" && pwd)/bin
cd "$2"
rounds=${3:-5}
for size in 256M 1G; do
  for src in safetensors msgpack; do
    f=src-$size.$src
    [ -f "$f" ] || "$bin/bench_op" save "$src" "$f" "$size" > /dev/null
    bytes=$(stat -c %s "$f")
    blocks=$((bytes / 16777216))
    for r in $(seq "$rounds"); do
      sync; rm -f dd.out out.pt
      dd_s=$(dd if=/dev/zero of=dd.out bs=16M count=$blocks conv=fdatasync 2>&1 | sed -n 's/.* copied, \([0-9.]*\) s.*/\1/p')
      rm -f dd.out; sync
      conv_s=$("$bin/bench_op" convert "$f" out.pt --to pytorch | tail -1 |
               python3 -c 'import json, sys; print(json.load(sys.stdin)["seconds"])')
      python3 -c "d = $blocks * 16777216 / $dd_s; c = $bytes / $conv_s
print('$size $src round $r: dd %d MB/s, convert %d MB/s, ratio %.3f' % (d / 1e6, c / 1e6, c / d))"
    done
  done
done
rm -f out.pt
