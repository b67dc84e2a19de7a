#pragma once
// The one way the input-generation property tests draw a case's formats: any seed, any layout,
// any cache dtype (e5m2 included) and either 16-bit query dtype. Shapes stay each test's own.
#include <cstdint>

#include <rapidcheck.h>

#include "core/case.hpp"

namespace pa::test {

/// Draws c's seed, KV layout, KV dtype and q dtype (inside a RapidCheck property or generator).
inline void draw_formats(Case& c) {
  c.seed = *rc::gen::arbitrary<uint64_t>();
  c.kv_layout = *rc::gen::element(KvLayout::nhd, KvLayout::hnd, KvLayout::vllm, KvLayout::shuffled);
  c.kv_dtype = *rc::gen::element(DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz, DType::fp8_e5m2,
                                 DType::int8);
  c.q_dtype = *rc::gen::element(DType::bf16, DType::fp16);
}

}  // namespace pa::test
