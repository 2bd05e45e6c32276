#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, builds twice and runs every
# CTest test in both builds, then smoke-runs the fuzz targets.
#   build/      gcc, as users build it: every test
#   build-san/  clang with ASan+UBSan and libFuzzer's instrumentation: every test but the
#               realworld corpus (mostly Python), then each fuzz target briefly. One sanitized
#               build serves both, so CI compiles the tree twice, not three times.
# Tests labelled "long" (the full-length accuracy runs, -DCKPT_LONG_TESTS=ON) are left out even
# in a build folder configured with them; run those with `ctest -L long`.
# With ccache installed (scripts/setup.sh does) a machine that keeps ~/.cache/ccache rebuilds
# only what changed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
phase_start=$SECONDS
phase() {
  echo "test.sh: $1 took $((SECONDS - phase_start)) s" >&2
  phase_start=$SECONDS
}

bash "$here/scripts/setup.sh"
phase "set-up"

bash "$here/scripts/build.sh" "$here/build"
phase "plain build"
(cd "$here/build" && ctest --output-on-failure -j2 --timeout 900 -LE long)
phase "plain tests"

# Allocation stacks are taken by the fast (frame-pointer) unwinder: the slow one made the suite
# three times longer. A test program whose leaks can come from a module unloaded before the
# report (libhdf5's filter plugins) asks for the slow one itself (tests/support/asan_slow_unwind.cpp).
# The sanitizer runtime is shared (one for the programs and the plugins they dlopen) and so
# comes after libckpt's dependencies in the load order, which ASan's link-order check refuses.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:verify_asan_link_order=0}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
san=$here/build-san
CC=${CKPT_FUZZ_CC:-clang-14} CXX=${CKPT_FUZZ_CXX:-clang++-14} \
  bash "$here/scripts/build.sh" "$san" -DCKPT_SANITIZE=ON -DCKPT_FUZZ=ON -DCKPT_BUILD_BENCHMARKS=OFF
phase "sanitizer build"
# The realworld corpus (ctest -L realworld) is mostly Python and runs in the plain build only.
(cd "$san" && ctest --output-on-failure -j2 --timeout 1800 -LE 'long|realworld')
phase "sanitizer tests"

bash "$here/scripts/fuzz.sh" --smoke
phase "fuzz smoke"
