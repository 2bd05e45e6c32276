#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, builds twice (plain and
# with ASan+UBSan) and runs every CTest test in both builds, then smoke-runs the fuzz targets.
# Tests labelled "long" (the full-length accuracy runs, -DCKPT_LONG_TESTS=ON) are left out even
# in a build folder configured with them; run those with `ctest -L long`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/setup.sh"

bash "$here/scripts/build.sh" "$here/build"
(cd "$here/build" && ctest --output-on-failure -j2 --timeout 900 -LE long)

# LeakSanitizer cannot follow dlclose'd plugins' frames; leaks are checked with symbols kept.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
bash "$here/scripts/build.sh" "$here/build-asan" -DCKPT_SANITIZE=ON -DCKPT_BUILD_BENCHMARKS=OFF
# The realworld corpus (ctest -L realworld) is mostly Python and runs in the plain build only.
(cd "$here/build-asan" && ctest --output-on-failure -j2 --timeout 1800 -LE 'long|realworld')

# A short run of every libFuzzer target (a third, clang build); scripts/fuzz.sh runs them long.
bash "$here/scripts/fuzz.sh" --smoke
