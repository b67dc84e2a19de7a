// The fast oracle is the sequential one, bit for bit, on any thread count. sequential_reference
// below is the plain single-threaded oracle (one (sequence, KV head) at a time, one key at a time,
// the summation order documented in attention.cpp) kept as the definition the tiled, vectorised,
// threaded reference_attention must reproduce exactly: out, lse, uniform and both statistics.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/case.hpp"
#include "inputs/inputs.hpp"
#include "reference/attention.hpp"

namespace pa {
namespace {

ReferenceResult sequential_reference(const Inputs& in) {
  const Case& c = in.c;
  const int32_t S = c.num_seqs, QL = c.q_len, Hq = c.num_q_heads, Hkv = c.num_kv_heads;
  const int32_t D = c.head_size, G = Hq / Hkv, W = c.sliding_window;
  const double sm = c.effective_softmax_scale();
  const double cap = c.logit_softcap;
  ReferenceResult r;
  const size_t rows = size_t(S) * QL * Hq;
  r.out.assign(rows * D, 0.0);
  r.uniform.assign(rows * D, 0.0);
  r.lse.assign(rows, 0.0);
  r.stats.max_context = c.max_context();
  std::vector<double> kmat, vmat, logits;
  std::vector<double> q(static_cast<size_t>(D)), acc(static_cast<size_t>(D)),
      uni(static_cast<size_t>(D));
  for (int32_t s = 0; s < S; ++s) {
    const int32_t ctx = in.context_lens[size_t(s)];
    logits.resize(size_t(ctx));
    for (int32_t kvh = 0; kvh < Hkv; ++kvh) {
      kmat.resize(size_t(ctx) * D);
      vmat.resize(size_t(ctx) * D);
      for (int32_t t = 0; t < ctx; ++t)
        for (int32_t d = 0; d < D; ++d) {
          kmat[size_t(t) * D + size_t(d)] = in.k.value(s, t, kvh, d);
          vmat[size_t(t) * D + size_t(d)] = in.v.value(s, t, kvh, d);
          r.stats.v_max = std::max(r.stats.v_max, std::fabs(vmat[size_t(t) * D + size_t(d)]));
        }
      for (int32_t i = 0; i < QL; ++i) {
        const int32_t p = ctx - QL + i;
        const int32_t lo = W > 0 ? std::max(0, p - W + 1) : 0;
        const int32_t n = p - lo + 1;
        std::fill(uni.begin(), uni.end(), 0.0);
        for (int32_t j = lo; j <= p; ++j)
          for (int32_t d = 0; d < D; ++d) uni[size_t(d)] += vmat[size_t(j) * D + size_t(d)];
        for (int32_t g = 0; g < G; ++g) {
          const int32_t h = kvh * G + g;
          const size_t row = (size_t(s) * QL + size_t(i)) * Hq + size_t(h);
          for (int32_t d = 0; d < D; ++d) q[size_t(d)] = double(in.q_at(s, i, h, d));
          const double slope = c.alibi ? double(in.alibi_slopes[size_t(h)]) : 0.0;
          double m =
              c.sinks ? double(in.sinks[size_t(h)]) : -std::numeric_limits<double>::infinity();
          for (int32_t j = lo; j <= p; ++j) {
            double dot = 0.0, sq = 0.0;
            for (int32_t d = 0; d < D; ++d) {
              const double prod = q[size_t(d)] * kmat[size_t(j) * D + size_t(d)];
              dot += prod;
              sq += prod * prod;
            }
            r.stats.logit_rms = std::max(r.stats.logit_rms, std::fabs(sm) * std::sqrt(sq));
            double x = sm * dot;
            if (cap > 0) x = cap * std::tanh(x / cap);
            if (c.alibi) x += slope * double(j - p);
            logits[size_t(j - lo)] = x;
            m = std::max(m, x);
          }
          double denom = 0.0;
          for (int32_t j = 0; j < n; ++j) {
            logits[size_t(j)] = std::exp(logits[size_t(j)] - m);
            denom += logits[size_t(j)];
          }
          if (c.sinks) denom += std::exp(double(in.sinks[size_t(h)]) - m);
          std::fill(acc.begin(), acc.end(), 0.0);
          for (int32_t j = 0; j < n; ++j)
            for (int32_t d = 0; d < D; ++d)
              acc[size_t(d)] += logits[size_t(j)] * vmat[size_t(lo + j) * D + size_t(d)];
          for (int32_t d = 0; d < D; ++d) {
            r.out[row * D + size_t(d)] = acc[size_t(d)] / denom;
            r.uniform[row * D + size_t(d)] = uni[size_t(d)] / double(n);
          }
          r.lse[row] = m + std::log(denom);
        }
      }
    }
  }
  return r;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}
bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Where the two results differ first, or "" when they are the same bits.
std::string first_difference(const ReferenceResult& a, const ReferenceResult& b) {
  if (!same_bits(a.out, b.out)) return "out";
  if (!same_bits(a.lse, b.lse)) return "lse";
  if (!same_bits(a.uniform, b.uniform)) return "uniform";
  if (!same_bits(a.stats.v_max, b.stats.v_max)) return "v_max";
  if (!same_bits(a.stats.logit_rms, b.stats.logit_rms)) return "logit_rms";
  if (a.stats.max_context != b.stats.max_context) return "max_context";
  return "";
}

// Restores the default thread count when a test ends, however it ends.
struct ThreadsGuard {
  ~ThreadsGuard() { set_reference_threads(0); }
};

ReferenceResult with_threads(const Inputs& in, int threads) {
  set_reference_threads(threads);
  return reference_attention(in);
}

// Cases from tiny (one thread, padding-heavy head sizes) to large enough for several items per
// thread and split head groups (S < 2 * threads): every dtype, window, soft-cap, ALiBi, sinks, MTP.
Case gen_case() {
  Case c;
  c.seed = *rc::gen::inRange<uint64_t>(1, 1u << 30);
  c.num_seqs = *rc::gen::inRange(1, 4);
  c.q_len = *rc::gen::inRange(1, 4);
  c.num_kv_heads = *rc::gen::element(1, 2, 3, 4);
  c.num_q_heads = c.num_kv_heads * *rc::gen::inRange(1, 5);
  c.head_size = *rc::gen::element(1, 5, 8, 13, 64, 128);
  c.block_size = *rc::gen::element(1, 16);
  c.kv_dtype = *rc::gen::element(DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz,
                                 DType::int8);
  c.q_dtype = *rc::gen::element(DType::bf16, DType::fp16);
  c.kv_scale = *rc::gen::element(ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_head,
                                 ScaleMode::per_token_block_major, ScaleMode::per_token_head_major);
  if (c.kv_dtype == DType::int8 && c.kv_scale == ScaleMode::none)
    c.kv_scale = ScaleMode::per_tensor;
  const int32_t max_ctx = *rc::gen::element(40, 700);
  c.context_lens.clear();
  for (int32_t s = 0; s < c.num_seqs; ++s)
    c.context_lens.push_back(*rc::gen::inRange(c.q_len, max_ctx + 1));
  if (*rc::gen::arbitrary<bool>()) c.sliding_window = *rc::gen::inRange(1, 300);
  if (*rc::gen::arbitrary<bool>()) c.logit_softcap = *rc::gen::inRange(5, 500) / 100.0;
  c.alibi = *rc::gen::arbitrary<bool>();
  c.sinks = *rc::gen::arbitrary<bool>();
  RC_PRE(validate(c).empty());
  return c;
}

RC_GTEST_PROP(ReferenceThreads, SameBitsAsSequentialOracleOnOneAndThreeThreads, ()) {
  ThreadsGuard guard;
  const Inputs in = make_inputs(gen_case());
  const ReferenceResult seq = sequential_reference(in);
  const ReferenceResult one = with_threads(in, 1), three = with_threads(in, 3);
  RC_ASSERT(first_difference(seq, one) == "");
  RC_ASSERT(first_difference(one, three) == "");
}

// Larger fixed shapes (always on the threaded path), a few seeds each: MHA, GQA with one
// sequence (split head groups), MQA with several sequences of different lengths.
TEST(ReferenceThreads, LargerCasesSameBitsOnOneTwoAndThreeThreads) {
  ThreadsGuard guard;
  for (uint64_t seed : {11u, 12u, 13u}) {
    Case c;
    c.seed = seed;
    for (int shape = 0; shape < 3; ++shape) {
      c.num_seqs = shape == 2 ? 3 : 1;
      c.num_q_heads = shape == 0 ? 4 : 16;
      c.num_kv_heads = shape == 0 ? 4 : (shape == 1 ? 4 : 1);
      c.head_size = 128;
      c.q_len = shape == 1 ? 2 : 1;
      c.context_lens =
          shape == 2 ? std::vector<int32_t>{2000, 17, 1029} : std::vector<int32_t>{3001};
      c.kv_dtype = shape == 1 ? DType::fp8_e4m3fn : DType::bf16;
      c.kv_scale = shape == 1 ? ScaleMode::per_token_head_major : ScaleMode::none;
      c.sliding_window = shape == 1 ? 1500 : 0;
      c.sinks = shape == 2;
      const Inputs in = make_inputs(c);
      const ReferenceResult seq = sequential_reference(in);
      for (int threads : {1, 2, 3})
        EXPECT_EQ(first_difference(seq, with_threads(in, threads)), "")
            << "seed " << seed << " shape " << shape << " threads " << threads;
    }
  }
}

TEST(ReferenceThreads, SetterControlsTheCount) {
  ThreadsGuard guard;
  set_reference_threads(3);
  EXPECT_EQ(reference_threads(), 3);
  set_reference_threads(0);
  EXPECT_EQ(reference_threads(), default_threads());
  EXPECT_GE(reference_threads(), 1);
}

}  // namespace
}  // namespace pa
