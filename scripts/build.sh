#!/usr/bin/env bash
# Configures and builds ckpt into a build folder: build.sh [BUILD_DIR] [extra cmake args...]
# CKPT_TARGETS names the ninja targets to build (default: all).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/build}
shift || true
# -g1 (line tables, no variable info) is what sanitizer reports and profiles need; full -g made
# every compile about 1.6 times longer, which CI pays twice.
# ccache (scripts/setup.sh installs it) makes a rebuild on a machine that keeps its cache cost
# what changed; paths are taken relative to the checkout so that another clone hits the cache.
launcher=()
if command -v ccache >/dev/null 2>&1; then
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$here}
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$here" -B "$dir" -G Ninja "${launcher[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" "$@" >/dev/null
ninja -C "$dir" -j"${CKPT_JOBS:-2}" ${CKPT_TARGETS:-}
