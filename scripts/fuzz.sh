#!/usr/bin/env bash
# Fuzzes every reader (one libFuzzer target per plugin folder) and the plugin-manifest and
# key-file parsers.
#   scripts/fuzz.sh [--smoke | --seconds N] [TARGET...]
#     --smoke      what CI runs: per target at most 4000 inputs (CKPT_FUZZ_SMOKE_RUNS) and 15 s
#                  (CKPT_FUZZ_SMOKE_SECONDS), from a fixed random seed (CKPT_FUZZ_SEED, default 1)
#                  and an empty corpus, so that CI tries exactly the inputs a developer's smoke
#                  run tried
#     --seconds N  N s per target; the default, 600, is the long run
#     TARGET       fuzz_json, fuzz_manifest, ... (default: every target built)
# Builds the fuzz targets in the sanitizer build scripts/test.sh also tests in (clang, ASan+UBSan,
# CKPT_FUZZ=ON; $CKPT_FUZZ_BUILD, default build-san), seeds each
# corpus from tests/formats/<name>/ and from files the plugin writes itself, runs the targets one
# after another and prints execs, coverage and findings per target. Exits 1 on any crash, hang,
# leak, over-allocation or error other than a ckpt error; the inputs that caused them are kept
# in <build>/fuzz-artifacts/<target>/. Corpora grow across runs in <build>/fuzz-corpus/.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${CKPT_FUZZ_BUILD:-$here/build-san}
seconds=600
seed_args=()
smoke=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) seconds=${CKPT_FUZZ_SMOKE_SECONDS:-15}; smoke=1
             seed_args=(-seed="${CKPT_FUZZ_SEED:-1}" -runs="${CKPT_FUZZ_SMOKE_RUNS:-4000}") ;;
    --seconds) seconds=$2; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) targets+=("$1") ;;
  esac
  shift
done

CC=${CKPT_FUZZ_CC:-clang-14} CXX=${CKPT_FUZZ_CXX:-clang++-14} CKPT_TARGETS=ckpt_fuzz \
  bash "$here/scripts/build.sh" "$build" -DCKPT_SANITIZE=ON -DCKPT_FUZZ=ON -DCKPT_BUILD_BENCHMARKS=OFF

# Only the plugins of this build; leaks are findings, except libhdf5's known ones.
unset CKPT_PLUGIN_PATH
# The sanitizer runtime is a shared library loaded after libckpt's dependencies, which is fine
# for these programs but trips ASan's link-order check. A request no allocator can meet (libhdf5
# sizing a buffer from a corrupt header) fails as it does in production, where the library
# reports it as an error; any allocation that succeeds is still held to the harness's bound and
# to -malloc_limit_mb.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}:verify_asan_link_order=0:allocator_may_return_null=1"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [ -f "$here/tests/lsan.supp" ]; then export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/tests/lsan.supp}; fi

if [ ${#targets[@]} -eq 0 ]; then
  for t in "$build"/fuzz/fuzz_*; do [ -x "$t" ] && targets+=("$(basename "$t")"); done
fi

# Seeds from tests/security's attacks need a ckpt to make its signed and converted files: the
# plain build's, which scripts/test.sh builds first. Without one the attacks are left out, and
# the report says so.
attacks=$build/fuzz-attacks
plain_ckpt=${CKPT_PLAIN_CLI:-$here/build/bin/ckpt}
if [ -x "$plain_ckpt" ]; then
  /usr/bin/python3 "$here/tests/security/make_attacks.py" "$plain_ckpt" "$attacks" "$attacks-marker" >/dev/null
else
  echo "fuzz: no plain build at $plain_ckpt; the security attacks are not among the seeds" >&2
  attacks=
fi
extensions_of() {
  case "$1" in
    pytorch) echo "pt pth" ;; pickle) echo "pkl pickle joblib" ;; hdf5) echo "h5 hdf5" ;;
    safetensors) echo safetensors ;; msgpack) echo "msgpack mpk" ;; onnx) echo onnx ;; json) echo json ;;
  esac
}

report=$build/fuzz-report.txt
printf '%-16s %8s %10s %9s %7s %7s %s\n' TARGET SECONDS EXECS EXEC/S COV CORPUS RESULT | tee "$report"
failed=0
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  corpus=$build/fuzz-corpus/$name
  if [ $smoke = 1 ]; then corpus=$build/fuzz-smoke-corpus/$name; rm -rf "$corpus"; fi
  seeds=$build/fuzz-seeds/$name
  artifacts=$build/fuzz-artifacts/$name
  log=$build/fuzz-logs/$name.log
  mkdir -p "$corpus" "$seeds" "$artifacts" "$(dirname "$log")"
  "$build/fuzz/ckpt_fuzz_seeds" "$name" "$seeds" >/dev/null
  # The golden and corrupt files of the format's own tests, named by content so none collide.
  if [ -d "$here/tests/formats/$name" ]; then
    find "$here/tests/formats/$name" -type f -size -1M \
      ! -name '*.cpp' ! -name '*.hpp' ! -name '*.py' ! -name '*.txt' ! -name '*.md' ! -name '*.tsv' -print0 |
      while IFS= read -r -d '' f; do cp "$f" "$seeds/golden-$(sha1sum "$f" | cut -c1-16)"; done
  fi
  # The hostile files of tests/security (memo-sharing pickles, duplicate zip names, HDF5 external
  # storage, ...) in this target's format, made once per run with the plain build's ckpt.
  if [ -d "$attacks" ]; then
    for ext in $(extensions_of "$name"); do
      find "$attacks" -maxdepth 2 -type f -name "*.$ext" -size -256k -print0 |
        while IFS= read -r -d '' f; do cp "$f" "$seeds/attack-$(basename "$f")"; done
    done
  fi
  # The pickle plugin writes nothing itself: its seeds are what NumPy and joblib write.
  if [ "$name" = pickle ]; then
    /usr/bin/python3 "$here/tests/formats/pickle/make_pickles.py" "$seeds/numpy" "$build/fuzz-pickle-marker" >/dev/null
  fi
  set +e
  "$build/fuzz/$t" -max_total_time="$seconds" -timeout="${CKPT_FUZZ_TIMEOUT:-20}" -rss_limit_mb=2048 \
    -malloc_limit_mb="${CKPT_FUZZ_MALLOC_LIMIT_MB:-128}" -max_len=262144 -artifact_prefix="$artifacts/" \
    -print_final_stats=1 "${seed_args[@]}" "$corpus" "$seeds" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  units=$(find "$corpus" -type f | wc -l)
  if [ $rc -eq 0 ]; then result=ok; else result="FINDING (exit $rc): $(ls "$artifacts" | tail -1), log $log"; failed=1; fi
  printf '%-16s %8s %10s %9s %7s %7s %s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$units" "$result" |
    tee -a "$report"
done
exit $failed
