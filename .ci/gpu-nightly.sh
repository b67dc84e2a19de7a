#!/usr/bin/env bash
# The nightly hardware run: every GPU-facing suite, from a directory of binaries built with a GPU
# preset (cuda or rocm), in a checkout of this repository (corpus and goldens are read from it).
#
#   bash .ci/gpu-nightly.sh BIN_DIR OUT_DIR [all|tests|suite|sanitize]
#
# `tests`: the gpu tests, mutation score, corpus, the ci suite report and the property suite at
# nightly sizes; `suite`: `pacheck run --suite nightly` (1000 cases); `sanitize`: compute-sanitizer
# and the bench. Each part fits a 10-minute slot; `all` (default) runs them in turn.
# BIN_DIR holds gpu_test, entry_gpu_test, mutation_gpu_test, fixtures_gpu_test, regression_corpus_test,
# property_suite_test, pacheck and (optionally) pacheck_kernels_bench. OUT_DIR receives run.log
# (everything, in order), ci.json and nightly.json (pacheck reports, diffable with `pacheck diff`)
# and the sanitizer logs. Exit status: 0 when every step passed, 1 otherwise.
set -u
BIN=${1:?usage: bash .ci/gpu-nightly.sh BIN_DIR OUT_DIR}
OUT=${2:?usage: bash .ci/gpu-nightly.sh BIN_DIR OUT_DIR}
PART=${3:-all}
case "$PART" in all|tests|suite|sanitize) ;; *) echo "unknown part '$PART' (all, tests, suite, sanitize)" >&2; exit 2 ;; esac
want() { [ "$PART" = all ] || [ "$PART" = "$1" ]; }
mkdir -p "$OUT"
export PACHECK_SOURCE_DIR="${PACHECK_SOURCE_DIR:-$(pwd)}"
LOG="$OUT/run.log"
: > "$LOG"
failed=0

step() {  # step NAME TIMEOUT_S COMMAND...
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  echo "=== $name: $*" | tee -a "$LOG"
  timeout "$limit" "$@" >> "$LOG" 2>&1
  local rc=$?
  [ $rc -ne 0 ] && failed=1
  echo "=== $name: rc=$rc in $((SECONDS - t0)) s" | tee -a "$LOG"
}

(nvidia-smi -L || rocm-smi --showproductname) >> "$LOG" 2>&1
if want tests; then
step gpu_test 240 "$BIN/gpu_test"
step entry_gpu_test 120 "$BIN/entry_gpu_test"
step mutation_gpu_test 180 "$BIN/mutation_gpu_test"
step fixtures_gpu_test 240 "$BIN/fixtures_gpu_test"
step regression_corpus 180 "$BIN/regression_corpus_test"
step pacheck_ci 180 "$BIN/pacheck" run --suite ci --backend gpu --quiet --report "$OUT/ci.json"

# The property suite at nightly sizes, paths on the GPU, judged against the fp64 CPU oracle,
# sharded over the CPU cores (gtest sharding). PACHECK_PROPERTY_REFERENCE=gpu judges against the
# GPU reference kernel instead; measured on an H100 it is slower at these sizes (one thread per
# query row, shared by every shard), so it is for cases too large for the CPU oracle.
shards=$(nproc)
t0=$SECONDS
echo "=== property_nightly: $shards shards, PACHECK_PROPERTY_LEVEL=nightly, backend gpu" | tee -a "$LOG"
for i in $(seq 0 $((shards - 1))); do
  GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$i PACHECK_PROPERTY_BACKEND=gpu \
    PACHECK_PROPERTY_REFERENCE="${PACHECK_PROPERTY_REFERENCE:-cpu}" \
    PACHECK_PROPERTY_LEVEL=nightly \
    timeout "${PROPERTY_TIMEOUT_S:-400}" "$BIN/property_suite_test" > "$OUT/.prop_$i" 2>&1 &
done
prop_rc=0
for job in $(jobs -p); do wait "$job" || prop_rc=1; done
cat "$OUT"/.prop_* >> "$LOG"
rm -f "$OUT"/.prop_*
[ $prop_rc -ne 0 ] && failed=1
echo "=== property_nightly: rc=$prop_rc in $((SECONDS - t0)) s" | tee -a "$LOG"
fi
# The fp64 CPU reference of large nightly cases dominates this one (single process).
want suite && step pacheck_nightly 560 "$BIN/pacheck" run --suite nightly --backend gpu --quiet --report "$OUT/nightly.json"

if want sanitize && command -v compute-sanitizer > /dev/null; then
  step memcheck 270 compute-sanitizer --tool memcheck --log-file "$OUT/memcheck.log" "$BIN/gpu_test"
  step racecheck 200 compute-sanitizer --tool racecheck --log-file "$OUT/racecheck.log" \
    "$BIN/gpu_test" --gtest_filter=-*CapabilitySweep*
fi
want sanitize && [ -x "$BIN/pacheck_kernels_bench" ] && step bench 100 "$BIN/pacheck_kernels_bench"
echo "=== nightly: $([ $failed -eq 0 ] && echo PASS || echo FAIL)" | tee -a "$LOG"
exit $failed
