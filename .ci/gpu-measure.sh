#!/usr/bin/env bash
# Measurements for the closing notes of the throughput and bench work, on a GPU machine:
# nightly suite throughput, host-thread scaling, the 128k case, worker overhead, compute-sanitizer
# on the gpu tests and a GPU plug-in, and a bench sweep. Everything goes to OUT_DIR/measure.log.
#   bash .ci/gpu-measure.sh BIN_DIR OUT_DIR
set -u
BIN=${1:?BIN_DIR}
OUT=${2:?OUT_DIR}
P="$BIN/pacheck"
L="$OUT/measure.log"
export PACHECK_SOURCE_DIR="${PACHECK_SOURCE_DIR:-$(pwd)}"
t() { local s=$SECONDS; echo "=== $*" >> "$L"; timeout 300 "$@" >> "$L" 2>&1; echo "=== rc=$? in $((SECONDS - s)) s" >> "$L"; }
nproc >> "$L"
t "$P" run --suite nightly --backend gpu --quiet --report "$OUT/nightly.json"
for n in 1 2 4 8 16; do PACHECK_THREADS=$n t "$P" run --suite ci --backend gpu --quiet --report "$OUT/ci_t$n.json"; done
t "$P" run --case bench/cases/llama70b_128k.json --backend gpu --paths hip,v1,asm --quiet --report "$OUT/large.json"
t "$P" run --kernel "$BIN/libgpu_decode_plugin.so" --isolate never --suite ci --quiet --report "$OUT/in_process.json"
t "$P" run --kernel "$BIN/libgpu_decode_plugin.so" --isolate external --suite ci --quiet --report "$OUT/worker.json"
t compute-sanitizer --tool memcheck --error-exitcode 9 "$BIN/gpu_test" --gtest_filter=-*CapabilitySweep*
t compute-sanitizer --tool memcheck --error-exitcode 9 "$P" run --kernel "$BIN/libgpu_decode_plugin.so" --isolate never \
  --suite smoke --quiet --report "$OUT/memcheck_plugin.json"
t "$P" bench --backend gpu --kernel "$BIN/libgpu_decode_plugin.so" --isolate never --paths v1,hip,asm \
  --models llama33_70b_tp1,qwen35_397b_tp1,gpt_oss_tp1 --concurrency 1,16,64,256 --report "$OUT/bench.json"
grep "^===" "$L"
