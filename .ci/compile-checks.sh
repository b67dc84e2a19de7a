#!/usr/bin/env bash
# Compile checks that keep both vendors' builds alive: every kernel source for NVIDIA
# sm_90 with nvcc and for AMD gfx90a + gfx940 with Debian's hipcc. PA_KERNELS_MINIMAL keeps one
# template instantiation per kernel (bf16), so this costs seconds, not minutes. Installs nothing:
# a missing compiler is an error naming it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
HIPCC=${HIPCC:-$(command -v hipcc || echo /usr/bin/hipcc)}
SOURCES=(kernels/attention.hip kernels/cache_writer.hip kernels/crossing_device.hip kernels/builtin_gpu.hip bench/timing_device.hip
         testing/known_bad/known_bad_gpu.hip
         inputs/inputs_device.hip core/device_pool.hip reference/attention_device.hip)
for tool in "$NVCC" "$HIPCC"; do
  [ -x "$tool" ] || { echo "compile-checks: $tool not found (CI installs hipcc; nvcc is /usr/local/cuda/bin/nvcc)" >&2; exit 1; }
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
pids=()
for src in "${SOURCES[@]}"; do
  name=$(basename "$src" .hip)
  "$NVCC" -std=c++17 -arch=sm_90 --fmad=false --default-stream=per-thread -I. -Iinclude -DPA_KERNELS_MINIMAL -x cu -c "$src" \
    -o "$out/$name.cuda.o" &
  pids+=($!)
  "$HIPCC" -std=c++17 -x hip --offload-arch=gfx90a --offload-arch=gfx940 -ffp-contract=off -fgpu-default-stream=per-thread -I. -Iinclude \
    -DPA_KERNELS_MINIMAL -c "$src" -o "$out/$name.hip.o" &
  pids+=($!)
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
[ "$fail" = 0 ] || { echo "compile-checks: FAILED" >&2; exit 1; }
echo "compile-checks: ${#SOURCES[@]} kernel sources built for sm_90 (nvcc) and gfx90a;gfx940 (hipcc) in $(( $(date +%s) - start )) s"
