#pragma once
// What both reshape_and_cache implementations (host twin and GPU kernel) start from: the case's
// logical K/V as [T, Hkv, D] and [T, Hkv, Dv] fp32 rows, a slot mapping (slot = page * B + token-in-page, -1 for a
// skipped token), and a freshly poisoned output pool in the case's layout and scale mode.
#include <cmath>
#include <vector>

#include "inputs/inputs.hpp"

namespace pa {

struct CacheWriteJob {
  std::vector<float> key, value;  // [T, Hkv, D] and [T, Hkv, Dv]
  std::vector<int64_t> slots;     // [T]
  int64_t tokens = 0;
};

/// Fills `out` with the case's layouts and sizes, poisoned caches, NaN per-token scales (the
/// writer computes them) and the given per-tensor scale, and returns the rows to write.
inline CacheWriteJob prepare_cache_write(const Inputs& in, const std::vector<bool>& skip, PhysicalKv& out) {
  const Case& c = in.c;
  out = pack(in);  // layouts, sizes and per-tensor scales; the caches are re-poisoned below
  const int32_t eb = dtype_bytes(c.kv_dtype);
  const uint16_t poison = uint16_t(codec::poison_code(c.kv_dtype));
  for (auto* buf : {&out.k_cache, &out.v_cache})
    for (int64_t i = 0; i < int64_t(buf->size()) / eb; ++i) store_code(*buf, eb, i, poison);
  if (is_per_token(c.kv_scale))
    for (auto* sc : {&out.k_scales, &out.v_scales})
      for (auto& v : *sc) v = std::nanf("");
  CacheWriteJob job;
  job.tokens = in.k.token_base.back();
  const int32_t H = c.num_kv_heads, D = c.head_size, Dv = c.dv();
  job.key.resize(size_t(job.tokens * H * D));
  job.value.resize(size_t(job.tokens * H * Dv));
  job.slots.resize(size_t(job.tokens));
  for (int32_t s = 0; s < c.num_seqs; ++s)
    for (int32_t t = 0; t < in.context_lens[size_t(s)]; ++t) {
      const int64_t row = in.k.row(s, t);
      job.slots[size_t(row)] = skip[size_t(row)] ? -1 : int64_t(in.page_of(s, t)) * c.block_size + t % c.block_size;
      for (int32_t h = 0; h < H; ++h) {
        for (int32_t d = 0; d < D; ++d) job.key[size_t((row * H + h) * D + d)] = float(in.k.value(s, t, h, d));
        for (int32_t d = 0; d < Dv; ++d) job.value[size_t((row * H + h) * Dv + d)] = float(in.v.value(s, t, h, d));
      }
    }
  return job;
}

}  // namespace pa
