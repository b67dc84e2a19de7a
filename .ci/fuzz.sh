#!/usr/bin/env bash
# libFuzzer runs of the readers of untrusted text (fuzz/README.md): case JSON, reports and
# `.partial` files, worker protocol lines, each under ASan+UBSan for a fixed time, seeded from
# the repository's own cases, reports and protocol examples.
#   bash .ci/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]    default: 60 s each, every target
# Exit 1 when a target finds an input that crashes it (saved under build/fuzz/findings/TARGET/;
# add it to fuzz/regressions/TARGET/ with the fix), 2 when the targets cannot be built.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(case_reader report_reader worker_protocol)

if ! command -v clang++ > /dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clang > /dev/null
fi
cmake -S . -B build/fuzz -G Ninja -DPACHECK_GPU=off -DPACHECK_BUILD_TESTS=OFF -DPACHECK_BUILD_BENCH=OFF \
  -DPACHECK_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" > /dev/null || exit 2
cmake --build build/fuzz -j2 --target "${targets[@]/#/fuzz_}" || exit 2

# Seeds from the repository: what each reader meets in real use, and every past finding.
seeds() {
  case "$1" in
    case_reader) echo regression/cases fuzz/corpus/case_reader ;;
    report_reader) echo fuzz/corpus/report_reader ;;
    worker_protocol) echo fuzz/corpus/worker_protocol ;;
  esac
  echo "fuzz/regressions/$1"
}

export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1
# One target's run; its exit status says whether it found something.
fuzz_one() {
  local t=$1 work=build/fuzz/corpus/$1 findings=build/fuzz/findings/$1 log=build/fuzz/$1.log
  mkdir -p "$work" "$findings"
  # -timeout=30: a 2-core machine under load once stalled one 0.1 s input past 10 s (ASan returning
  # memory to the OS); a real hang still fails. -max_len: the deepest seed (150 KB of brackets) would otherwise set it; 64 KB still nests 32k deep.
  if build/fuzz/fuzz/fuzz_"$t" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -max_len=65536 \
       -print_final_stats=1 -artifact_prefix="$findings/" "$work" $(seeds "$t") > "$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz: $t: $execs executions in ${secs} s, no finding"
  else
    echo "fuzz: $t: FINDING (inputs in $findings/; replay: build/fuzz/fuzz/fuzz_$t FILE)" >&2
    grep -m1 -A20 -E "ERROR: |runtime error|fuzz property failed" "$log" >&2 || tail -30 "$log" >&2
    return 1
  fi
}
# Each target is one single-threaded process: as many run at once as there are cores.
cores=$(nproc)
failed=0
running=0
for t in "${targets[@]}"; do
  if [ $running -ge "$cores" ]; then
    wait -n || failed=$((failed + 1))
    running=$((running - 1))
  fi
  fuzz_one "$t" &
  running=$((running + 1))
done
while [ $running -gt 0 ]; do
  wait -n || failed=$((failed + 1))
  running=$((running - 1))
done
[ $failed -eq 0 ] || exit 1
