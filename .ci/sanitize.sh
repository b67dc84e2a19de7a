#!/usr/bin/env bash
# The host twins, dispatcher, testbed and property suite under AddressSanitizer + UBSan: a memory
# bug in the systems under test is reported here, with a stack, instead of surfacing as a rare
# segfault of a property run (as a heap over-read in the hip twin once did).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$(date +%s)
cmake -S . -B build/asan -G Ninja -DPACHECK_GPU=off -DPACHECK_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" > /dev/null
tests=(kernels/partial_test kernels/host_twins_test dispatch/entry_test
       inputs/core_inputs_property_test regression/regression_corpus_test regression/mutation_test
       property/property_suite_test property/property_verdict_classes_test)
cmake --build build/asan -j2 --target "${tests[@]##*/}"
export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1
export PACHECK_PROPERTY_SCALE=0.3  # the full counts run unsanitized in the main test job
# Each program is single-threaded: as many run at once as there are cores, each into its own log,
# printed whole when it fails.
sanitize_one() {
  local log=build/asan/$(basename "$1").log
  if build/asan/"$1" --gtest_brief=1 > "$log" 2>&1; then
    echo "sanitize: $1 clean"
  else
    echo "sanitize: $1 FAILED" >&2
    cat "$log" >&2
    return 1
  fi
}
export -f sanitize_one
printf '%s\n' "${tests[@]}" | xargs -P "$(nproc)" -I{} bash -c 'sanitize_one {}'
echo "sanitize: ${#tests[@]} test programs clean under ASan+UBSan in $(( $(date +%s) - start )) s"
