#!/usr/bin/env bash
# The long runs of the reliability tests (tests/reliability), for the figures of
# docs/reliability.md:  scripts/soak.sh [BUILD_DIR]   (default: build)
#   - kill during save: CKPT_RELIABILITY_KILLS (100) SIGKILLs per format, of saves of
#     CKPT_RELIABILITY_MIB (300) MiB; disk full at the same time
#   - corruption: CKPT_RELIABILITY_FLIPS (1000) one-byte changes per format, each also checked
#     with `ckpt verify` (ckpt_corruption_stats)
#   - plugins: CKPT_RELIABILITY_LOADS (1000) rounds of loading and unloading every plugin, in
#     this build and, where it exists, in the sanitizer build (CKPT_SOAK_ASAN_BUILD, default
#     build-san), whose LeakSanitizer checks the run at exit
# Every format in the registry is covered. Exits non-zero on any failure; the summary is also
# written to BUILD_DIR/soak-report.txt. Set CKPT_RELIABILITY_SEED to replay a run.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
ninja -C "$build" -j"${CKPT_JOBS:-2}" test_reliability ckpt_corruption_stats ckpt_cli
report=$build/soak-report.txt
: >"$report"
export CKPT_RELIABILITY_KILLS=${CKPT_RELIABILITY_KILLS:-100}
export CKPT_RELIABILITY_MIB=${CKPT_RELIABILITY_MIB:-300}
export CKPT_RELIABILITY_LOADS=${CKPT_RELIABILITY_LOADS:-1000}
tests=$build/tests/reliability/test_reliability
status=0

echo "== kill during save, disk full ($CKPT_RELIABILITY_KILLS kills of $CKPT_RELIABILITY_MIB MiB saves per format)" | tee -a "$report"
"$tests" --gtest_filter='AllFormats/KillDuringSave.*:AllFormats/DiskFull.*' >"$build/soak-kill.log" 2>&1 || status=1
grep -E '^\[(kill|fsize|enospc)\]|^\[  (PASSED|FAILED)|tests ran' "$build/soak-kill.log" | tee -a "$report"

echo "== corruption (${CKPT_RELIABILITY_FLIPS:-1000} flips per format)" | tee -a "$report"
"$build/bin/ckpt_corruption_stats" --flips "${CKPT_RELIABILITY_FLIPS:-1000}" --seed "${CKPT_RELIABILITY_SEED:-1}" \
  --cli "$build/bin/ckpt" | tee -a "$report" || status=1

echo "== loading and unloading every plugin $CKPT_RELIABILITY_LOADS times" | tee -a "$report"
"$tests" --gtest_filter='FaultyPlugins.LoadingAndUnloading*' >"$build/soak-loads.log" 2>&1 || status=1
grep -E '^\[loads\]|^\[  (PASSED|FAILED)' "$build/soak-loads.log" | tee -a "$report"

# The same rounds in the sanitizer build, where LeakSanitizer checks the whole run at exit (CI
# runs 200 rounds there).
asan=${CKPT_SOAK_ASAN_BUILD:-$here/build-san}
if [ -x "$asan/tests/reliability/test_reliability" ]; then
  echo "== the same under ASan+UBSan, LeakSanitizer at exit ($asan)" | tee -a "$report"
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0:verify_asan_link_order=0} \
    LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/tests/lsan.supp:print_suppressions=0} \
    "$asan/tests/reliability/test_reliability" --gtest_filter='FaultyPlugins.LoadingAndUnloading*' \
    >"$build/soak-loads-asan.log" 2>&1 || status=1
  grep -E '^\[loads\]|^\[  (PASSED|FAILED)|LeakSanitizer|SUMMARY' "$build/soak-loads-asan.log" | tee -a "$report"
fi
exit $status
