#pragma once
// The arguments every Llama-3.3-70B benchmark runs with: 8 sequences of 4096 tokens and one of
// 128k (testing/case_shape.hpp llama70b_case), each on 1 and 2 threads, in wall milliseconds.
#include <benchmark/benchmark.h>

namespace pa::test {

inline void llama70b_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"seqs", "ctx", "threads"})
      ->ArgsProduct({{8}, {4096}, {1, 2}})
      ->ArgsProduct({{1}, {131072}, {1, 2}})
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace pa::test
