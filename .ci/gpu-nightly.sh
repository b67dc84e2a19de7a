#!/usr/bin/env bash
# The nightly hardware run: every GPU-facing suite, from a directory of binaries built with a GPU
# preset (cuda or rocm), in a checkout of this repository (corpus, goldens and adapters are read
# from it).
#
#   bash .ci/gpu-nightly.sh BIN_DIR OUT_DIR [all|tests|plugins|suite|alarms|sanitize|bench]
#
# tests:    the gpu tests (capability sweep, entry, mutation catalogue incl. the GPU known-bad
#           kernels; inputs made on the GPU byte for byte; the GPU oracle against the CPU one; the
#           device path's verdicts against the host path's), every GPU kernel against the goldens,
#           the ci suite report
# plugins:  the GPU example plug-in (run, check, its planted bug), the torch adapter (run, check, a
#           planted-bug copy), and the worker's per-case overhead against in-process
# suite:    `pacheck run --suite nightly` with its throughput and wall-time split, at -j 1 and -j $JOBS
# alarms:   the nightly suite under fresh seeds for ALARM_SECONDS (default 240) at -j $JOBS: every
#           record must pass, and .ci/metric-fractions.py prints how close each aggregate and LSE
#           check came to its threshold
# sanitize: compute-sanitizer memcheck/racecheck on the gpu tests, the device inputs and oracle,
#           and the GPU plug-in
# bench:    `pacheck bench` over the built-in kernels and the GPU example plug-in
# BIN_DIR holds pacheck, gpu_test, entry_gpu_test, mutation_gpu_test, core_inputs_device_test,
# reference_attention_device_test, testbed_gpu_test, isolation_parity_test and the plug-ins
# libgpu_decode_plugin.so / libgpu_decode_plugin_bug.so / libpacheck_sticky_fault_plugin.so. OUT_DIR receives run.log and the reports.
# Exit status: 0 when every step passed, 1 otherwise.
set -u
BIN=${1:?usage: bash .ci/gpu-nightly.sh BIN_DIR OUT_DIR [part]}
OUT=${2:?usage: bash .ci/gpu-nightly.sh BIN_DIR OUT_DIR [part]}
PART=${3:-all}
case "$PART" in all|tests|plugins|suite|alarms|sanitize|bench) ;; *) echo "unknown part '$PART'" >&2; exit 2 ;; esac
JOBS=${JOBS:-$(nproc)}
want() { [ "$PART" = all ] || [ "$PART" = "$1" ]; }
mkdir -p "$OUT"
export PACHECK_SOURCE_DIR="${PACHECK_SOURCE_DIR:-$(pwd)}"
export PACHECK_PYTHON="${PACHECK_PYTHON:-python3}"
LOG="$OUT/run.log"
: >> "$LOG"
failed=0
P="$BIN/pacheck"

step() {  # step NAME EXPECTED_RC TIMEOUT_S COMMAND...
  local name=$1 want_rc=$2 limit=$3
  shift 3
  local t0=$SECONDS
  echo "=== $name: $*" | tee -a "$LOG"
  timeout "$limit" "$@" >> "$LOG" 2>&1
  local rc=$?
  [ $rc -ne "$want_rc" ] && failed=1
  echo "=== $name: rc=$rc (expected $want_rc) in $((SECONDS - t0)) s" | tee -a "$LOG"
}

nvidia-smi -L >> "$LOG" 2>&1 || rocm-smi --showproductname >> "$LOG" 2>&1
if want tests; then
  step gpu_test 0 240 "$BIN/gpu_test"
  step inputs_device_test 0 240 "$BIN/core_inputs_device_test"
  step oracle_device_test 0 240 "$BIN/reference_attention_device_test"
  step testbed_gpu_test 0 300 "$BIN/testbed_gpu_test"
  step entry_gpu_test 0 120 "$BIN/entry_gpu_test"
  step mutation_gpu_test 0 240 "$BIN/mutation_gpu_test"
  step goldens_gpu 0 240 "$P" fixtures verify --gpu
  step pacheck_ci 0 180 "$P" run --suite ci --backend gpu --quiet --report "$OUT/ci.json"
  step mutate_gpu 0 240 "$P" mutate --backend gpu --cases 40
  # A sticky device fault ends its worker, not the run; a device kernel writing its input is caught.
  [ -x "$BIN/isolation_parity_test" ] && step sticky_fault 0 120 env PACHECK_BIN="$P" \
    PACHECK_STICKY_PLUGIN="$BIN/libpacheck_sticky_fault_plugin.so" "$BIN/isolation_parity_test" --gtest_filter='StickyFault.*:DeviceIntegrity.*'

fi
if want plugins; then
  G="$BIN/libgpu_decode_plugin.so"
  step plugin_ci 0 180 "$P" run --kernel "$G" --suite ci --quiet --report "$OUT/plugin_ci.json"
  step plugin_check 0 240 "$P" check --kernel "$G" --cases 100 --seed 1 --no-capture
  step plugin_bug_check 1 240 "$P" check --kernel "$BIN/libgpu_decode_plugin_bug.so" --cases 100 --seed 1 --no-capture
  step plugin_mutate 0 240 "$P" mutate --kernel "$G" --cases 60
  # The worker's per-case overhead: the same kernel and cases in process and through the worker.
  step overhead_never 0 180 "$P" run --kernel "$G" --isolate never --suite ci --quiet --report "$OUT/in_process.json"
  step overhead_worker 0 180 "$P" run --kernel "$G" --isolate external --suite ci --quiet --report "$OUT/worker.json"
  # The torch adapter on pacheck's device buffers (IPC), and on the host-buffer fallback.
  step torch_ci 0 240 "$P" run --kernel "py:adapters/torch_sdpa.py" --suite ci --quiet --report "$OUT/torch_ci.json"
  step torch_ci_host_buffers 0 240 env PACHECK_HOST_BUFFERS=1 "$P" run --kernel "py:adapters/torch_sdpa.py" --suite ci \
    --quiet --report "$OUT/torch_ci_host.json"
  step torch_check 0 240 "$P" check --kernel "py:adapters/torch_sdpa.py" --cases 60 --seed 1 --no-capture
  # A copy with a planted bug: the softmax scale 5 % off (the class of a dropped custom scale).
  sed 's/^    scale = pa.softmax_scale(p)$/&  * 1.05/' adapters/torch_sdpa.py \
    > "$OUT/torch_sdpa_bug.py"
  grep -q '\* 1.05' "$OUT/torch_sdpa_bug.py" || { echo "planting the torch bug failed" | tee -a "$LOG"; failed=1; }
  step torch_bug_check 1 240 "$P" check --kernel "py:$OUT/torch_sdpa_bug.py" --properties reference --cases 60 --seed 1 --no-capture
fi
if want suite; then
  step pacheck_nightly 0 400 "$P" run --suite nightly --backend gpu --quiet --report "$OUT/nightly.json"
  step pacheck_nightly_jobs 0 400 "$P" run --suite nightly --backend gpu -j "$JOBS" --quiet --report "$OUT/nightly_j.json"
fi
if want alarms; then
  end=$((SECONDS + ${ALARM_SECONDS:-240}))
  seed=1000
  reports=()
  while [ $SECONDS -lt $end ]; do
    step "alarms_seed_$seed" 0 400 "$P" run --suite nightly --seed $seed --backend gpu -j "$JOBS" --quiet \
      --report "$OUT/alarms_$seed.json"
    reports+=("$OUT/alarms_$seed.json")
    seed=$((seed + 1))
  done
  step fractions 0 120 python3 .ci/metric-fractions.py "${reports[@]}"
fi
if want sanitize && command -v compute-sanitizer > /dev/null; then
  step memcheck 0 300 compute-sanitizer --tool memcheck --error-exitcode 9 --log-file "$OUT/memcheck.log" "$BIN/gpu_test"
  step memcheck_inputs 0 300 compute-sanitizer --tool memcheck --error-exitcode 9 --log-file "$OUT/memcheck_inputs.log" \
    "$P" run --suite smoke --backend gpu --inputs device --quiet --report "$OUT/memcheck_inputs.json"
  step racecheck_oracle 0 300 compute-sanitizer --tool racecheck --error-exitcode 9 --log-file "$OUT/racecheck_oracle.log" \
    "$P" run --suite smoke --backend gpu --inputs device --quiet --report "$OUT/racecheck_oracle.json"
  step racecheck 0 240 compute-sanitizer --tool racecheck --error-exitcode 9 --log-file "$OUT/racecheck.log" \
    "$BIN/gpu_test" --gtest_filter=-*CapabilitySweep*
  step memcheck_plugin 0 240 compute-sanitizer --tool memcheck --error-exitcode 9 --log-file "$OUT/memcheck_plugin.log" \
    "$P" run --kernel "$BIN/libgpu_decode_plugin.so" --isolate never --suite ci --quiet --report "$OUT/memcheck_plugin.json"
  # The torch adapter in its worker, on pacheck's shared device buffers.
  step memcheck_torch 0 400 compute-sanitizer --tool memcheck --target-processes all --error-exitcode 9 \
    --log-file "$OUT/memcheck_torch.log" "$P" run --kernel "py:adapters/torch_sdpa.py" --suite smoke --quiet \
    --report "$OUT/memcheck_torch.json"
  # The built-in kernels through the one crossing (guarded device buffers, the explicit stream).
  step memcheck_builtin_ci 0 300 compute-sanitizer --tool memcheck --error-exitcode 9 --log-file "$OUT/memcheck_builtin.log" \
    "$P" run --suite ci --backend gpu --quiet --report "$OUT/memcheck_builtin.json"
fi
if want bench; then
  step bench 0 500 "$P" bench --backend gpu --kernel "$BIN/libgpu_decode_plugin.so" --isolate never --paths v1,hip,asm \
    --models llama33_70b_tp1,qwen35_397b_tp1,gpt_oss_tp1 --report "$OUT/bench.json"
fi
echo "=== nightly: $([ $failed -eq 0 ] && echo PASS || echo FAIL)" | tee -a "$LOG"
exit $failed
