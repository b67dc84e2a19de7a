// The GPU oracle against the CPU one (label gpu): reference_attention_device must agree with
// reference_attention to within kOracleAgreement (oracle_disagreement) on generated cases across
// every KV dtype, scale mode, value distribution and option, head sizes 1..1024, GQA 1..32, q_len
// 1..16, contexts from 1 to thousands and one of 60000 tokens. The device inputs are the host
// inputs uploaded (upload_inputs, not make_device_inputs), so this tests the oracle alone. The
// ragged family (per-sequence q_len, Dv != D, empty sequences, CSR tables) has its own cases.
// Without a GPU every test is skipped with the reason (never counted as a pass).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <rapidcheck.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/case.hpp"
#include "inputs/inputs.hpp"
#include "inputs/inputs_device.hpp"
#include "core/prng.hpp"
#include "property/generators.hpp"
#include "reference/attention.hpp"
#include "reference/attention_device.hpp"
#include "testing/case_shape.hpp"

namespace pa {
namespace {

/// "" when the two oracles agree on c, else the case (JSON) and how far apart they are.
std::string disagreement(const Case& c) {
  const Inputs in = make_inputs(c);
  const ReferenceResult cpu = reference_attention(in);
  const ReferenceResult gpu = reference_attention_device(upload_inputs(in));
  const double d = oracle_disagreement(gpu, cpu);
  std::ostringstream why;
  if (!(d <= kOracleAgreement))
    why << "oracle_disagreement " << d << " > " << kOracleAgreement << " (v_max " << gpu.stats.v_max << " vs "
        << cpu.stats.v_max << ", logit_rms " << gpu.stats.logit_rms << " vs " << cpu.stats.logit_rms << ", pv_rms "
        << gpu.stats.pv_rms << " vs " << cpu.stats.pv_rms << ")";
  if (gpu.stats.max_context != cpu.stats.max_context || gpu.stats.row_length != cpu.stats.row_length)
    why << " max_context " << gpu.stats.max_context << " vs " << cpu.stats.max_context << ", row_length "
        << gpu.stats.row_length << " vs " << cpu.stats.row_length;
  if (why.str().empty()) return "";
  return why.str() + "\ncase: " + to_json(c).dump();
}

class DeviceOracle : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!device_inputs_available(&why)) GTEST_SKIP() << "no GPU: " << why;
  }
};

// any_case draws (the property suite's generator of arbitrary valid cases: every layout, KV dtype
// but e5m2, scale mode, value distribution, option, head sizes 16..256, GQA 1..32, q_len 1..16,
// contexts biased to the boundaries up to 4097). One draw in five is moved to e5m2, which
// any_case does not draw.
TEST_F(DeviceOracle, AgreesWithTheCpuOracleOnGeneratedCases) {
  gen::Limits lim;
  lim.max_seqs = 3;
  lim.max_context = 600;
  lim.long_context = 4097;
  lim.big_pools = false;  // the physical pool plays no part here
  const rc::Gen<Case> g = gen::any_case(lim);
  Rng rng(20250611);
  int ran = 0;
  for (int n = 0; n < 300; ++n) {
    Case c = g(rc::Random(rng.next_u64()), 100).value();
    if (n % 5 == 4 && is_e4m3(c.kv_dtype)) {
      c.kv_dtype = DType::fp8_e5m2;
      if (!validate(c).empty()) continue;
    }
    const std::string why = disagreement(c);
    EXPECT_EQ(why, "") << "draw " << n;
    ++ran;
  }
  EXPECT_GT(ran, 250);
}

// Every KV dtype x scale mode x value distribution, each with options, shape and contexts drawn
// from a seeded stream, so that each combination is met whatever any_case happens to draw.
TEST_F(DeviceOracle, AgreesOnEveryDtypeScaleAndValueMix) {
  const DType kDtypes[] = {DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz, DType::fp8_e5m2,
                           DType::int8};
  const ScaleMode kScales[] = {ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_head,
                               ScaleMode::per_token_block_major, ScaleMode::per_token_head_major};
  const int32_t kHeads[] = {64, 80, 96, 128, 192, 256};
  const int32_t kGqa[] = {1, 2, 4, 8, 16, 32};
  const int32_t kWindows[] = {0, 0, 1, 2, 16, 100};
  Rng rng(7);
  int ran = 0;
  for (DType kv : kDtypes)
    for (ScaleMode scale : kScales)
      for (Values values : {Values::normal, Values::outliers}) {
        if (kv == DType::int8 && scale == ScaleMode::none) continue;  // int8 always has a scale
        Case c;
        c.seed = rng.next_u64() >> 16;
        c.kv_dtype = kv;
        c.kv_scale = scale;
        c.values = values;
        c.q_dtype = rng.uniform_int(0, 1) ? DType::fp16 : DType::bf16;
        c.head_size = kHeads[rng.uniform_int(0, 5)];
        c.num_kv_heads = int32_t(rng.uniform_int(1, 4));
        c.num_q_heads = c.num_kv_heads * kGqa[rng.uniform_int(0, 5)];
        c.q_len = int32_t(rng.uniform_int(1, 8));
        c.num_seqs = int32_t(rng.uniform_int(1, 4));
        c.context_lens.clear();
        for (int32_t s = 0; s < c.num_seqs; ++s)
          c.context_lens.push_back(int32_t(rng.uniform_int(c.q_len, rng.uniform_int(0, 3) ? 700 : 3000)));
        c.sliding_window = kWindows[rng.uniform_int(0, 5)];
        c.logit_softcap = rng.uniform_int(0, 2) == 0 ? 30.0 : 0.0;
        c.alibi = rng.uniform_int(0, 2) == 0;
        c.sinks = rng.uniform_int(0, 2) == 0;
        if (rng.uniform_int(0, 3) == 0) c.softmax_scale = 0.2;
        ASSERT_TRUE(validate(c).empty()) << to_json(c).dump();
        EXPECT_EQ(disagreement(c), "");
        ++ran;
      }
  EXPECT_EQ(ran, 58);
}

// The shapes at the edges of the launch: head sizes from 1 to 1024 (every P.V register shape),
// contexts of 1 and of exactly q_len, window 1 (one visible key: weight exp(0) = 1), a window
// longer than the context, sequences of very different lengths in one batch, and a long row
// group (q_len 16 x G 32).
TEST_F(DeviceOracle, AgreesAtTheEdgesOfTheLaunch) {
  std::vector<Case> cases;
  for (int32_t d : {1, 16, 48, 64, 65, 129, 200, 256, 320, 512, 1000, 1024}) {
    Case c;
    c.seed = uint64_t(d) * 31 + 1;
    c.head_size = d;
    c.num_q_heads = 4;
    c.num_kv_heads = 2;
    c.q_len = 2;
    c.num_seqs = 2;
    c.context_lens = {300, 2};
    c.sinks = d % 2 == 0;
    cases.push_back(c);
  }
  for (int32_t w : {1, 5000}) {
    Case c;
    c.seed = 90 + uint64_t(w);
    c.num_q_heads = 8;
    c.num_kv_heads = 2;
    c.q_len = 4;
    c.num_seqs = 3;
    c.context_lens = {4, 1000, 4097};
    c.sliding_window = w;
    c.alibi = true;
    cases.push_back(c);
  }
  {
    Case c;  // context 1, q_len 1: one key, one row
    c.seed = 5;
    c.num_q_heads = 1;
    c.context_lens = {1};
    c.logit_softcap = 1.0;
    cases.push_back(c);
  }
  {
    Case c = test::shaped_case(6, {16, 2049}, 64, 2, 128);  // 16 tokens x 32 heads on one KV head: many P.V row blocks
    c.q_len = 16;
    c.sinks = true;
    c.values = Values::outliers;
    cases.push_back(c);
  }
  for (const Case& c : cases) {
    ASSERT_TRUE(validate(c).empty()) << to_json(c).dump();
    EXPECT_EQ(disagreement(c), "");
  }
}

// The ragged family: per-sequence q_len (decode, MTP and extend rows packed by
// cu_seqlens_q), Dv != D (larger and smaller than D, and Dv = 1), empty sequences (context 0:
// out 0, uniform 0, lse -inf, or the sink's logit with sinks) and the CSR page table (which the
// oracles never read: it must not change their answer). Each case names what it is about.
TEST_F(DeviceOracle, AgreesOnRaggedBatches) {
  auto ragged = [](uint64_t seed, std::vector<int32_t> q_lens, std::vector<int32_t> ctx, int32_t hq, int32_t hkv,
                   int32_t d, int32_t dv) {
    Case c = test::shaped_case(seed, std::move(ctx), hq, hkv, d);
    if (std::adjacent_find(q_lens.begin(), q_lens.end(), std::not_equal_to<>()) == q_lens.end()) {
      c.q_len = q_lens[0];  // all equal: the uniform spelling
    } else {
      c.q_len = *std::max_element(q_lens.begin(), q_lens.end());
      c.q_lens = std::move(q_lens);
    }
    c.head_size_v = dv == d ? 0 : dv;
    return c;
  };
  std::vector<Case> cases;
  {
    Case c = ragged(101, {1, 5, 300}, {64, 5, 700}, 8, 2, 128, 64);  // decode, MTP, extend; Dv < D
    c.page_table = PageTable::csr;
    c.sinks = true;
    cases.push_back(c);
  }
  {
    Case c = ragged(102, {3, 1, 8}, {0, 17, 1000}, 4, 4, 64, 128);  // an empty slot first; Dv > D
    c.sliding_window = 16;
    c.page_table = PageTable::csr;
    cases.push_back(c);
  }
  {
    Case c = ragged(103, {2, 2}, {40, 0}, 16, 2, 192, 128);  // uniform q_len, an empty slot with sinks
    c.sinks = true;
    c.logit_softcap = 30.0;
    cases.push_back(c);
  }
  {
    Case c = ragged(104, {1, 600}, {1, 4097}, 4, 2, 64, 64);  // a long extend row beside a 1-token one
    c.alibi = true;
    c.values = Values::outliers;
    c.page_table = PageTable::csr;
    cases.push_back(c);
  }
  {
    Case c = ragged(105, {4, 1, 2, 7}, {4, 0, 0, 33}, 6, 3, 256, 64);  // two empty slots, int8 per token
    c.kv_dtype = DType::int8;
    c.kv_scale = ScaleMode::per_token_head_major;
    c.sinks = true;
    c.block_size = 32;
    cases.push_back(c);
  }
  {
    Case c = ragged(106, {1, 9}, {300, 9}, 2, 1, 16, 1);  // Dv = 1 (one P.V column), fp8 KV
    c.kv_dtype = DType::fp8_e4m3fn;
    c.kv_scale = ScaleMode::per_head;
    c.page_table = PageTable::csr;
    cases.push_back(c);
  }
  {
    Case c = ragged(107, {16, 3}, {2049, 0}, 64, 2, 128, 80);  // many row blocks, an empty slot last
    c.sinks = true;
    c.sliding_window = 100;
    cases.push_back(c);
  }
  for (const Case& c : cases) {
    ASSERT_TRUE(validate(c).empty()) << to_json(c).dump();
    EXPECT_EQ(disagreement(c), "");
  }
}

// An empty row's contract, as values (the agreement above holds it on both sides at once).
TEST_F(DeviceOracle, WritesTheEmptyRowContract) {
  for (bool sinks : {false, true}) {
    Case c = test::shaped_case(108, {0, 20}, 4, 1, 64);
    c.q_lens = {3, 1};
    c.q_len = 3;
    c.head_size_v = 128;
    c.sinks = sinks;
    c.page_table = PageTable::csr;
    ASSERT_TRUE(validate(c).empty()) << to_json(c).dump();
    const Inputs in = make_inputs(c);
    const ReferenceResult gpu = reference_attention_device(upload_inputs(in));
    ASSERT_EQ(gpu.out.size(), size_t(4 * 4 * 128));
    for (int64_t row = 0; row < 3 * 4; ++row) {  // sequence 0's rows: tokens 0..2, heads 0..3
      for (int32_t d = 0; d < 128; ++d) {
        EXPECT_EQ(gpu.out[size_t(row * 128 + d)], 0.0) << "row " << row;
        EXPECT_EQ(gpu.uniform[size_t(row * 128 + d)], 0.0) << "row " << row;
      }
      const double want = sinks ? double(in.sinks[size_t(row % 4)]) : -INFINITY;
      EXPECT_EQ(gpu.lse[size_t(row)], want) << "row " << row;
    }
    for (int64_t row = 12; row < 16; ++row) EXPECT_TRUE(std::isfinite(gpu.lse[size_t(row)])) << "row " << row;
  }
}

// One long sequence: many chunks of one row group, combined.
TEST_F(DeviceOracle, AgreesOnALongContext) {
  Case c = test::shaped_case(60000, {60000}, 8, 1, 128, 16, DType::fp8_e4m3fn, ScaleMode::per_token_head_major);
  c.q_len = 2;
  c.values = Values::outliers;
  c.sinks = true;
  ASSERT_TRUE(validate(c).empty()) << to_json(c).dump();
  EXPECT_EQ(disagreement(c), "");
}

}  // namespace
}  // namespace pa
