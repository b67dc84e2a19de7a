#pragma once
// The one way a test spells a small hand-made case: its shape in one call, the fields a test is
// about set after it. Every field not named keeps Case's default (q_len 1, bf16, nhd, no scale,
// partition 256, no options), so a test reads as the difference from the plainest case.
#include <cstdint>
#include <utility>
#include <vector>

#include "core/case.hpp"

namespace pa::test {

/// A case of `contexts.size()` sequences with these context lengths, heads, head size and page
/// size, drawn from `seed`.
inline Case shaped_case(uint64_t seed, std::vector<int32_t> contexts, int32_t q_heads, int32_t kv_heads,
                        int32_t head_size, int32_t block_size = 16) {
  Case c;
  c.seed = seed;
  c.num_seqs = int32_t(contexts.size());
  c.context_lens = std::move(contexts);
  c.num_q_heads = q_heads;
  c.num_kv_heads = kv_heads;
  c.head_size = head_size;
  c.block_size = block_size;
  return c;
}

/// The same with the cache's dtype, scale mode and layout.
inline Case shaped_case(uint64_t seed, std::vector<int32_t> contexts, int32_t q_heads, int32_t kv_heads,
                        int32_t head_size, int32_t block_size, DType kv, ScaleMode scale,
                        KvLayout layout = KvLayout::nhd) {
  Case c = shaped_case(seed, std::move(contexts), q_heads, kv_heads, head_size, block_size);
  c.kv_dtype = kv;
  c.kv_scale = scale;
  c.kv_layout = layout;
  return c;
}

/// The benchmarks' Llama-3.3-70B decode step at TP1 (Hq = 64, Hkv = 8, D = 128, pages of 16,
/// bf16 KV): `seqs` sequences of `ctx` tokens.
inline Case llama70b_case(int32_t seqs, int32_t ctx) {
  Case c = shaped_case(Case{}.seed, std::vector<int32_t>(size_t(seqs), ctx), 64, 8, 128, 16);
  c.name = "llama-3.3-70b-tp1";
  return c;
}

}  // namespace pa::test
