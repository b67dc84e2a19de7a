// make_device_inputs against the host: download_inputs(make_device_inputs(c)) must be make_inputs(c)
// and download_physical(...) must be pack(make_inputs(c)), byte for byte, on cases drawn from a
// seeded generator over every KV dtype, scale mode and layout, both value kinds, page padding,
// q_len > 1, ALiBi, sinks, head sizes 32..512 (past the rows a warp keeps in registers), block
// sizes 1..64 and several sequences, plus large single-sequence cases and the ragged family
// (per-sequence q_len, Dv != D, empty sequences, the CSR page table). Without a GPU each GPU test
// skips with device_inputs_available's reason. One test needs no GPU: the one-element definition
// the device draws with (draws::KvRows::element) against make_inputs' vectorised host schedule.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "inputs/input_draws.hpp"
#include "inputs/inputs.hpp"
#include "inputs/inputs_device.hpp"
#include "inputs/inputs_parts.hpp"
#include "core/prng.hpp"
#include "testing/case_shape.hpp"

namespace pa {
namespace {

template <class T>
T pick(Rng& rng, std::initializer_list<T> choices) {
  return *(choices.begin() + rng.uniform_int(0, int64_t(choices.size()) - 1));
}

// A valid case drawn from rng, at most `max_elements` K elements (T * Hkv * D) so that a few
// hundred cases stay cheap on the host side of the comparison.
Case draw_case(Rng& rng, int64_t max_elements = int64_t(1) << 22) {
  for (;;) {
    Case c;
    c.seed = rng.next_u64();
    c.kv_dtype = pick(rng, {DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz, DType::fp8_e5m2, DType::int8});
    c.q_dtype = pick(rng, {DType::bf16, DType::fp16});
    c.kv_scale = c.kv_dtype == DType::int8
                     ? pick(rng, {ScaleMode::per_tensor, ScaleMode::per_head, ScaleMode::per_token_block_major,
                                  ScaleMode::per_token_head_major})
                     : pick(rng, {ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_head,
                                  ScaleMode::per_token_block_major, ScaleMode::per_token_head_major});
    c.kv_layout = pick(rng, {KvLayout::nhd, KvLayout::hnd, KvLayout::vllm, KvLayout::shuffled});
    const int32_t x = 16 / dtype_bytes(c.kv_dtype);  // the split layouts' vector width
    c.head_size = pick<int32_t>(rng, {64, 128, 256, 80, 96, 192, 32, 512});
    c.block_size = pick<int32_t>(rng, {16, 1, 2, 5, 8, 32, 48, 64});
    if (c.kv_layout == KvLayout::vllm || c.kv_layout == KvLayout::shuffled) c.head_size = (c.head_size + x - 1) / x * x;
    if (c.kv_layout == KvLayout::shuffled) c.block_size = (c.block_size + x - 1) / x * x;
    c.num_kv_heads = int32_t(rng.uniform_int(1, 8));
    c.num_q_heads = c.num_kv_heads * pick<int32_t>(rng, {1, 2, 4, 8});
    c.q_len = pick<int32_t>(rng, {1, 1, 2, 3, 4, 16});
    c.num_seqs = int32_t(rng.uniform_int(1, 6));
    const int32_t longest = pick<int32_t>(rng, {c.block_size + 1, 100, 600});
    c.context_lens.clear();
    for (int32_t s = 0; s < c.num_seqs; ++s)
      c.context_lens.push_back(int32_t(rng.uniform_int(c.q_len, std::max(c.q_len, longest))));
    c.page_pad = pick<int64_t>(rng, {0, 0, 1, 7, 40});
    if (rng.uniform_int(0, 2) == 0) c.num_blocks = c.used_blocks() + rng.uniform_int(0, 5);  // + 0: garbage entries hit used pages
    c.values = rng.uniform_int(0, 2) == 0 ? Values::outliers : Values::normal;
    c.alibi = rng.uniform_int(0, 1) == 1;
    c.sinks = rng.uniform_int(0, 1) == 1;
    int64_t tokens = 0;
    for (int32_t ctx : c.context_lens) tokens += ctx;
    if (validate(c).empty() && tokens * c.num_kv_heads * c.head_size <= max_elements) return c;
  }
}

// The bytes of got and want are equal; else one failure naming the vector, the first differing
// index and the case.
template <class T>
bool same_bytes(const std::vector<T>& got, const std::vector<T>& want, const std::string& what, const Case& c) {
  if (got.size() != want.size()) {
    ADD_FAILURE() << what << ": " << got.size() << " elements on the device, " << want.size()
                  << " on the host\ncase: " << to_json(c).dump();
    return false;
  }
  if (got.empty() || std::memcmp(got.data(), want.data(), got.size() * sizeof(T)) == 0) return true;
  size_t i = 0;
  while (std::memcmp(&got[i], &want[i], sizeof(T)) == 0) ++i;
  uint64_t g = 0, w = 0;
  std::memcpy(&g, &got[i], sizeof(T));
  std::memcpy(&w, &want[i], sizeof(T));
  ADD_FAILURE() << what << " differs first at index " << i << " of " << got.size() << ": device bits 0x" << std::hex
                << g << ", host bits 0x" << w << std::dec << "\ncase: " << to_json(c).dump();
  return false;
}

bool same_inputs(const Inputs& got, const Inputs& want) {
  const Case& c = want.c;
  bool ok = true;
  ok &= same_bytes(got.q_codes, want.q_codes, "q_codes", c);
  ok &= same_bytes(got.q, want.q, "q", c);
  ok &= same_bytes(got.k.codes, want.k.codes, "k.codes", c);
  ok &= same_bytes(got.k.scales, want.k.scales, "k.scales", c);
  ok &= same_bytes(got.v.codes, want.v.codes, "v.codes", c);
  ok &= same_bytes(got.v.scales, want.v.scales, "v.scales", c);
  ok &= same_bytes(got.k.token_base, want.k.token_base, "k.token_base", c);
  ok &= same_bytes(got.v.token_base, want.v.token_base, "v.token_base", c);
  ok &= same_bytes(got.block_tables, want.block_tables, "block_tables", c);
  ok &= same_bytes(got.context_lens, want.context_lens, "context_lens", c);
  ok &= same_bytes(got.alibi_slopes, want.alibi_slopes, "alibi_slopes", c);
  ok &= same_bytes(got.sinks, want.sinks, "sinks", c);
  ok &= same_bytes(got.cu_seqlens_q, want.cu_seqlens_q, "cu_seqlens_q", c);
  ok &= same_bytes(got.kv_indptr, want.kv_indptr, "kv_indptr", c);
  ok &= same_bytes(got.kv_indices, want.kv_indices, "kv_indices", c);
  ok &= same_bytes(got.kv_last_page_len, want.kv_last_page_len, "kv_last_page_len", c);
  for (const auto* kv : {&got.k, &got.v}) {
    const LogicalKv& w = kv == &got.k ? want.k : want.v;
    if (kv->dtype != w.dtype || kv->heads != w.heads || kv->head_size != w.head_size) {
      ADD_FAILURE() << "LogicalKv dtype/heads/head_size differ\ncase: " << to_json(c).dump();
      ok = false;
    }
  }
  if (got.num_blocks != want.num_blocks || got.max_blocks_per_seq != want.max_blocks_per_seq) {
    ADD_FAILURE() << "num_blocks or max_blocks_per_seq differ\ncase: " << to_json(c).dump();
    ok = false;
  }
  return ok;
}

bool same_physical(const PhysicalKv& got, const PhysicalKv& want, const Case& c) {
  bool ok = true;
  if (got.k_layout.to_string() != want.k_layout.to_string() || got.v_layout.to_string() != want.v_layout.to_string() ||
      got.scale_layout.to_string() != want.scale_layout.to_string()) {
    ADD_FAILURE() << "layouts differ\ncase: " << to_json(c).dump();
    ok = false;
  }
  ok &= same_bytes(got.k_cache, want.k_cache, "k_cache", c);
  ok &= same_bytes(got.v_cache, want.v_cache, "v_cache", c);
  ok &= same_bytes(got.k_scales, want.k_scales, "k_scales (physical)", c);
  ok &= same_bytes(got.v_scales, want.v_scales, "v_scales (physical)", c);
  return ok;
}

// The whole comparison for one case; false after the first case that differs.
bool device_matches_host(const Case& c) {
  const Inputs want = make_inputs(c);
  const DeviceInputs d = make_device_inputs(c);
  return same_inputs(download_inputs(d), want) && same_physical(download_physical(d), pack(want), c);
}

#define PA_SKIP_WITHOUT_GPU()                                           \
  do {                                                                  \
    std::string why;                                                    \
    if (!device_inputs_available(&why)) GTEST_SKIP() << "no GPU: " << why; \
  } while (0)

TEST(DeviceInputs, GeneratedCasesMatchTheHostByteForByte) {
  PA_SKIP_WITHOUT_GPU();
  Rng rng(20240611, Stream::kSuite);
  for (int i = 0; i < 300; ++i) {
    const Case c = draw_case(rng);
    SCOPED_TRACE("generated case " + std::to_string(i));
    if (!device_matches_host(c)) return;  // the first differing case is reported in full
  }
}

// Every dtype under every scale mode at least once, whatever the generator happens to draw.
TEST(DeviceInputs, EveryDtypeAndScaleMode) {
  PA_SKIP_WITHOUT_GPU();
  Rng rng(7, Stream::kSuite);
  for (DType t : {DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz, DType::fp8_e5m2, DType::int8})
    for (ScaleMode m : {ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_head, ScaleMode::per_token_block_major,
                        ScaleMode::per_token_head_major}) {
      if (t == DType::int8 && m == ScaleMode::none) continue;
      Case c = draw_case(rng);
      c.kv_dtype = t;
      c.kv_scale = m;
      if (!validate(c).empty()) c.kv_layout = KvLayout::nhd;  // a split layout's x changed with the dtype
      ASSERT_TRUE(validate(c).empty()) << to_json(c).dump();
      SCOPED_TRACE(std::string(to_string(t)) + " " + to_string(m));
      if (!device_matches_host(c)) return;
    }
}

// Large single sequences: many rows per warp and the grid caps, the amax atomics over 40000 tokens.
TEST(DeviceInputs, LargeCasesMatchTheHost) {
  PA_SKIP_WITHOUT_GPU();
  Case c = test::shaped_case(40000, {40000}, 64, 8, 128);
  EXPECT_TRUE(device_matches_host(c));
  c.kv_dtype = DType::fp8_e4m3fn;
  c.kv_scale = ScaleMode::per_head;
  c.kv_layout = KvLayout::vllm;
  c.values = Values::outliers;
  EXPECT_TRUE(device_matches_host(c));
  c.kv_dtype = DType::int8;
  c.kv_scale = ScaleMode::per_token_head_major;
  c.kv_layout = KvLayout::shuffled;
  c.values = Values::normal;
  EXPECT_TRUE(device_matches_host(c));
}

// The ragged family: a batch of decode, MTP and extend rows with an empty slot, V narrower and
// wider than K, in both page-table forms, over every layout, KV dtype and scale mode. V's own
// layout (Dv, its page stride) and the CSR arrays must come out as the host makes them.
TEST(DeviceInputs, RaggedCsrAndDvCasesMatchTheHost) {
  PA_SKIP_WITHOUT_GPU();
  Rng rng(22, Stream::kSuite);
  int ran = 0;
  for (KvLayout layout : {KvLayout::nhd, KvLayout::hnd, KvLayout::vllm, KvLayout::shuffled})
    for (DType t : {DType::bf16, DType::fp8_e4m3fn, DType::int8})
      for (ScaleMode m : {ScaleMode::per_tensor, ScaleMode::per_head, ScaleMode::per_token_head_major})
        for (const auto& [d, dv] : {std::pair<int32_t, int32_t>{128, 64}, std::pair<int32_t, int32_t>{64, 128},
                                    std::pair<int32_t, int32_t>{192, 128}}) {
          Case c = test::shaped_case(rng.next_u64(), {0, 7, 100, 300}, 8, 2, d, 16, t, m, layout);
          c.q_lens = {2, 7, 1, 40};
          c.q_len = 40;
          c.head_size_v = dv;
          c.page_table = ran % 2 ? PageTable::padded : PageTable::csr;
          c.page_pad = ran % 3 == 0 ? 40 : 0;
          c.values = ran % 4 == 0 ? Values::outliers : Values::normal;
          c.sinks = ran % 5 == 0;
          ASSERT_TRUE(validate(c).empty()) << to_json(c).dump();
          SCOPED_TRACE(to_json(c).dump());
          ++ran;
          if (!device_matches_host(c)) return;
        }
  EXPECT_EQ(ran, 108);
}

// The latent (MLA) family: K drawn on the device, V its latent prefix under K's scale, packed into
// the joint cache (V cache = K cache's bytes) or split into ckv and kpe, ragged and padded, with
// the scale modes an MLA case takes and a strided pool.
TEST(DeviceInputs, LatentCachesMatchTheHost) {
  PA_SKIP_WITHOUT_GPU();
  Rng rng(23, Stream::kSuite);
  int ran = 0;
  for (KvLayout layout : {KvLayout::mla_joint, KvLayout::mla_split})
    for (DType t : {DType::bf16, DType::fp16, DType::fp8_e4m3fn})
      for (ScaleMode m : {ScaleMode::none, ScaleMode::per_tensor})
        for (int32_t block : {1, 16, 64}) {
          if (is_8bit(t) != (m == ScaleMode::per_tensor)) continue;
          Case c = test::shaped_case(rng.next_u64(), {0, 5, 70, 300}, 16, 1, 576, block, t, m, layout);
          c.head_size_v = 512;
          c.q_lens = {1, 4, 1, 2};
          c.q_len = 4;
          c.page_table = ran % 2 ? PageTable::padded : PageTable::csr;
          c.page_pad = ran % 3 == 0 ? 40 : 0;
          c.values = ran % 4 == 0 ? Values::outliers : Values::normal;
          ASSERT_TRUE(validate(c).empty()) << to_json(c).dump() << " " << validate(c).front();
          SCOPED_TRACE(to_json(c).dump());
          ++ran;
          if (!device_matches_host(c)) return;
        }
  EXPECT_EQ(ran, 18);
}

// No GPU needed: the element-at-a-time definition the device generator uses
// (draws::KvRows::element, the scale draw, encode_scaled) reproduces make_inputs' codes and
// scales, which the host computes on its own vectorised schedule. A divergence here is a bug in
// the shared definitions or in the host schedule, found without a GPU.
TEST(DeviceInputs, ElementDefinitionReproducesMakeInputs) {
  Rng rng(11, Stream::kSuite);
  for (int i = 0; i < 60; ++i) {
    const Case c = draw_case(rng, int64_t(1) << 18);
    SCOPED_TRACE("case " + std::to_string(i) + ": " + to_json(c).dump());
    const Inputs want = make_inputs(c);
    const detail::InputParts parts = detail::make_input_parts(ValidCase::checked(c));
    const int64_t rows = parts.rows_count();
    const int32_t H = c.num_kv_heads, D = c.head_size;
    const bool per_token = is_per_token(c.kv_scale);
    const bool shared = c.kv_scale == ScaleMode::per_tensor || c.kv_scale == ScaleMode::per_head;
    std::vector<double> amax[2] = {std::vector<double>(size_t(H), 0.0), std::vector<double>(size_t(H), 0.0)};
    const draws::KvRows src[2] = {parts.rows(KvTensor::key), parts.rows(KvTensor::value)};
    if (shared && is_8bit(c.kv_dtype))
      for (int k = 0; k < 2; ++k)
        for (int64_t r = 0; r < rows; ++r) {
          Rng n = src[k].row_start(r);
          const double f = draws::token_factor(n);
          for (int32_t d = 0; d < D; ++d)
            amax[k][size_t(r % H)] = draws::abs_max(amax[k][size_t(r % H)], src[k].element(n, f, r, d));
        }
    std::vector<float> head[2] = {std::vector<float>(size_t(H), 1.0f), std::vector<float>(size_t(H), 1.0f)};
    if (shared) {
      std::vector<double> ks = detail::shared_scales(c.kv_scale, parts.k_draw, amax[0]);
      std::vector<double> vs = detail::shared_scales(c.kv_scale, parts.v_draw, amax[1]);
      detail::set_apart(ks, vs);
      head[0] = detail::head_row_scales(c.kv_scale, ks, H);
      head[1] = detail::head_row_scales(c.kv_scale, vs, H);
    }
    for (int k = 0; k < 2; ++k) {
      const draws::ScaleDraw& draw = k == 0 ? parts.k_draw : parts.v_draw;
      const double s0 = per_token ? detail::first_row_scale(src[k], draw, rows) : 0.0;
      std::vector<uint16_t> codes(static_cast<size_t>(rows * D));
      std::vector<float> scales(static_cast<size_t>(rows));
      std::vector<double> x(static_cast<size_t>(D));
      for (int64_t r = 0; r < rows; ++r) {
        Rng n = src[k].row_start(r);
        const double f = draws::token_factor(n);
        double a = 0;
        for (int32_t d = 0; d < D; ++d) a = draws::abs_max(a, x[size_t(d)] = src[k].element(n, f, r, d));
        scales[size_t(r)] = per_token ? float(draw(a, uint64_t(r), s0)) : head[k][size_t(r % H)];
        for (int32_t d = 0; d < D; ++d)
          codes[size_t(r * D + d)] = draws::encode_scaled(c.kv_dtype, x[size_t(d)], scales[size_t(r)]);
      }
      const LogicalKv& w = k == 0 ? want.k : want.v;
      if (!same_bytes(codes, w.codes, k == 0 ? "k.codes" : "v.codes", c) ||
          !same_bytes(scales, w.scales, k == 0 ? "k.scales" : "v.scales", c))
        return;
    }
  }
}

}  // namespace
}  // namespace pa
