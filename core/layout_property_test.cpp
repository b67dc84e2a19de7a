// Layout laws as RapidCheck properties (docs/layouts.md). Each property generates sizes (H, B, D) and a
// page pad, then checks the law for every tensor (K, V) x element size (1, 2 bytes) x dense and
// strided pages, so every combination runs on each of the 100 generated cases.
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "core/layout.hpp"

namespace pa {
namespace {

// docs/layouts.md, written out literally (division and modulo, not the shift/mask implementation).
int64_t design_offset(KvLayout kind, KvTensor tensor, int64_t H, int64_t B, int64_t D, int64_t x,
                      int64_t bstride, int64_t blk, int64_t h, int64_t tok, int64_t d) {
  switch (kind) {
    case KvLayout::nhd: return blk * bstride + (tok * H + h) * D + d;
    case KvLayout::hnd: return blk * bstride + (h * B + tok) * D + d;
    case KvLayout::vllm:
      if (tensor == KvTensor::key) return blk * bstride + h * D * B + (d / x) * B * x + tok * x + d % x;
      return blk * bstride + h * D * B + d * B + tok;
    case KvLayout::shuffled:
      if (tensor == KvTensor::key) return blk * bstride + h * D * B + (d / x) * B * x + tok * x + d % x;
      return blk * bstride + h * D * B + (tok / x) * D * x + d * x + tok % x;
    case KvLayout::mla_joint:  // one latent head: rows of the cache's row length D
    case KvLayout::mla_split:
      return blk * bstride + tok * D + d + h * D;
  }
  return -1;
}

struct Sizes {
  int32_t heads, block, head_size, elem_bytes;
  int64_t page_stride;  // 0 = dense
};

// Valid sizes for `kind` and each element size: split dimensions are drawn as multiples of x.
struct Raw {
  int32_t heads, bk, dk, b_any, d_any, pad;
};
rc::Gen<Raw> gen_raw() {
  return rc::gen::build<Raw>(rc::gen::set(&Raw::heads, rc::gen::inRange(1, 5)),
                             rc::gen::set(&Raw::bk, rc::gen::inRange(1, 4)),
                             rc::gen::set(&Raw::dk, rc::gen::inRange(1, 4)),
                             rc::gen::set(&Raw::b_any, rc::gen::inRange(1, 41)),
                             rc::gen::set(&Raw::d_any, rc::gen::inRange(1, 41)),
                             rc::gen::set(&Raw::pad, rc::gen::inRange(1, 100)));
}

// Every (tensor, elem size, dense/strided) combination of one generated case.
template <class F>
void for_each_variant(KvLayout kind, const Raw& r, F&& check) {
  for (int32_t eb : {1, 2}) {
    const int32_t x = 16 / eb;
    const int32_t B = kind == KvLayout::shuffled ? x * r.bk : r.b_any;
    const int32_t D = (kind == KvLayout::vllm || kind == KvLayout::shuffled) ? x * r.dk : r.d_any;
    RC_ASSERT(!layout_error(kind, r.heads, B, D, eb).has_value());
    const int64_t dense = int64_t(r.heads) * B * D;
    for (int64_t stride : {int64_t(0), dense + r.pad})
      for (KvTensor t : {KvTensor::key, KvTensor::value})
        check(make_page_layout(kind, t, r.heads, B, D, eb, stride), Sizes{r.heads, B, D, eb, stride});
  }
}

// (a) every offset of a valid coordinate lies inside its page and below cosize(NB).
void law_in_bounds(KvLayout kind) {
  const Raw r = *gen_raw();
  const int64_t nb = *rc::gen::inRange<int64_t>(1, 5);
  for_each_variant(kind, r, [&](const PageLayout& L, const Sizes& s) {
    const int64_t dense = int64_t(s.heads) * s.block * s.head_size;
    RC_ASSERT(L.size() == dense);
    RC_ASSERT(L.page_stride == (s.page_stride ? s.page_stride : dense));
    RC_ASSERT(L.cosize(nb) == (nb - 1) * L.page_stride + dense);
    for (int64_t blk = 0; blk < nb; ++blk)
      for (int32_t h = 0; h < s.heads; ++h)
        for (int32_t tok = 0; tok < s.block; ++tok)
          for (int32_t d = 0; d < s.head_size; ++d) {
            const int64_t o = L(blk, h, tok, d);
            RC_ASSERT(o >= blk * L.page_stride);
            RC_ASSERT(o < blk * L.page_stride + dense);
            RC_ASSERT(o < L.cosize(nb));
          }
  });
}

// (b) injective over all valid coordinates of a small pool (a dense page is then a bijection).
void law_injective(KvLayout kind) {
  const Raw r = *gen_raw();
  const int64_t nb = *rc::gen::inRange<int64_t>(1, 4);
  for_each_variant(kind, r, [&](const PageLayout& L, const Sizes& s) {
    std::vector<uint8_t> seen(size_t(L.cosize(nb)), 0);
    int64_t hits = 0;
    for (int64_t blk = 0; blk < nb; ++blk)
      for (int32_t h = 0; h < s.heads; ++h)
        for (int32_t tok = 0; tok < s.block; ++tok)
          for (int32_t d = 0; d < s.head_size; ++d) {
            const int64_t o = L(blk, h, tok, d);
            RC_ASSERT(o >= 0);
            RC_ASSERT(o < int64_t(seen.size()));
            RC_ASSERT(seen[size_t(o)] == 0);
            seen[size_t(o)] = 1;
            ++hits;
          }
    RC_ASSERT(hits == nb * L.size());
  });
}

// (c) equals the docs/layouts.md formula, including at page ids > 65535 where offsets pass 2^31.
void law_matches_design(KvLayout kind) {
  const Raw r = *gen_raw();
  const int64_t far_blk = *rc::gen::inRange<int64_t>(65536, 1 << 22);
  for_each_variant(kind, r, [&](const PageLayout& L, const Sizes& s) {
    const int64_t x = 16 / s.elem_bytes;
    const int64_t bstride = L.page_stride;
    for (int64_t blk : {int64_t(0), int64_t(1), far_blk})
      for (int32_t h = 0; h < s.heads; ++h)
        for (int32_t tok = 0; tok < s.block; ++tok)
          for (int32_t d = 0; d < s.head_size; ++d)
            RC_ASSERT(L(blk, h, tok, d) == design_offset(kind, L.tensor, s.heads, s.block,
                                                         s.head_size, x, bstride, blk, h, tok, d));
  });
}

// Each law on every layout, the same generated sizes for all four in one case.
constexpr KvLayout kLayouts[] = {KvLayout::nhd, KvLayout::hnd, KvLayout::vllm, KvLayout::shuffled};
RC_GTEST_PROP(LayoutLaws, InBoundsOnEveryLayout, ()) { for (KvLayout l : kLayouts) law_in_bounds(l); }
RC_GTEST_PROP(LayoutLaws, InjectiveOnEveryLayout, ()) { for (KvLayout l : kLayouts) law_injective(l); }
RC_GTEST_PROP(LayoutLaws, MatchesDesignFormulaOnEveryLayout, ()) { for (KvLayout l : kLayouts) law_matches_design(l); }

// contiguous_d() is a real vector unit: the run of that length starting at any multiple of it
// along d has consecutive offsets.
RC_GTEST_PROP(LayoutLaws, ContiguousDIsConsecutive, ()) {
  const auto kind = *rc::gen::element(KvLayout::nhd, KvLayout::hnd, KvLayout::vllm, KvLayout::shuffled);
  const Raw r = *gen_raw();
  for_each_variant(kind, r, [&](const PageLayout& L, const Sizes& s) {
    const int32_t run = L.contiguous_d();
    RC_ASSERT(run >= 1);
    RC_ASSERT(s.head_size % run == 0);
    for (int32_t h = 0; h < s.heads; ++h)
      for (int32_t tok = 0; tok < s.block; ++tok)
        for (int32_t d0 = 0; d0 < s.head_size; d0 += run)
          for (int32_t k = 1; k < run; ++k) RC_ASSERT(L(1, h, tok, d0 + k) == L(1, h, tok, d0) + k);
  });
}

// The paged map is block table then page layout.
RC_GTEST_PROP(LayoutLaws, PagedLayoutComposesBlockTable, ()) {
  const auto kind = *rc::gen::element(KvLayout::nhd, KvLayout::hnd, KvLayout::vllm, KvLayout::shuffled);
  const int32_t H = *rc::gen::inRange(1, 3), B = 16, D = 32, mbs = *rc::gen::inRange(1, 5);
  const int32_t S = *rc::gen::inRange(1, 3);
  const auto table = *rc::gen::container<std::vector<int32_t>>(size_t(S * mbs), rc::gen::inRange(0, 100000));
  PagedLayout P{make_page_layout(kind, KvTensor::value, H, B, D, 2), table.data(), mbs};
  for (int32_t s = 0; s < S; ++s)
    for (int32_t t = 0; t < mbs * B; t += 3)
      for (int32_t h = 0; h < H; ++h)
        RC_ASSERT(P(s, t, h, 5) == P.page(table[size_t(s * mbs + t / B)], h, t % B, 5));
}

// ScaleLayout: offsets follow the documented index formulas and, in per-token modes, are a
// bijection from physical slots (blk, h, tok) onto [0, size()).
RC_GTEST_PROP(ScaleLayoutLaws, OffsetsMatchFormulasAndPerTokenIsBijective, ()) {
  const auto mode = *rc::gen::element(ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_head,
                                      ScaleMode::per_token_block_major, ScaleMode::per_token_head_major);
  ScaleLayout L;
  L.mode = mode;
  L.heads = *rc::gen::inRange(1, 9);
  L.block = *rc::gen::inRange(1, 33);
  L.num_blocks = *rc::gen::inRange<int64_t>(1, 9);
  const int64_t NB = L.num_blocks, H = L.heads, B = L.block;
  std::vector<uint8_t> seen(size_t(L.size()), 0);
  for (int64_t blk = 0; blk < NB; ++blk)
    for (int32_t h = 0; h < H; ++h)
      for (int32_t tok = 0; tok < B; ++tok) {
        const int64_t o = L(blk, h, tok);
        int64_t expect = 0;
        if (mode == ScaleMode::per_head) expect = h;
        if (mode == ScaleMode::per_token_block_major) expect = blk * H * B + h * B + tok;  // [NB,Hkv,B]
        if (mode == ScaleMode::per_token_head_major) expect = h * (NB * B) + blk * B + tok;  // [Hkv,NB*B]
        RC_ASSERT(o == expect);
        RC_ASSERT(o >= 0);
        RC_ASSERT(o < L.size());
        if (is_per_token(mode)) {
          RC_ASSERT(seen[size_t(o)] == 0);
          seen[size_t(o)] = 1;
        }
      }
  if (is_per_token(mode)) RC_ASSERT(L.size() == NB * H * B);
}

}  // namespace
}  // namespace pa
