// Analytic cases of the CPU oracle: answers derived by hand from the definition of attention, not
// from the code under test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "core/case.hpp"
#include "inputs/inputs.hpp"
#include "reference/attention.hpp"
#include "testing/case_shape.hpp"

namespace pa {
namespace {

size_t row_of(const Case& c, int32_t s, int32_t i, int32_t h) {
  return (size_t(s) * c.q_len + size_t(i)) * c.num_q_heads + size_t(h);
}

Case small_case(DType kv, ScaleMode scale) {
  Case c = test::shaped_case(7, {37, 5}, 4, 2, 16, 16, kv, scale);
  c.q_len = 3;
  return c;
}

const std::vector<std::pair<DType, ScaleMode>> kKvKinds = {
    {DType::bf16, ScaleMode::none},
    {DType::fp16, ScaleMode::per_head},
    {DType::fp8_e4m3fn, ScaleMode::per_token_block_major},
    {DType::fp8_e4m3fnuz, ScaleMode::per_tensor},
    {DType::int8, ScaleMode::per_token_head_major},
};

// q . k in the documented order (d increasing, one accumulator), times the softmax scale.
double logit_of(const Inputs& in, int32_t s, int32_t i, int32_t h, int32_t j) {
  const int32_t kh = h / in.c.gqa();
  double dot = 0;
  for (int32_t d = 0; d < in.c.head_size; ++d) dot += double(in.q_at(s, i, h, d)) * in.k.value(s, j, kh, d);
  return in.c.effective_softmax_scale() * dot;
}

// One visible key: its weight is exp(0) / exp(0) = 1 exactly, so O = V of that key bit for bit
// and lse is its logit. Two ways to have one visible key: a context of 1, and window W = 1 (the
// query then sees only its own position p = ctx - q_len + i).
TEST(ReferenceAnalytic, SingleVisibleTokenGivesItsValueRow) {
  for (const auto& [kv, scale] : kKvKinds) {
    for (const int32_t window : {0, 1}) {
      Case c = small_case(kv, scale);
      if (window == 0) {
        c.q_len = 1;
        c.context_lens = {1, 1};
      }
      c.sliding_window = window;
      const Inputs in = make_inputs(c);
      const ReferenceResult r = reference_attention(in);
      for (int32_t s = 0; s < c.num_seqs; ++s)
        for (int32_t i = 0; i < c.q_len; ++i) {
          const int32_t p = c.context_lens[size_t(s)] - c.q_len + i;
          for (int32_t h = 0; h < c.num_q_heads; ++h) {
            const size_t row = row_of(c, s, i, h);
            for (int32_t d = 0; d < c.head_size; ++d) {
              EXPECT_EQ(r.out[row * c.head_size + d], in.v.value(s, p, h / c.gqa(), d))
                  << to_string(kv) << " W=" << window << " s=" << s << " i=" << i << " h=" << h;
              EXPECT_EQ(r.uniform[row * c.head_size + d], in.v.value(s, p, h / c.gqa(), d));
            }
            EXPECT_DOUBLE_EQ(r.lse[row], logit_of(in, s, i, h, p));
          }
        }
    }
  }
}

// All keys of a sequence equal: every visible key has the same logit, softmax is uniform, O is
// the mean of the visible V rows and lse = logit + log(n). MTP rows see different numbers of keys.
TEST(ReferenceAnalytic, IdenticalKeysGiveMeanOfVisibleValues) {
  for (const auto& [kv, scale] : kKvKinds) {
    const Case c = small_case(kv, scale);
    Inputs in = make_inputs(c);
    const int32_t H = c.num_kv_heads, D = c.head_size;
    for (int32_t s = 0; s < c.num_seqs; ++s)
      for (int32_t t = 1; t < c.context_lens[size_t(s)]; ++t)
        for (int32_t h = 0; h < H; ++h) {
          const int64_t to = in.k.row(s, t), from = in.k.row(s, 0);
          in.k.scales[size_t(to * H + h)] = in.k.scales[size_t(from * H + h)];
          for (int32_t d = 0; d < D; ++d)
            in.k.codes[size_t((to * H + h) * D + d)] = in.k.codes[size_t((from * H + h) * D + d)];
        }
    const ReferenceResult r = reference_attention(in);
    for (int32_t s = 0; s < c.num_seqs; ++s)
      for (int32_t i = 0; i < c.q_len; ++i) {
        const int32_t n = c.context_lens[size_t(s)] - c.q_len + i + 1;  // keys 0..p
        for (int32_t h = 0; h < c.num_q_heads; ++h) {
          const size_t row = row_of(c, s, i, h);
          for (int32_t d = 0; d < D; ++d) {
            double mean = 0;
            for (int32_t j = 0; j < n; ++j) mean += in.v.value(s, j, h / c.gqa(), d);
            mean /= n;
            EXPECT_NEAR(r.out[row * D + d], mean, 1e-13 * (1 + std::fabs(mean))) << to_string(kv);
            EXPECT_NEAR(r.uniform[row * D + d], mean, 1e-13 * (1 + std::fabs(mean)));
          }
          EXPECT_NEAR(r.lse[row], logit_of(in, s, i, h, 0) + std::log(double(n)), 1e-12);
        }
      }
  }
}

// A sink adds exp(sink) to the denominator only. With Z = sum_j exp(x_j):
//   lse' = log(Z + exp(sink)) > lse,  w_sink = exp(sink - lse'),  O' = Z / (Z + exp(sink)) O
//        = (1 - w_sink) O.
// A sink far below every logit (-1000) underflows to 0 and changes nothing, bit for bit.
TEST(ReferenceAnalytic, SinksOnlyLowerTheWeights) {
  const Case c = small_case(DType::bf16, ScaleMode::none);
  const Inputs base = make_inputs(c);
  const ReferenceResult r0 = reference_attention(base);
  Inputs with = base;
  with.c.sinks = true;
  with.sinks = {-2.0f, 0.0f, 1.5f, 4.0f};
  const ReferenceResult r1 = reference_attention(with);
  const int32_t D = c.head_size;
  for (size_t row = 0; row < r0.lse.size(); ++row) {
    const double sink = with.sinks[row % size_t(c.num_q_heads)];
    EXPECT_GT(r1.lse[row], r0.lse[row]);
    EXPECT_NEAR(r1.lse[row], std::log(std::exp(r0.lse[row]) + std::exp(sink)), 1e-12);
    const double w_sink = std::exp(sink - r1.lse[row]);
    for (int32_t d = 0; d < D; ++d) {
      const double want = (1 - w_sink) * r0.out[row * D + d];
      EXPECT_NEAR(r1.out[row * D + d], want, 1e-13 * (1 + std::fabs(want)));
    }
  }
  EXPECT_EQ(r1.uniform, r0.uniform);  // the sink has no V row

  Inputs negligible = base;
  negligible.c.sinks = true;
  negligible.sinks.assign(size_t(c.num_q_heads), -1000.0f);
  const ReferenceResult r2 = reference_attention(negligible);
  EXPECT_EQ(r2.out, r0.out);
  EXPECT_EQ(r2.lse, r0.lse);
}

// A window at least as long as the context hides nothing: p - j <= p <= ctx - 1 < W.
TEST(ReferenceAnalytic, WindowLongerThanContextIsNoWindow) {
  Case c = small_case(DType::fp16, ScaleMode::per_head);
  c.alibi = true;
  c.logit_softcap = 5.0;
  const ReferenceResult r0 = reference_attention(make_inputs(c));
  for (const int32_t w : {c.max_context(), c.max_context() + 1, 1 << 20}) {
    c.sliding_window = w;
    const ReferenceResult r1 = reference_attention(make_inputs(c));
    EXPECT_EQ(r1.out, r0.out) << "W=" << w;
    EXPECT_EQ(r1.lse, r0.lse) << "W=" << w;
  }
  // One shorter really hides key 0 from the last query row of the longest sequence.
  c.sliding_window = c.max_context() - 1;
  EXPECT_NE(reference_attention(make_inputs(c)).out, r0.out);
}

// Sets value x (exact in bf16) in every tensor of a tiny bf16 case with scale none.
void set_k(Inputs& in, int32_t s, int32_t t, int32_t h, std::vector<float> x) {
  for (int32_t d = 0; d < in.c.head_size; ++d)
    in.k.codes[size_t((in.k.row(s, t) * in.k.heads + h) * in.k.head_size + d)] =
        uint16_t(codec::encode(DType::bf16, x[size_t(d)]));
}
void set_v(Inputs& in, int32_t s, int32_t t, int32_t h, std::vector<float> x) {
  for (int32_t d = 0; d < in.c.head_size; ++d)
    in.v.codes[size_t((in.v.row(s, t) * in.v.heads + h) * in.v.head_size + d)] =
        uint16_t(codec::encode(DType::bf16, x[size_t(d)]));
}
void set_q(Inputs& in, int32_t s, int32_t h, std::vector<float> x) {
  for (int32_t d = 0; d < in.c.head_size; ++d)
    in.q[size_t((int64_t(s) * in.c.q_len * in.c.num_q_heads + h) * in.c.head_size + d)] = x[size_t(d)];
}

// S = 2, ctx = {2, 3}, Hq = 2 sharing one KV head, D = 2, softmax scale 1/2, values set by hand:
//   seq 0: K = (1,0), (0,2)         V = (1,-3), (3,5)        q_h0 = (1,1)   q_h1 = (2,-1)
//   seq 1: K = (1,1), (2,-1), (0,.5) V = (2,0), (-4,2), (.5,1) q_h0 = (.5,4) q_h1 = (-1,0)
// v_max = 5 (seq 0, V_1). logit_rms = max 0.5 * |(q_d k_d)_d|: largest is seq 1, h0, key 1,
// (1, -4) -> 0.5 sqrt(17). uniform: seq 0 (2, 1), seq 1 (-0.5, 1). Seq 0 head 1: logits
// 0.5*2 = 1 and 0.5*(-2) = -1, O = (e V0 + e^-1 V1) / (e + e^-1), lse = log(e + e^-1).
// With window W = 1 each query sees only its own key: uniform = last V row, v_max still 5 (every
// valid token counts), logit_rms from visible keys only: seq 0 key 1 (0,2)/(0,-2) -> 1,
// seq 1 key 2 (0,2)/(0,0) -> 1.
TEST(ReferenceAnalytic, StatsAndUniformByHand) {
  for (const int32_t window : {0, 1}) {
    Case c;
    c.num_seqs = 2;
    c.q_len = 1;
    c.num_q_heads = 2;
    c.num_kv_heads = 1;
    c.head_size = 2;
    c.context_lens = {2, 3};
    c.softmax_scale = 0.5;
    c.sliding_window = window;
    Inputs in = make_inputs(c);
    set_k(in, 0, 0, 0, {1, 0});
    set_k(in, 0, 1, 0, {0, 2});
    set_v(in, 0, 0, 0, {1, -3});
    set_v(in, 0, 1, 0, {3, 5});
    set_k(in, 1, 0, 0, {1, 1});
    set_k(in, 1, 1, 0, {2, -1});
    set_k(in, 1, 2, 0, {0, 0.5f});
    set_v(in, 1, 0, 0, {2, 0});
    set_v(in, 1, 1, 0, {-4, 2});
    set_v(in, 1, 2, 0, {0.5f, 1});
    set_q(in, 0, 0, {1, 1});
    set_q(in, 0, 1, {2, -1});
    set_q(in, 1, 0, {0.5f, 4});
    set_q(in, 1, 1, {-1, 0});
    const ReferenceResult r = reference_attention(in);

    EXPECT_EQ(r.stats.v_max, 5.0);
    EXPECT_EQ(r.stats.max_context, 3);
    const std::vector<double> uni =
        window == 0 ? std::vector<double>{2, 1, 2, 1, -0.5, 1, -0.5, 1}
                    : std::vector<double>{3, 5, 3, 5, 0.5, 1, 0.5, 1};
    ASSERT_EQ(r.uniform.size(), uni.size());
    for (size_t x = 0; x < uni.size(); ++x) EXPECT_DOUBLE_EQ(r.uniform[x], uni[x]) << "W=" << window;
    if (window == 0) {
      EXPECT_DOUBLE_EQ(r.stats.logit_rms, 0.5 * std::sqrt(17.0));
      const double e = std::exp(1.0), ei = std::exp(-1.0);
      EXPECT_NEAR(r.out[2], (e * 1 + ei * 3) / (e + ei), 1e-15);
      EXPECT_NEAR(r.out[3], (e * -3 + ei * 5) / (e + ei), 1e-15);
      EXPECT_NEAR(r.lse[1], std::log(e + ei), 1e-15);
    } else {
      EXPECT_DOUBLE_EQ(r.stats.logit_rms, 1.0);
      EXPECT_EQ(r.out, r.uniform);  // one visible key each
    }
  }
}

// GQA mapping h / G: with Hq = 4, Hkv = 2 heads 0,1 read KV head 0 and heads 2,3 read KV head 1.
// Give the two KV heads single-token contexts with different V: O of head h must be V of h / 2
// (h % Hkv would give heads 1 and 2 the wrong row).
TEST(ReferenceAnalytic, QueryHeadReadsKvHeadHOverG) {
  Case c;
  c.num_q_heads = 4;
  c.num_kv_heads = 2;
  c.head_size = 2;
  c.context_lens = {1};
  Inputs in = make_inputs(c);
  set_v(in, 0, 0, 0, {1, 2});
  set_v(in, 0, 0, 1, {-7, 9});
  const ReferenceResult r = reference_attention(in);
  EXPECT_EQ(r.out, (std::vector<double>{1, 2, 1, 2, -7, 9, -7, 9}));
}

// The oracle reads logical K/V only: the physical layout, page size, page padding and pool size
// change where codes live (and what poison surrounds them), not the logical values, so the
// result is bit-identical across all of them.
TEST(ReferenceAnalytic, PhysicalPlacementDoesNotMatter) {
  for (const DType kv : {DType::bf16, DType::fp8_e4m3fnuz}) {
    Case c = small_case(kv, kv == DType::bf16 ? ScaleMode::none : ScaleMode::per_token_head_major);
    c.head_size = 64;
    c.sliding_window = 7;
    c.sinks = true;
    const ReferenceResult r0 = reference_attention(make_inputs(c));
    for (const KvLayout layout : {KvLayout::nhd, KvLayout::hnd, KvLayout::vllm, KvLayout::shuffled})
      for (const int32_t block : {16, 32}) {
        Case p = c;
        p.kv_layout = layout;
        p.block_size = block;
        p.page_pad = 24;
        p.num_blocks = 50;
        const ReferenceResult r1 = reference_attention(make_inputs(p));
        EXPECT_EQ(r1.out, r0.out) << to_string(layout) << " B=" << block;
        EXPECT_EQ(r1.lse, r0.lse) << to_string(layout) << " B=" << block;
      }
  }
}

TEST(ReferenceAnalytic, InconsistentInputsAreRejected) {
  Case c;
  c.sinks = true;
  Inputs in = make_inputs(c);
  in.sinks.clear();
  EXPECT_THROW(reference_attention(in), std::invalid_argument);
}

// oracle_disagreement, the yardstick the GPU oracle is held to (kOracleAgreement).
TEST(OracleDisagreement, MeasuresTheLargestRelativeDifference) {
  const ReferenceResult b = reference_attention(make_inputs(small_case(DType::bf16, ScaleMode::none)));
  ASSERT_GT(b.stats.v_max, 0);
  ASSERT_GT(b.stats.logit_rms, 0);
  ASSERT_GT(b.stats.pv_rms, 0);
  EXPECT_EQ(oracle_disagreement(b, b), 0.0);

  const size_t D = b.out.size() / b.lse.size();
  // out and uniform: relative to the largest |element| of the row (row 1 here).
  for (auto field : {&ReferenceResult::out, &ReferenceResult::uniform}) {
    ReferenceResult a = b;
    double row_max = 0;
    for (size_t d = 0; d < D; ++d) row_max = std::max(row_max, std::fabs((b.*field)[D + d]));
    ASSERT_GT(row_max, 0);
    (a.*field)[D + 3] += 1e-9 * row_max;
    EXPECT_NEAR(oracle_disagreement(a, b), 1e-9, 1e-15);
  }
  // lse: relative to max(1, |lse|).
  {
    ReferenceResult a = b;
    a.lse[2] += 1e-10 * std::max(1.0, std::fabs(b.lse[2]));
    EXPECT_NEAR(oracle_disagreement(a, b), 1e-10, 1e-16);
  }
  // The three statistics: relative to b's value.
  for (auto stat : {&ToleranceInputs::v_max, &ToleranceInputs::logit_rms, &ToleranceInputs::pv_rms}) {
    ReferenceResult a = b;
    a.stats.*stat *= 1 + 1e-8;
    EXPECT_NEAR(oracle_disagreement(a, b), 1e-8, 1e-14);
  }
}

TEST(OracleDisagreement, NanOnOneSideAndShapeMismatchAreInfinite) {
  const ReferenceResult b = reference_attention(make_inputs(small_case(DType::fp16, ScaleMode::per_head)));
  const double kInf = std::numeric_limits<double>::infinity(), kNan = std::nan("");
  {
    ReferenceResult a = b;
    a.out[5] = kNan;
    EXPECT_EQ(oracle_disagreement(a, b), kInf);
    EXPECT_EQ(oracle_disagreement(b, a), kInf);
    EXPECT_EQ(oracle_disagreement(a, a), 0.0);  // NaN on both sides: the same result
  }
  {
    ReferenceResult a = b;
    a.lse[0] = kNan;
    EXPECT_EQ(oracle_disagreement(a, b), kInf);
  }
  {
    ReferenceResult a = b;
    a.stats.pv_rms = kNan;
    EXPECT_EQ(oracle_disagreement(a, b), kInf);
  }
  for (auto field : {&ReferenceResult::out, &ReferenceResult::lse, &ReferenceResult::uniform}) {
    ReferenceResult a = b;
    (a.*field).pop_back();
    EXPECT_EQ(oracle_disagreement(a, b), kInf);
    EXPECT_EQ(oracle_disagreement(b, a), kInf);
  }
}

}  // namespace
}  // namespace pa
