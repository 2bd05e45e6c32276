#!/usr/bin/env bash
# Configures and builds ckpt into a build folder: build.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/build}
shift || true
# -g1 (line tables, no variable info) is what sanitizer reports and profiles need; full -g made
# every compile about 1.6 times longer, which CI pays three times.
cmake -S "$here" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" "$@" >/dev/null
ninja -C "$dir" -j"${CKPT_JOBS:-2}"
