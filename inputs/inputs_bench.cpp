// Cost of regenerating and packing a case's inputs (make_inputs + pack), which on a GPU machine is
// most of pacheck's wall time. Shapes: the reference bench's Llama-3.3-70B decode step (8
// sequences of 4096 tokens, Hq = 64, Hkv = 8, D = 128, bf16) and one 128k-token sequence of the
// same heads; each on 1 and 2 threads (set_input_threads; the bytes are the same either way).
#include <benchmark/benchmark.h>

#include "core/case.hpp"
#include "inputs/inputs.hpp"
#include "testing/case_shape.hpp"
#include "testing/llama_bench.hpp"

namespace {

using pa::test::llama70b_case;

void BM_MakeInputsPack(benchmark::State& state) {
  const pa::Case c = llama70b_case(int32_t(state.range(0)), int32_t(state.range(1)));
  pa::set_input_threads(int(state.range(2)));
  for (auto _ : state) {
    const pa::Inputs in = pa::make_inputs(c);
    const pa::PhysicalKv p = pa::pack(in);
    benchmark::DoNotOptimize(p.k_cache.data());
  }
  pa::set_input_threads(0);
}
BENCHMARK(BM_MakeInputsPack)->Apply(pa::test::llama70b_args);

}  // namespace

BENCHMARK_MAIN();
