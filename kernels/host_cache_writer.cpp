// Host twin of reshape_and_cache (cache_writer.hip): the same per-row quantisation through the
// same PageLayout, ScaleLayout and codecs. Per-token scale = amax / format max of the (token,
// head) row (1 for an all-zero row), stored at the physical slot; per-tensor: x / scale[0].
#include <algorithm>
#include <cmath>

#include "kernels/cache_write_job.hpp"
#include "kernels/common/dispatch.hpp"
#include "kernels/cache_writer.hpp"

namespace pa {

namespace {
template <DType KV>
void write_row(const float* x, std::vector<uint8_t>& cache, std::vector<float>& scales, const PageLayout& L,
               const ScaleLayout& sl, int64_t blk, int32_t h, int32_t tok, int32_t D) {
  float scale = 1.f;
  if (is_per_token(sl.mode)) {
    float amax = 0.f;
    for (int32_t d = 0; d < D; ++d) amax = std::max(amax, std::fabs(x[d]));
    scale = amax > 0.f ? amax / codec::max_finite(KV) : 1.f;
    scales[size_t(sl(blk, h, tok))] = scale;
  } else if (sl.mode == ScaleMode::per_tensor) {
    scale = scales[0];
  }
  for (int32_t d = 0; d < D; ++d)
    store_code(cache, dtype_bytes(KV), L(blk, h, tok, d), uint16_t(codec::Codec<KV>::encode(x[d] / scale)));
}
}  // namespace

std::string host_write_cache(const Inputs& in, const std::vector<bool>& skip, PhysicalKv& out) {
  const Case& c = in.c;
  if (c.kv_scale == ScaleMode::per_head) return "reshape_and_cache: per_head scales are not written by this writer";
  if (is_mla(c.kv_layout))
    return std::string("reshape_and_cache: kv_layout=") + to_string(c.kv_layout) +
           " is a latent (MLA) cache, which this writer does not write";
  const CacheWriteJob job = prepare_cache_write(in, skip, out);
  const int32_t H = c.num_kv_heads, D = c.head_size, Dv = c.dv();
  std::string err;
  PA_DISPATCH_KV_DTYPE(c.kv_dtype, KV, { err = "reshape_and_cache: unsupported kv dtype"; },
    for (int64_t t = 0; t < job.tokens; ++t) {
      const int64_t slot = job.slots[size_t(t)];
      if (slot < 0) continue;  // padding token: nothing written
      const int64_t blk = slot / c.block_size;
      const int32_t tok = int32_t(slot - blk * c.block_size);
      for (int32_t h = 0; h < H; ++h) {
        write_row<KV>(&job.key[size_t((t * H + h) * D)], out.k_cache, out.k_scales, out.k_layout, out.scale_layout, blk,
                      h, tok, D);
        write_row<KV>(&job.value[size_t((t * H + h) * Dv)], out.v_cache, out.v_scales, out.v_layout, out.scale_layout,
                      blk, h, tok, Dv);
      }
    })
  return err;
}

}  // namespace pa
