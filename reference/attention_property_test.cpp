// Properties of the CPU oracle over generated small cases: agreement with a second, deliberately
// naive implementation written here from the formulas; invariance under a constant logit shift
// and under a permutation of the logical tokens; GQA equals MHA with repeated KV heads.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/case.hpp"
#include "inputs/inputs.hpp"
#include "core/metrics.hpp"
#include "reference/attention.hpp"

namespace pa {
namespace {

constexpr DType kKvTypes[] = {DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz,
                              DType::int8};
constexpr ScaleMode kScaleModes[] = {ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_head,
                                     ScaleMode::per_token_block_major,
                                     ScaleMode::per_token_head_major};

struct Options {
  bool window = true, softcap = true, alibi = true, sinks = true, mtp = true;
  int32_t min_group = 1;  // smallest G = Hq / Hkv
};

// A small valid case (RapidCheck's size grows them from trivial ones, and shrinking leads back):
// S 1..3, q_len 1..4, Hkv 1..2, G 1..4 (MQA when Hkv = 1), D 1..64, every kv
// dtype and scale mode, context up to 80, custom softmax scale, window, soft-cap, ALiBi, sinks.
Case gen_case(const Options& opt) {
  Case c;
  c.seed = *rc::gen::inRange<uint64_t>(1, 1u << 30);
  c.num_seqs = *rc::gen::inRange(1, 4);
  c.q_len = opt.mtp ? *rc::gen::inRange(1, 5) : 1;
  c.num_kv_heads = *rc::gen::inRange(1, 3);
  c.num_q_heads = c.num_kv_heads * *rc::gen::inRange(opt.min_group, 5);
  c.head_size = *rc::gen::element(1, 2, 5, 8, 16, 64);
  c.block_size = *rc::gen::element(1, 4, 16);
  c.kv_dtype = *rc::gen::elementOf(std::vector<DType>(std::begin(kKvTypes), std::end(kKvTypes)));
  c.q_dtype = *rc::gen::element(DType::bf16, DType::fp16);
  c.kv_scale = *rc::gen::elementOf(std::vector<ScaleMode>(std::begin(kScaleModes), std::end(kScaleModes)));
  if (c.kv_dtype == DType::int8 && c.kv_scale == ScaleMode::none) c.kv_scale = ScaleMode::per_tensor;
  c.context_lens.clear();
  for (int32_t s = 0; s < c.num_seqs; ++s) c.context_lens.push_back(*rc::gen::inRange(c.q_len, 81));
  if (*rc::gen::arbitrary<bool>()) c.softmax_scale = *rc::gen::inRange(5, 200) / 100.0;
  if (opt.window && *rc::gen::arbitrary<bool>()) c.sliding_window = *rc::gen::inRange(1, 85);
  if (opt.softcap && *rc::gen::arbitrary<bool>()) c.logit_softcap = *rc::gen::inRange(5, 500) / 100.0;
  c.alibi = opt.alibi && *rc::gen::arbitrary<bool>();
  c.sinks = opt.sinks && *rc::gen::arbitrary<bool>();
  RC_PRE(validate(c).empty());
  return c;
}

// The second implementation: straight from the formulas of docs/problem.md, in long double, every
// query row recomputed from scratch, visibility tested key by key, no max subtraction (logits of
// generated inputs are O(10), far from exp's range limits).
struct Naive {
  std::vector<long double> out, lse, uniform;
  long double v_max = 0, logit_rms = 0;
};

Naive naive_attention(const Inputs& in) {
  const Case& c = in.c;
  const int32_t D = c.head_size, Hq = c.num_q_heads, G = c.num_q_heads / c.num_kv_heads;
  const long double sm = c.softmax_scale > 0 ? c.softmax_scale : 1.0L / std::sqrt((long double)D);
  Naive r;
  for (int32_t s = 0; s < c.num_seqs; ++s)
    for (int32_t t = 0; t < c.context_lens[size_t(s)]; ++t)
      for (int32_t kh = 0; kh < c.num_kv_heads; ++kh)
        for (int32_t d = 0; d < D; ++d)
          r.v_max = std::max(r.v_max, std::fabs((long double)in.v.value(s, t, kh, d)));
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    const int32_t ctx = c.context_lens[size_t(s)];
    for (int32_t i = 0; i < c.q_len; ++i) {
      const int32_t pos = ctx - c.q_len + i;
      for (int32_t h = 0; h < Hq; ++h) {
        const int32_t kh = h / G;
        long double denom = 0;
        std::vector<long double> num(static_cast<size_t>(D), 0), sum_v(static_cast<size_t>(D), 0);
        int32_t visible = 0;
        for (int32_t j = 0; j < ctx; ++j) {
          const bool causal = j <= pos;
          const bool in_window = c.sliding_window == 0 || pos - j < c.sliding_window;
          if (!causal || !in_window) continue;
          ++visible;
          long double dot = 0, sq = 0;
          for (int32_t d = 0; d < D; ++d) {
            const long double qk = (long double)in.q_at(s, i, h, d) * in.k.value(s, j, kh, d);
            dot += qk;
            sq += qk * qk;
          }
          r.logit_rms = std::max(r.logit_rms, sm * std::sqrt(sq));
          long double logit = sm * dot;
          if (c.logit_softcap > 0)
            logit = c.logit_softcap * std::tanh(logit / (long double)c.logit_softcap);
          if (c.alibi) logit += (long double)alibi_slope(h, Hq) * (j - pos);
          const long double e = std::exp(logit);
          denom += e;
          for (int32_t d = 0; d < D; ++d) {
            num[size_t(d)] += e * in.v.value(s, j, kh, d);
            sum_v[size_t(d)] += in.v.value(s, j, kh, d);
          }
        }
        if (c.sinks) denom += std::exp((long double)in.sinks[size_t(h)]);
        for (int32_t d = 0; d < D; ++d) {
          r.out.push_back(num[size_t(d)] / denom);
          r.uniform.push_back(sum_v[size_t(d)] / visible);
        }
        r.lse.push_back(std::log(denom));
      }
    }
  }
  return r;
}

bool close(double a, long double b, double rel = 1e-11) {
  return std::fabs((long double)a - b) <= rel * (1 + std::fabs(b));
}

template <typename V1, typename V2>
void require_close(const char* what, const V1& a, const V2& b, double rel = 1e-11) {
  RC_ASSERT(a.size() == b.size());
  for (size_t x = 0; x < a.size(); ++x)
    if (!close(double(a[x]), (long double)b[x], rel))
      RC_FAIL(std::string(what) + "[" + std::to_string(x) + "] = " + std::to_string(double(a[x])) +
              " vs " + std::to_string(double(b[x])));
}

RC_GTEST_PROP(ReferenceProperty, MatchesNaiveImplementation, ()) {
  const Case c = gen_case(Options{});
  const Inputs in = make_inputs(c);
  const ReferenceResult ref = reference_attention(in);
  const Naive nv = naive_attention(in);
  require_close("out", ref.out, nv.out);
  require_close("lse", ref.lse, nv.lse);
  require_close("uniform", ref.uniform, nv.uniform);
  RC_ASSERT(ref.stats.v_max == double(nv.v_max));  // a max of exactly representable values
  RC_ASSERT(close(ref.stats.logit_rms, nv.logit_rms));
  RC_ASSERT(ref.stats.max_context == int64_t(c.max_context()));
  for (double x : ref.out) RC_ASSERT(std::isfinite(x));
}

// ToleranceInputs::pv_rms from its definition, with PvRmsAccumulator, row by row in double
// precision: weights w_t = exp(x_t - m) / l of the keys below the row's maximum.
double exact_pv_rms(const Inputs& in, const ReferenceResult& ref) {
  const Case& c = in.c;
  const int32_t D = c.head_size, Hq = c.num_q_heads, G = Hq / c.num_kv_heads;
  const double sm = c.effective_softmax_scale();
  PvRmsAccumulator acc;
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    const int32_t ctx = c.context_lens[size_t(s)];
    for (int32_t i = 0; i < c.q_len; ++i) {
      const int32_t pos = ctx - c.q_len + i;
      for (int32_t h = 0; h < Hq; ++h) {
        std::vector<double> x;
        std::vector<int32_t> keys;
        for (int32_t j = 0; j <= pos; ++j) {
          if (c.sliding_window > 0 && pos - j >= c.sliding_window) continue;
          double dot = 0;
          for (int32_t d = 0; d < D; ++d) dot += double(in.q_at(s, i, h, d)) * in.k.value(s, j, h / G, d);
          double l = sm * dot;
          if (c.logit_softcap > 0) l = c.logit_softcap * std::tanh(l / c.logit_softcap);
          if (c.alibi) l += alibi_slope(h, Hq) * (j - pos);
          x.push_back(l);
          keys.push_back(j);
        }
        double m = c.sinks ? double(in.sinks[size_t(h)]) : -INFINITY;
        for (double v : x) m = std::max(m, v);
        double denom = c.sinks ? std::exp(double(in.sinks[size_t(h)]) - m) : 0.0;
        for (double v : x) denom += std::exp(v - m);
        acc.begin_row(D);
        std::vector<double> vrow(static_cast<size_t>(D));
        for (size_t t = 0; t < x.size(); ++t) {
          const double e = std::exp(x[t] - m);
          if (!(e < 1.0)) continue;
          for (int32_t d = 0; d < D; ++d) vrow[size_t(d)] = in.v.value(s, keys[t], h / G, d);
          acc.add_key(e / denom, vrow.data());
        }
        const size_t row = (size_t(s) * c.q_len + size_t(i)) * size_t(Hq) + size_t(h);
        acc.end_row(ref.out.data() + row * size_t(D));
      }
    }
  }
  return acc.value();
}

// The oracle's pv_rms is an upper bound of the definition's (so the aggregate checks built on it
// stay conservative) and never looser than the unmeasured fallback 2 v_max.
RC_GTEST_PROP(ReferenceProperty, PvRmsBoundsTheDefinition, ()) {
  const Case c = gen_case(Options{});
  const Inputs in = make_inputs(c);
  const ReferenceResult ref = reference_attention(in);
  const double exact = exact_pv_rms(in, ref);
  RC_ASSERT(ref.stats.pv_rms >= exact * (1 - 1e-9));
  RC_ASSERT(ref.stats.pv_rms <= 2 * ref.stats.v_max * (1 + 1e-12));
}

// Adding the same constant to every logit of a row leaves O unchanged and moves lse by it. The
// shift is built into the data: the last K dimension is 1.0 for every token (exact in every
// format, scale none), so setting that dimension of q to a changes every logit of the row by
// sm * a before soft-cap/ALiBi. Soft-cap is non-linear and a sink does not shift, so both are off;
// window, ALiBi (additive) and MTP stay on.
RC_GTEST_PROP(ReferenceProperty, ConstantLogitShiftLeavesOutputUnchanged, ()) {
  Options opt;
  opt.softcap = false;
  opt.sinks = false;
  Case c = gen_case(opt);
  c.kv_scale = ScaleMode::none;
  c.kv_dtype = *rc::gen::element(DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz);
  c.head_size += 1;
  Inputs base = make_inputs(c);
  const int32_t D = c.head_size;
  const uint16_t one = uint16_t(codec::encode(c.kv_dtype, 1.0f));
  for (size_t r = 0; r < base.k.scales.size(); ++r) base.k.codes[r * size_t(D) + size_t(D - 1)] = one;
  const size_t q_rows = base.q.size() / size_t(D);
  for (size_t r = 0; r < q_rows; ++r) base.q[r * size_t(D) + size_t(D - 1)] = 0.0f;
  Inputs shifted = base;
  const float a = float(*rc::gen::inRange(-40, 41) / 4.0);  // exact in float
  for (size_t r = 0; r < q_rows; ++r) shifted.q[r * size_t(D) + size_t(D - 1)] = a;

  const ReferenceResult r0 = reference_attention(base), r1 = reference_attention(shifted);
  require_close("out", r1.out, r0.out, 1e-12);
  const double shift = c.effective_softmax_scale() * a;
  std::vector<double> lse0_shifted(r0.lse);
  for (double& x : lse0_shifted) x += shift;
  require_close("lse", r1.lse, lse0_shifted, 1e-12);
}

// With q_len = 1, no window and no ALiBi nothing depends on the order of the keys: permuting the
// logical tokens of each sequence (K and V rows, codes and scales together) leaves O and lse
// unchanged up to the summation order. Soft-cap and sinks do not depend on position and stay on.
RC_GTEST_PROP(ReferenceProperty, TokenPermutationLeavesOutputUnchanged, ()) {
  Options opt;
  opt.window = false;
  opt.alibi = false;
  opt.mtp = false;
  const Case c = gen_case(opt);
  const Inputs in = make_inputs(c);
  Inputs perm = in;
  const int32_t H = c.num_kv_heads, D = c.head_size;
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    const int32_t ctx = c.context_lens[size_t(s)];
    std::vector<int32_t> order(static_cast<size_t>(ctx));
    std::iota(order.begin(), order.end(), 0);
    // A generated permutation (shrinkable, from RapidCheck's seed).
    for (int32_t t = ctx - 1; t > 0; --t) {
      const int32_t u = *rc::gen::inRange(0, t + 1);
      std::swap(order[size_t(t)], order[size_t(u)]);
    }
    for (LogicalKv* kv : {&perm.k, &perm.v}) {
      const LogicalKv& src = kv == &perm.k ? in.k : in.v;
      for (int32_t t = 0; t < ctx; ++t) {
        const int64_t to = kv->row(s, t), from = src.row(s, order[size_t(t)]);
        for (int32_t h = 0; h < H; ++h) {
          kv->scales[size_t(to * H + h)] = src.scales[size_t(from * H + h)];
          for (int32_t d = 0; d < D; ++d)
            kv->codes[size_t((to * H + h) * D + d)] = src.codes[size_t((from * H + h) * D + d)];
        }
      }
    }
  }
  const ReferenceResult r0 = reference_attention(in), r1 = reference_attention(perm);
  require_close("out", r1.out, r0.out, 1e-12);
  require_close("lse", r1.lse, r0.lse, 1e-12);
  require_close("uniform", r1.uniform, r0.uniform, 1e-12);
}

// GQA equals MHA with repeated KV heads: the MHA case has Hkv = Hq and KV head h holds a copy of
// the GQA case's KV head h / G; Q, slopes and sinks are shared. The reference computes each head
// in the same order either way, so the outputs are bit-identical.
RC_GTEST_PROP(ReferenceProperty, GqaEqualsMhaWithRepeatedKvHeads, ()) {
  Options opt;
  opt.min_group = 2;
  const Case c = gen_case(opt);
  const Inputs gqa = make_inputs(c);
  Case mc = c;
  mc.num_kv_heads = c.num_q_heads;
  if (mc.kv_scale == ScaleMode::none && mc.kv_dtype == DType::int8) mc.kv_scale = ScaleMode::per_tensor;
  Inputs mha = make_inputs(mc);
  mha.q = gqa.q;
  mha.q_codes = gqa.q_codes;
  mha.alibi_slopes = gqa.alibi_slopes;
  mha.sinks = gqa.sinks;
  const int32_t Hq = c.num_q_heads, Hkv = c.num_kv_heads, G = c.gqa(), D = c.head_size;
  const int64_t T = gqa.k.token_base.back();
  for (auto [dst, src] : {std::make_pair(&mha.k, &gqa.k), std::make_pair(&mha.v, &gqa.v)})
    for (int64_t t = 0; t < T; ++t)
      for (int32_t h = 0; h < Hq; ++h) {
        const int32_t kh = h / G;
        dst->scales[size_t(t * Hq + h)] = src->scales[size_t(t * Hkv + kh)];
        for (int32_t d = 0; d < D; ++d)
          dst->codes[size_t((t * Hq + h) * D + d)] = src->codes[size_t((t * Hkv + kh) * D + d)];
      }
  const ReferenceResult rg = reference_attention(gqa), rm = reference_attention(mha);
  RC_ASSERT(rg.out == rm.out);
  RC_ASSERT(rg.lse == rm.lse);
  RC_ASSERT(rg.uniform == rm.uniform);
  RC_ASSERT(rg.stats.v_max == rm.stats.v_max);
  RC_ASSERT(rg.stats.logit_rms == rm.stats.logit_rms);
}

}  // namespace
}  // namespace pa
