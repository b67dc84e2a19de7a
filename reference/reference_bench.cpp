// Throughput of the CPU oracle on a Llama-3.3-70B-shaped decode step (TP1: Hq = 64, Hkv = 8,
// D = 128, bf16 KV): 8 sequences of 4096 tokens, and one sequence of 128k tokens; each on 1 and
// 2 threads (set_reference_threads; the results are the same bits either way). Counters: KV
// tokens x KV heads per second (Hkv * sum(ctx) / s, each K/V row decoded once) and KV tokens x
// query heads per second (Hq * sum(ctx) / s, each row read by G query heads).
#include <benchmark/benchmark.h>

#include "core/case.hpp"
#include "inputs/inputs.hpp"
#include "reference/attention.hpp"
#include "testing/case_shape.hpp"
#include "testing/llama_bench.hpp"

namespace {

using pa::test::llama70b_case;

void BM_ReferenceLlama70b(benchmark::State& state) {
  const pa::Inputs in =
      pa::make_inputs(llama70b_case(int32_t(state.range(0)), int32_t(state.range(1))));
  pa::set_reference_threads(int(state.range(2)));
  int64_t tokens = 0;
  for (int32_t ctx : in.context_lens) tokens += ctx;
  for (auto _ : state) {
    pa::ReferenceResult r = pa::reference_attention(in);
    benchmark::DoNotOptimize(r.out.data());
  }
  pa::set_reference_threads(0);
  const double iters = double(state.iterations());
  state.counters["kv_tok_heads/s"] =
      benchmark::Counter(iters * double(tokens) * in.c.num_kv_heads, benchmark::Counter::kIsRate);
  state.counters["q_tok_heads/s"] =
      benchmark::Counter(iters * double(tokens) * in.c.num_q_heads, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ReferenceLlama70b)->Apply(pa::test::llama70b_args);

}  // namespace

BENCHMARK_MAIN();
