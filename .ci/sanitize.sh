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
for t in "${tests[@]}"; do
  echo "sanitize: $t"
  build/asan/$t --gtest_brief=1
done
echo "sanitize: ${#tests[@]} test programs clean under ASan+UBSan in $(( $(date +%s) - start )) s"
