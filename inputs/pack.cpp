// pack and gather: the logical inputs laid out in a kernel's physical cache (through the page and
// scale layouts) and read back, the two directions of one map.
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "inputs/inputs.hpp"
#include "inputs/inputs_parts.hpp"

namespace pa {

namespace {

// Writes every valid token's codes and scales in (s, t, h, d) order; later writes win. The byte
// definition of pack, used as is when two table entries share a page (only hand-made inputs do).
void scatter_tokens(const Inputs& in, PhysicalKv& p, bool scales) {
  const Case& c = in.c;
  const int32_t eb = dtype_bytes(c.kv_dtype);
  const PagedLayout K = in.paged(p.k_layout), V = in.paged(p.v_layout);
  const int32_t k0 = k_from_v(c.kv_layout, c.dv());  // K's columns [k0, D) are the K cache's
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    for (int32_t t = 0; t < in.context_lens[size_t(s)]; ++t) {
      const int32_t blk = K.block_of(s, t), tok = K.slot_of(t);
      for (int32_t h = 0; h < c.num_kv_heads; ++h) {
        if (!scales) {
          for (int32_t d = 0; d < p.k_layout.head_size; ++d)
            store_code(p.k_cache, eb, K(s, t, h, d), in.k.code(s, t, h, k0 + d));
          if (c.kv_layout != KvLayout::mla_joint)  // the joint V cache is the K cache's copy (share_joint_cache)
            for (int32_t d = 0; d < c.dv(); ++d) store_code(p.v_cache, eb, V(s, t, h, d), in.v.code(s, t, h, d));
        } else {
          const int64_t si = p.scale_layout(blk, h, tok);
          p.k_scales[size_t(si)] = in.k.scale(s, t, h);
          p.v_scales[size_t(si)] = in.v.scale(s, t, h);
        }
      }
    }
  }
}

// Elements [lo, hi) of a 1- or 2-byte code buffer := code (store_code's byte order, inlined).
/// @pre eb is 1 or 2; [lo, hi) lies in buf
void fill_codes(uint8_t* buf, int32_t eb, int64_t lo, int64_t hi, uint16_t code) {
  if (eb == 1) {
    std::fill(buf + lo, buf + hi, uint8_t(code));
    return;
  }
  // The two bytes repeated over a small block, then copied block by block.
  uint8_t pattern[256];
  for (int i = 0; i < 128; ++i) {
    pattern[2 * i] = uint8_t(code & 0xFF);
    pattern[2 * i + 1] = uint8_t(code >> 8);
  }
  for (int64_t i = lo; i < hi; i += 128)
    std::memcpy(buf + 2 * i, pattern, size_t(std::min<int64_t>(128, hi - i)) * 2);
}

// Element base + doff[d] := codes[d] for d < D (one head row of one token), in store_code's
// byte order.
/// @pre eb is 1 or 2; contiguous only if doff is 0, 1, ..., D - 1
void scatter_codes(uint8_t* buf, int32_t eb, int64_t base, const int64_t* doff, bool contiguous,
                   const uint16_t* codes, int32_t D) {
  if (eb == 1) {
    for (int32_t d = 0; d < D; ++d) buf[base + doff[d]] = uint8_t(codes[d]);
    return;
  }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (contiguous) {  // little-endian bytes of the codes: a plain copy
    std::memcpy(buf + 2 * base, codes, size_t(D) * 2);
    return;
  }
#endif
  for (int32_t d = 0; d < D; ++d) {
    const int64_t i = base + doff[d];
    buf[2 * i] = uint8_t(codes[d] & 0xFF);
    buf[2 * i + 1] = uint8_t(codes[d] >> 8);
  }
}

// mla_joint: the V cache is the K cache's bytes (V is each row's latent prefix).
void share_joint_cache(const Case& c, PhysicalKv& p) {
  if (c.kv_layout == KvLayout::mla_joint) p.v_cache = p.k_cache;
}

}  // namespace

std::vector<int64_t> detail::page_owners(const Inputs& in) {
  const Case& c = in.c;
  std::vector<int64_t> owner(size_t(std::max<int64_t>(in.num_blocks, 0)), -1);
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    const int32_t nb = c.blocks_for(in.context_lens[size_t(s)]);
    for (int32_t b = 0; b < nb; ++b) {
      const int64_t slot = int64_t(s) * in.max_blocks_per_seq + b;
      const int32_t blk = in.block_tables[size_t(slot)];
      if (blk < 0 || blk >= in.num_blocks || owner[size_t(blk)] >= 0) return {};
      owner[size_t(blk)] = slot;
    }
  }
  return owner;
}

PhysicalKv pack(const Inputs& in) {
  const Case& c = in.c;
  PhysicalKv p;
  p.k_layout = key_layout(c);
  p.v_layout = value_layout(c);
  p.scale_layout = scale_layout(c);
  const int32_t eb = dtype_bytes(c.kv_dtype);
  const int64_t elems = p.k_layout.cosize(in.num_blocks), v_elems = p.v_layout.cosize(in.num_blocks);
  const uint16_t poison = uint16_t(codec::poison_code(c.kv_dtype));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const bool token_scales = is_per_token(c.kv_scale);
  if (v_elems == elems) {
    detail::alloc_two(p.k_cache, p.v_cache, size_t(elems * eb));
  } else {
    p.k_cache.resize(size_t(elems * eb));
    p.v_cache.resize(size_t(v_elems * eb));
  }
  p.k_scales.assign(size_t(p.scale_layout.size()), token_scales ? nan : 1.0f);
  p.v_scales = p.k_scales;
  const std::vector<int64_t> owner = detail::page_owners(in);

  if (owner.empty() && in.num_blocks > 0) {
    for (auto* buf : {&p.k_cache, &p.v_cache})
      for (int64_t i = 0; i < int64_t(buf->size()) / eb; ++i) store_code(*buf, eb, i, poison);
    scatter_tokens(in, p, false);
    scatter_tokens(in, p, true);
    share_joint_cache(c, p);
    return p;
  }

  // One item per pool page: poison its whole span (page and the padding after it), then write
  // the tokens of the logical page placed there. Every layout is dense within a page's span and
  // pages are owned by at most one table entry, so items write disjoint bytes, and each byte ends
  // up as the sequential scatter leaves it. Per-token scales follow the page too; the shared
  // scale slots of the other modes are written afterwards, sequentially, as before.
  // The K cache holds K's columns [k0, k0 + D) (all of them, but for mla_split's rope part).
  const int32_t B = c.block_size, H = c.num_kv_heads, D = p.k_layout.head_size, Dv = c.dv();
  const int32_t k0 = k_from_v(c.kv_layout, Dv), k_row = c.head_size;
  const bool joint = c.kv_layout == KvLayout::mla_joint;  // V is copied from K at the end
  const int64_t stride = p.k_layout.page_stride, v_stride = p.v_layout.page_stride;
  // The layout formula is a sum of a (blk, h, tok) part and a d part, so an element's offset is
  // L(blk, h, tok, 0) + L(0, 0, 0, d): the d parts are computed once.
  std::vector<int64_t> k_doff(static_cast<size_t>(D)), v_doff(static_cast<size_t>(Dv));
  bool k_contiguous = true, v_contiguous = true;
  for (int32_t d = 0; d < D; ++d) {
    k_doff[size_t(d)] = p.k_layout(0, 0, 0, d);
    k_contiguous = k_contiguous && k_doff[size_t(d)] == d;
  }
  for (int32_t d = 0; d < Dv; ++d) {
    v_doff[size_t(d)] = p.v_layout(0, 0, 0, d);
    v_contiguous = v_contiguous && v_doff[size_t(d)] == d;
  }
  const int threads = elems * 2 < detail::kItemElements ? 1 : input_threads();
  parallel_for(in.num_blocks, threads, [&](int64_t blk, int) {
    const int64_t lo = blk * stride;
    const int64_t hi = blk + 1 == in.num_blocks ? elems : lo + stride;
    fill_codes(p.k_cache.data(), eb, lo, hi, poison);
    const int64_t v_lo = blk * v_stride;
    if (!joint) fill_codes(p.v_cache.data(), eb, v_lo, blk + 1 == in.num_blocks ? v_elems : v_lo + v_stride, poison);
    const int64_t slot = owner[size_t(blk)];
    if (slot < 0) return;
    const int32_t s = int32_t(slot / in.max_blocks_per_seq),
                  b = int32_t(slot % in.max_blocks_per_seq);
    const int32_t ntok = std::min(B, in.context_lens[size_t(s)] - b * B);
    for (int32_t tok = 0; tok < ntok; ++tok) {
      const int64_t r = in.k.row(s, b * B + tok);
      for (int32_t h = 0; h < H; ++h) {
        const size_t rh = size_t(r * H + h);
        scatter_codes(p.k_cache.data(), eb, p.k_layout(blk, h, tok, 0), k_doff.data(), k_contiguous,
                      in.k.codes.data() + rh * size_t(k_row) + size_t(k0), D);
        if (!joint)
          scatter_codes(p.v_cache.data(), eb, p.v_layout(blk, h, tok, 0), v_doff.data(), v_contiguous,
                        in.v.codes.data() + rh * size_t(Dv), Dv);
        if (token_scales) {
          const int64_t si = p.scale_layout(blk, h, tok);
          p.k_scales[size_t(si)] = in.k.scales[rh];
          p.v_scales[size_t(si)] = in.v.scales[rh];
        }
      }
    }
  });
  if (!token_scales) scatter_tokens(in, p, true);
  share_joint_cache(c, p);
  return p;
}

LogicalKv gather(const Inputs& in, const PhysicalKv& p, KvTensor which) {
  const Case& c = in.c;
  const bool key = which == KvTensor::key;
  const PagedLayout paged = in.paged(key ? p.k_layout : p.v_layout), latent = in.paged(p.v_layout);
  const int32_t k0 = key ? k_from_v(c.kv_layout, c.dv()) : 0;
  const auto& cache = key ? p.k_cache : p.v_cache;
  const auto& scales = key ? p.k_scales : p.v_scales;
  const int32_t eb = dtype_bytes(c.kv_dtype);
  LogicalKv out;
  out.dtype = c.kv_dtype;
  out.heads = c.num_kv_heads;
  out.head_size = key ? c.head_size : c.dv();
  out.token_base = (key ? in.k : in.v).token_base;
  const int64_t T = out.token_base.back();
  out.codes.resize(size_t(T * out.heads * out.head_size));
  out.scales.resize(size_t(T * out.heads));
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    for (int32_t t = 0; t < in.context_lens[size_t(s)]; ++t) {
      const int32_t blk = paged.block_of(s, t), tok = paged.slot_of(t);
      const int64_t r = out.row(s, t);
      for (int32_t h = 0; h < out.heads; ++h) {
        for (int32_t d = 0; d < out.head_size; ++d)  // K's first k0 columns are the V cache's (mla_split)
          out.codes[size_t((r * out.heads + h) * out.head_size + d)] =
              d < k0 ? load_code(p.v_cache, eb, latent(s, t, h, d)) : load_code(cache, eb, paged(s, t, h, d - k0));
        out.scales[size_t(r * out.heads + h)] = scales[size_t(p.scale_layout(blk, h, tok))];
      }
    }
  }
  return out;
}

}  // namespace pa
