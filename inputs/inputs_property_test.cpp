// Properties of input generation, pack and gather over generated small cases: every layout, kv
// dtype (int8 with a scale), scale mode, page pad, q_len and GQA ratio.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "inputs/inputs.hpp"
#include "testing/case_shape.hpp"
#include "testing/arbitrary_formats.hpp"

namespace pa {
namespace {

// A small valid case. Sizes are chosen valid by construction for every layout (D a multiple of
// 16, B a multiple of 16 for shuffled) so no draw is discarded.
rc::Gen<Case> gen_small_case() {
  return rc::gen::exec([] {
    Case c;
    test::draw_formats(c);
    c.kv_scale = c.kv_dtype == DType::int8
                     ? *rc::gen::element(ScaleMode::per_tensor, ScaleMode::per_head,
                                         ScaleMode::per_token_block_major, ScaleMode::per_token_head_major)
                     : *rc::gen::element(ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_head,
                                         ScaleMode::per_token_block_major, ScaleMode::per_token_head_major);
    c.num_kv_heads = *rc::gen::inRange(1, 4);
    c.num_q_heads = c.num_kv_heads * *rc::gen::element(1, 2, 3, 4, 5);
    c.head_size = *rc::gen::element(16, 32, 48);
    c.block_size = c.kv_layout == KvLayout::shuffled ? *rc::gen::element(16, 32)
                                                     : *rc::gen::element(1, 2, 3, 5, 8, 16);
    c.q_len = *rc::gen::inRange(1, 5);
    c.num_seqs = *rc::gen::inRange(1, 4);
    c.context_lens.clear();
    for (int32_t s = 0; s < c.num_seqs; ++s)
      c.context_lens.push_back(*rc::gen::inRange(c.q_len, 3 * c.block_size + 2));
    c.page_pad = *rc::gen::element<int64_t>(0, 0, 1, 7, 64);
    const int64_t extra = *rc::gen::inRange<int64_t>(-1, 6);  // -1: automatic pool size
    c.num_blocks = extra < 0 ? 0 : c.used_blocks() + extra;
    c.values = *rc::gen::element(Values::normal, Values::outliers);
    RC_ASSERT(validate(c).empty());
    return c;
  });
}

// The scale of every unit of the mode (tensor; head; token row), in unit order.
std::vector<float> unit_scales(const LogicalKv& kv, ScaleMode m) {
  const int64_t T = kv.token_base.back();
  if (m == ScaleMode::per_tensor) return {kv.scales[0]};
  if (m == ScaleMode::per_head) return std::vector<float>(kv.scales.begin(), kv.scales.begin() + kv.heads);
  return std::vector<float>(kv.scales.begin(), kv.scales.begin() + T * kv.heads);
}

struct Packed {
  Inputs in;
  PhysicalKv phys;
};
Packed make_packed(const Case& c) {
  Packed p{make_inputs(c), {}};
  p.phys = pack(p.in);
  return p;
}

RC_GTEST_PROP(InputsPack, GatherOfPackReproducesCodesAndScales, ()) {
  const Case c = *gen_small_case();
  RC_TAG(to_string(c.kv_layout), to_string(c.kv_dtype));
  const Packed p = make_packed(c);
  for (KvTensor which : {KvTensor::key, KvTensor::value}) {
    const LogicalKv& want = which == KvTensor::key ? p.in.k : p.in.v;
    const LogicalKv got = gather(p.in, p.phys, which);
    RC_ASSERT(got.codes == want.codes);
    RC_ASSERT(got.scales.size() == want.scales.size());
    for (size_t i = 0; i < want.scales.size(); ++i)  // bitwise: NaN would fail here
      RC_ASSERT(bit_cast<uint32_t>(got.scales[i]) == bit_cast<uint32_t>(want.scales[i]));
  }
}

// Every pool element pack did not write holds the poison code; every written one does not.
RC_GTEST_PROP(InputsPack, UnwrittenElementsArePoisoned, ()) {
  const Case c = *gen_small_case();
  const Packed p = make_packed(c);
  const int32_t eb = dtype_bytes(c.kv_dtype);
  const uint16_t poison = uint16_t(codec::poison_code(c.kv_dtype));
  for (KvTensor which : {KvTensor::key, KvTensor::value}) {
    const PageLayout& L = which == KvTensor::key ? p.phys.k_layout : p.phys.v_layout;
    const auto& buf = which == KvTensor::key ? p.phys.k_cache : p.phys.v_cache;
    const int64_t n = L.cosize(p.in.num_blocks);
    RC_ASSERT(int64_t(buf.size()) == n * eb);
    std::vector<uint8_t> written(size_t(n), 0);
    for (int32_t s = 0; s < c.num_seqs; ++s)
      for (int32_t t = 0; t < c.context_lens[size_t(s)]; ++t)
        for (int32_t h = 0; h < c.num_kv_heads; ++h)
          for (int32_t d = 0; d < c.head_size; ++d)
            written[size_t(L(p.in.page_of(s, t), h, t % c.block_size, d))] = 1;
    for (int64_t i = 0; i < n; ++i) {
      if (written[size_t(i)]) RC_ASSERT(load_code(buf, eb, i) != poison);
      else RC_ASSERT(load_code(buf, eb, i) == poison);
    }
  }
}

// Per-token modes: slots of free pages and unused slots of last pages have NaN scales; used ones
// are finite and positive. Other modes: every scale is finite and positive.
RC_GTEST_PROP(InputsPack, UnusedScaleSlotsAreNaN, ()) {
  const Case c = *gen_small_case();
  const Packed p = make_packed(c);
  const ScaleLayout& S = p.phys.scale_layout;
  std::vector<uint8_t> used(size_t(S.size()), 0);
  for (int32_t s = 0; s < c.num_seqs; ++s)
    for (int32_t t = 0; t < c.context_lens[size_t(s)]; ++t)
      for (int32_t h = 0; h < c.num_kv_heads; ++h)
        used[size_t(S(p.in.page_of(s, t), h, t % c.block_size))] = 1;
  for (const auto* scales : {&p.phys.k_scales, &p.phys.v_scales}) {
    RC_ASSERT(int64_t(scales->size()) == S.size());
    for (size_t i = 0; i < scales->size(); ++i) {
      const float v = (*scales)[i];
      if (is_per_token(c.kv_scale) && !used[i]) {
        RC_ASSERT(std::isnan(v));
      } else {
        RC_ASSERT(std::isfinite(v));
        RC_ASSERT(v > 0.0f);
      }
    }
  }
}

// Block-table entries past a sequence's end point at free pages whenever the pool has any; the
// used pages of all sequences are distinct.
RC_GTEST_PROP(InputsPlacement, PastTheEndEntriesPointAtFreePages, ()) {
  const Case c = *gen_small_case();
  const Inputs in = make_inputs(c);
  std::set<int32_t> used;
  int64_t n_used = 0;
  for (int32_t s = 0; s < c.num_seqs; ++s)
    for (int32_t b = 0; b < c.blocks_for(c.context_lens[size_t(s)]); ++b, ++n_used) {
      const int32_t id = in.block_tables[size_t(s * in.max_blocks_per_seq + b)];
      RC_ASSERT(id >= 0);
      RC_ASSERT(id < in.num_blocks);
      used.insert(id);
    }
  RC_ASSERT(int64_t(used.size()) == n_used);
  const bool has_free = in.num_blocks > n_used;
  for (int32_t s = 0; s < c.num_seqs; ++s)
    for (int32_t b = c.blocks_for(c.context_lens[size_t(s)]); b < in.max_blocks_per_seq; ++b) {
      const int32_t id = in.block_tables[size_t(s * in.max_blocks_per_seq + b)];
      RC_ASSERT(id >= 0);
      RC_ASSERT(id < in.num_blocks);
      if (has_free) RC_ASSERT(used.count(id) == 0u);
    }
}

// With many pages the placement is not the identity (probability 1/12! at worst per case).
RC_GTEST_PROP(InputsPlacement, NotIdentityWithManyPages, ()) {
  Case c = *gen_small_case();
  c.block_size = c.kv_layout == KvLayout::shuffled ? 16 : 1;
  c.context_lens.assign(size_t(c.num_seqs), 12 * c.block_size);  // >= 12 pages per sequence
  c.num_blocks = 0;
  const Inputs in = make_inputs(c);
  bool identity = true;
  int32_t next = 0;
  for (int32_t s = 0; s < c.num_seqs && identity; ++s)
    for (int32_t b = 0; b < c.blocks_for(c.context_lens[size_t(s)]); ++b)
      identity &= in.block_tables[size_t(s * in.max_blocks_per_seq + b)] == next++;
  RC_ASSERT(c.used_blocks() >= 12);
  RC_ASSERT(!identity);
}

RC_GTEST_PROP(InputsHash, SameSeedSameHashDifferentSeedDifferentHash, ()) {
  Case c = *gen_small_case();
  const uint64_t h1 = input_hash(make_inputs(c));
  RC_ASSERT(input_hash(make_inputs(c)) == h1);
  c.seed = c.seed + 1;
  RC_ASSERT(input_hash(make_inputs(c)) != h1);
}

// Logical values are exactly decode(code) * scale and the codes are never NaN.
RC_GTEST_PROP(InputsLogical, CodesAreFiniteAndShapesConsistent, ()) {
  const Case c = *gen_small_case();
  const Inputs in = make_inputs(c);
  int64_t T = 0;
  for (int32_t len : c.context_lens) T += len;
  for (const LogicalKv* kv : {&in.k, &in.v}) {
    RC_ASSERT(kv->token_base.back() == T);
    RC_ASSERT(int64_t(kv->codes.size()) == T * c.num_kv_heads * c.head_size);
    for (uint16_t code : kv->codes) RC_ASSERT(std::isfinite(codec::decode(c.kv_dtype, code)));
    if (c.kv_dtype == DType::int8)
      for (uint16_t code : kv->codes) RC_ASSERT(code != codec::poison_code(DType::int8));
  }
  RC_ASSERT(int64_t(in.q.size()) == int64_t(c.num_seqs) * c.q_len * c.num_q_heads * c.head_size);
  for (size_t i = 0; i < in.q.size(); ++i)
    RC_ASSERT(bit_cast<uint32_t>(in.q[i]) == bit_cast<uint32_t>(codec::decode(c.q_dtype, in.q_codes[i])));
}

// Per-tensor and per-head K and V scales are never close: of each unit's two, one is at least
// twice the other, so a kernel that dequantizes V with K's scale (or K with V's) is off by 2x.
RC_GTEST_PROP(InputsScales, KeyAndValueScalesAreAtLeastTwofoldApart, ()) {
  Case c = *gen_small_case();
  RC_PRE(c.kv_scale == ScaleMode::per_tensor || c.kv_scale == ScaleMode::per_head);
  const Inputs in = make_inputs(c);
  const std::vector<float> k = unit_scales(in.k, c.kv_scale), v = unit_scales(in.v, c.kv_scale);
  for (size_t u = 0; u < k.size(); ++u)
    RC_ASSERT(std::max(k[u], v[u]) >= 2.0f * std::min(k[u], v[u]));
}

// Per-head and per-token scales of a tensor span at least 16x whenever it has two units: a scale
// read from the wrong head or token is far off.
RC_GTEST_PROP(InputsScales, PerHeadAndPerTokenScalesSpanSixteenfold, ()) {
  Case c = *gen_small_case();
  RC_PRE(c.kv_scale != ScaleMode::none && c.kv_scale != ScaleMode::per_tensor);
  const Inputs in = make_inputs(c);
  for (const LogicalKv* kv : {&in.k, &in.v}) {
    const std::vector<float> u = unit_scales(*kv, c.kv_scale);
    RC_PRE(u.size() >= 2);
    const auto [lo, hi] = std::minmax_element(u.begin(), u.end());
    RC_ASSERT(double(*hi) >= 16.0 * double(*lo));
  }
}

// 8-bit codes reach near saturation: in unit 0 (drawn without spread) of K or of V -- the one
// whose scale set_apart did not raise -- a code is within 1/1.25 of the format's largest value.
RC_GTEST_PROP(InputsScales, EightBitCodesReachNearSaturation, ()) {
  Case c = *gen_small_case();
  RC_PRE(is_8bit(c.kv_dtype) && c.kv_scale != ScaleMode::none);
  const Inputs in = make_inputs(c);
  const double fmax = codec::max_finite(c.kv_dtype);
  double amax = 0;  // over unit 0 of K and V: the whole tensor, head 0, or row 0
  const int32_t D = c.head_size;
  for (const LogicalKv* kv : {&in.k, &in.v})
    for (int64_t r = 0; r < kv->token_base.back() * kv->heads; ++r) {
      if (c.kv_scale == ScaleMode::per_head && r % kv->heads != 0) continue;
      if (is_per_token(c.kv_scale) && r != 0) continue;
      for (int32_t d = 0; d < D; ++d)
        amax = std::max(amax, std::fabs(double(codec::decode(c.kv_dtype, kv->codes[size_t(r * D + d)]))));
    }
  RC_ASSERT(amax >= fmax / 1.25 * 0.93);  // the largest code rounds to the format's grid
}

// Values::outliers makes logits of hundreds (a kernel that skips the running-max subtraction
// overflows exp in fp32 past 88.7) and, with 8-bit K, codes in the subnormal range.
TEST(InputsOutliers, LogitsReachHundredsAndEightBitCodesGoSubnormal) {
  Case c = test::shaped_case(77, {96}, 8, 2, 128, 16, DType::fp8_e4m3fn, ScaleMode::per_tensor);
  c.values = Values::outliers;
  const Inputs in = make_inputs(c);
  const double sm = c.effective_softmax_scale();
  double max_logit = 0;
  for (int32_t h = 0; h < c.num_q_heads; ++h)
    for (int32_t t = 0; t < 96; ++t) {
      double x = 0;
      for (int32_t d = 0; d < 128; ++d) x += double(in.q_at(0, 0, h, d)) * in.k.value(0, t, h / 4, d);
      max_logit = std::max(max_logit, std::fabs(sm * x));
    }
  EXPECT_GT(max_logit, 100.0);
  int64_t subnormal = 0;
  for (uint16_t code : in.k.codes) subnormal += (code & 0x78) == 0 && (code & 0x07) != 0;  // e4m3: exponent 0
  EXPECT_GT(subnormal, int64_t(in.k.codes.size() / 100));
  c.values = Values::normal;
  const Inputs plain = make_inputs(c);
  int64_t plain_subnormal = 0;
  for (uint16_t code : plain.k.codes) plain_subnormal += (code & 0x78) == 0 && (code & 0x07) != 0;
  EXPECT_LT(plain_subnormal, subnormal / 4) << "the spread is what puts codes there";
}

}  // namespace
}  // namespace pa
