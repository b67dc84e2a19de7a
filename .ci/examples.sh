#!/usr/bin/env bash
# The kernel plug-in examples, built the way a stranger builds them (docs/plugins.md):
#   (a) install pacheck's kernel ABI (header + package config) into a temporary prefix -- the
#       Development component needs a configured tree only, nothing is compiled;
#   (b) build examples/cpu_kernel_plugin against that prefix, normal and -DPLANT_BUG=ON;
#   (c) compile-check examples/gpu_kernel_plugin for NVIDIA sm_90 (nvcc) and AMD gfx90a + gfx940
#       (Debian's hipcc), normal and planted-bug, as object files;
#   (d) when the pacheck program is built (PACHECK=..., default build/host/tools/pacheck), put the
#       CPU plug-ins under test through the CLI; every command prints what it runs and the exit
#       code it expects, and the script fails if any differs.
# Installs nothing: a missing compiler is an error naming it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
HIPCC=${HIPCC:-$(command -v hipcc || echo /usr/bin/hipcc)}
PACHECK=${PACHECK:-build/host/tools/pacheck}
for tool in "$NVCC" "$HIPCC"; do
  [ -x "$tool" ] || { echo "examples: $tool not found (CI installs hipcc; nvcc is /usr/local/cuda/bin/nvcc)" >&2; exit 1; }
done
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)

# ---- (a) the kernel ABI, installed ------------------------------------------------------------------
cmake -S . -B "$tmp/abi" "${gen[@]}" -DPACHECK_GPU=off -DPACHECK_BUILD_TESTS=OFF -DPACHECK_BUILD_BENCH=OFF \
  > "$tmp/abi.log" || { cat "$tmp/abi.log"; exit 1; }
cmake --install "$tmp/abi" --prefix "$tmp/prefix" --component Development > /dev/null
for f in include/pacheck/kernel_abi.h lib/cmake/pacheck/pacheckConfig.cmake lib/cmake/pacheck/pacheckConfigVersion.cmake; do
  [ -f "$tmp/prefix/$f" ] || { echo "examples: (a) the install lacks $f" >&2; exit 1; }
done
echo "examples: (a) kernel ABI installed to a temporary prefix"

# ---- (b) the CPU example against the install ----------------------------------------------------------
for variant in ok bug; do
  plant=OFF
  [ "$variant" = bug ] && plant=ON
  cmake -S examples/cpu_kernel_plugin -B "$tmp/cpu-$variant" "${gen[@]}" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
    -DPLANT_BUG=$plant > "$tmp/cpu-$variant.log" || { cat "$tmp/cpu-$variant.log"; exit 1; }
  cmake --build "$tmp/cpu-$variant" >> "$tmp/cpu-$variant.log" || { cat "$tmp/cpu-$variant.log"; exit 1; }
  # The one symbol pacheck looks for, and nothing else of ours, is exported.
  nm -D --defined-only "$tmp/cpu-$variant/libcpu_decode_plugin.so" | grep -q ' T pacheck_kernels$' ||
    { echo "examples: (b) libcpu_decode_plugin.so ($variant) does not export pacheck_kernels" >&2; exit 1; }
done
cpu_so="$tmp/cpu-ok/libcpu_decode_plugin.so"
bug_so="$tmp/cpu-bug/libcpu_decode_plugin.so"
echo "examples: (b) examples/cpu_kernel_plugin built against the install (normal and PLANT_BUG=ON)"

# ---- (c) the GPU example, both vendors ------------------------------------------------------------------
src=examples/gpu_kernel_plugin/gpu_decode_plugin.hip
pids=()
for bug in 0 1 2 3 4; do
  "$NVCC" -std=c++17 -arch=sm_90 -x cu -Xcompiler=-fPIC,-Wall,-Wextra -I"$tmp/prefix/include" \
    -DGPU_DECODE_PLANT_BUG=$bug -c "$src" -o "$tmp/gpu$bug.cuda.o" &
  pids+=($!)
  "$HIPCC" -std=c++17 -x hip --offload-arch=gfx90a --offload-arch=gfx940 -fPIC -Wall -Wextra -Werror \
    -I"$tmp/prefix/include" -DGPU_DECODE_PLANT_BUG=$bug -c "$src" -o "$tmp/gpu$bug.hip.o" &
  pids+=($!)
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
[ "$fail" = 0 ] || { echo "examples: (c) gpu_kernel_plugin compile checks FAILED" >&2; exit 1; }
echo "examples: (c) examples/gpu_kernel_plugin compiled for sm_90 (nvcc) and gfx90a;gfx940 (hipcc)"

# ---- (d) the CLI on the CPU plug-ins -----------------------------------------------------------------
if [ ! -x "$PACHECK" ]; then
  echo "examples: (d) skipped: $PACHECK is not built (set PACHECK=path/to/pacheck)"
  echo "examples: done in $(( $(date +%s) - start )) s"
  exit 0
fi
failures=0
ran_ok=0
# expect CODE NAME CMD...: runs CMD with its output in $tmp/NAME.log; ran_ok=1 when the exit code is CODE.
expect() {
  local want=$1 name=$2
  shift 2
  echo "examples: (d) \$ $* # expect exit $want"
  set +e
  "$@" > "$tmp/$name.log" 2>&1
  local got=$?
  set -e
  if [ "$got" = "$want" ]; then
    ran_ok=1
    echo "examples: (d)   ok: exit $got"
  else
    ran_ok=0
    failures=$((failures + 1))
    echo "examples: (d)   FAILED: exit $got, expected $want; last lines of its output:"
    tail -n 15 "$tmp/$name.log" | sed 's/^/      /'
  fi
}
bad() { failures=$((failures + 1)); echo "examples: (d)   FAILED: $*"; }

# 1. The plug-in's declaration is listed.
expect 0 kernels "$PACHECK" kernels --kernel "$cpu_so"
[ "$ran_ok" = 1 ] && { grep -q cpu_decode "$tmp/kernels.log" || bad "'pacheck kernels' does not list cpu_decode"; }

# 2. The correct kernel passes the ci suite (cases outside its capability are declined, not failed).
expect 0 run "$PACHECK" run --kernel "$cpu_so" --suite ci --report "$tmp/r.json"
[ "$ran_ok" = 1 ] && { [ -s "$tmp/r.json" ] || bad "no report at $tmp/r.json"; }

# 3. The planted bug is found, shrunk to <= 2 sequences, and its replay line reproduces it.
expect 1 check "$PACHECK" check --kernel "$bug_so" --no-capture
replay=$(grep -m1 -o 'pacheck replay .*' "$tmp/check.log" || true)
if [ -z "$replay" ]; then
  bad "'pacheck check' printed no 'pacheck replay' line"
else
  seqs=$(grep -o '"num_seqs": *[0-9]*' <<< "$replay" | grep -o '[0-9]*$' || true)
  [ -n "$seqs" ] && [ "$seqs" -le 2 ] || bad "the shrunk case has num_seqs='${seqs}' (want <= 2): $replay"
  args=${replay#pacheck }
  case "$args" in *--kernel*) ;; *) args="$args --kernel '$bug_so'" ;; esac
  expect 1 replay bash -c "'$PACHECK' $args"
fi

# 4. Every mutant of the correct kernel is caught.
expect 0 mutate "$PACHECK" mutate --kernel "$cpu_so"
[ "$ran_ok" = 1 ] && { grep -q '100 %' "$tmp/mutate.log" || bad "'pacheck mutate' does not report 100 %"; }

[ "$failures" = 0 ] || { echo "examples: $failures CLI check(s) FAILED" >&2; exit 1; }
echo "examples: done in $(( $(date +%s) - start )) s"
