// Metrics, verdict and the tolerance model. Expected metric values are computed by hand in the
// test from their definitions; the aggregate and LSE checks are exercised on generated attention
// rows with simulated correct and buggy kernels (seeded loops over core/prng.hpp).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/metrics.hpp"
#include "core/prng.hpp"

namespace pa {
namespace {

using Shape = std::vector<std::pair<std::string, int64_t>>;
const Shape kShape = {{"s", 2}, {"i", 1}, {"h", 3}, {"d", 4}};  // 24 elements

Tolerance tol(double atol, double rtol) {
  Tolerance t;
  t.atol = atol;
  t.rtol = rtol;
  return t;
}

// A reference with varied, non-constant values and its float copy.
std::vector<double> ref24() {
  std::vector<double> r(24);
  for (size_t i = 0; i < r.size(); ++i) r[i] = 0.5 + 0.25 * double(i % 7) - 0.1 * double(i % 3);
  return r;
}
std::vector<float> as_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

TEST(Metrics, IdenticalOutputIsOk) {
  const auto ref = ref24();
  const auto out = as_float(ref);
  const Tolerance t = tol(1e-3, 1e-3);
  const Metrics m = compare(out, ref, t);
  EXPECT_EQ(m.count, 24);
  EXPECT_EQ(m.nan_count, 0);
  EXPECT_EQ(m.outside, 0);
  EXPECT_NEAR(m.cosine, 1.0, 1e-12);
  EXPECT_LT(m.rel_rms, 1e-7);  // only the float rounding of ref
  EXPECT_TRUE(m.degenerate.empty());
  const Verdict v = verdict(m, t, kShape);
  EXPECT_EQ(v.status, Status::Ok);
  EXPECT_TRUE(v.metric.empty());
  EXPECT_FALSE(v.message.empty());
}

TEST(Metrics, NaNAnywhereFailsWithCoordinates) {
  const auto ref = ref24();
  for (int64_t at : {int64_t(0), int64_t(13), int64_t(23)}) {
    auto out = as_float(ref);
    out[size_t(at)] = std::numeric_limits<float>::quiet_NaN();
    const Tolerance t = tol(1e9, 1e9);  // even an absurd tolerance does not excuse a NaN
    const Metrics m = compare(out, ref, t);
    EXPECT_EQ(m.nan_count, 1);
    EXPECT_EQ(m.worst_index, at);
    const Verdict v = verdict(m, t, kShape);
    EXPECT_EQ(v.status, Status::Fail);
    EXPECT_EQ(v.metric, "nan");
    EXPECT_NE(v.message.find(coordinates(at, kShape)), std::string::npos) << v.message;
  }
  auto out = as_float(ref);
  out[13] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NE(verdict(compare(out, ref, tol(1, 1)), tol(1, 1), kShape).message.find("s=1 i=0 h=0 d=1"),
            std::string::npos);
}

TEST(Metrics, FirstNaNIsReported) {
  const auto ref = ref24();
  auto out = as_float(ref);
  out[5] = std::numeric_limits<float>::quiet_NaN();
  out[17] = std::numeric_limits<float>::quiet_NaN();
  const Metrics m = compare(out, ref, tol(0.1, 0));
  EXPECT_EQ(m.nan_count, 2);
  EXPECT_EQ(m.worst_index, 5);
}

TEST(Metrics, MatchingInfIsOk) {
  auto ref = ref24();
  ref[3] = INFINITY;
  ref[4] = -INFINITY;
  auto out = as_float(ref);
  const Metrics m = compare(out, ref, tol(1e-3, 0));
  EXPECT_EQ(m.inf_mismatch, 0);
  EXPECT_EQ(verdict(m, tol(1e-3, 0), kShape).status, Status::Ok);
}

TEST(Metrics, MismatchingInfFails) {
  auto ref = ref24();
  ref[3] = INFINITY;
  auto out = as_float(ref);
  out[3] = -INFINITY;  // wrong sign
  out[9] = INFINITY;   // reference is finite there
  const Metrics m = compare(out, ref, tol(1e9, 0));
  EXPECT_EQ(m.inf_mismatch, 2);
  const Verdict v = verdict(m, tol(1e9, 0), kShape);
  EXPECT_EQ(v.status, Status::Fail);
  EXPECT_EQ(v.metric, "inf_mismatch");
}

TEST(Metrics, FiniteOutputWhereReferenceIsInfFails) {
  auto ref = ref24();
  ref[2] = INFINITY;
  const auto out = as_float(ref24());
  const Metrics m = compare(out, ref, tol(1e9, 0));
  EXPECT_EQ(m.inf_mismatch, 1);
  EXPECT_EQ(verdict(m, tol(1e9, 0), kShape).status, Status::Fail);
}

TEST(Metrics, OneElementOutsideToleranceFailsAtItsCoordinates) {
  const auto ref = ref24();
  auto out = as_float(ref);
  out[19] += 0.01f;  // s=1 i=0 h=1 d=3
  const Tolerance t = tol(1e-3, 1e-3);
  const Metrics m = compare(out, ref, t);
  EXPECT_EQ(m.outside, 1);
  EXPECT_EQ(m.worst_index, 19);
  EXPECT_NEAR(m.frac_outside, 1.0 / 24, 1e-15);
  EXPECT_NEAR(m.max_abs_err, 0.01, 1e-6);
  const Verdict v = verdict(m, t, kShape);
  EXPECT_EQ(v.status, Status::Fail);
  EXPECT_EQ(v.metric, "outside_tolerance");
  EXPECT_NE(v.message.find("s=1 i=0 h=1 d=3"), std::string::npos) << v.message;
}

TEST(Metrics, ElementJustInsideToleranceIsOk) {
  std::vector<double> ref = {1.0, 2.0, -4.0};
  // bound = atol + rtol |ref| = 0.5 + 0.25 * 4 = 1.5 at the last element.
  const std::vector<float> out = {1.0f, 2.0f, -5.25f};
  const Metrics m = compare(out, ref, tol(0.5, 0.25));
  EXPECT_EQ(m.outside, 0);
  const std::vector<float> out2 = {1.0f, 2.0f, -5.75f};
  EXPECT_EQ(compare(out2, ref, tol(0.5, 0.25)).outside, 1);
}

TEST(Metrics, WorstElementIsTheFurthestBeyondItsBound) {
  std::vector<double> ref = {1, 1, 100, 1};
  // rtol makes element 2's bound large: its error of 2 is inside, element 1's 0.8 is outside
  // by more than element 3's 0.6.
  const std::vector<float> out = {1.0f, 1.8f, 102.0f, 1.6f};
  const Metrics m = compare(out, ref, tol(0.1, 0.05));
  EXPECT_EQ(m.outside, 2);
  EXPECT_EQ(m.worst_index, 1);
  EXPECT_EQ(m.worst_out, 1.8f);
  EXPECT_EQ(m.worst_ref, 1.0);
}

// Hand-computed example: out = (1, 2, 2), ref = (1, 2, 3).
// err = (0, 0, 1): ||err||_2 = 1, ||ref||_2 = sqrt(14), ||ref||_inf = 3, <out, ref> = 11,
// ||out||_2 = 3. rel_rms = 1/sqrt(14), cosine = 11 / (3 sqrt(14)), max_err_norm = 1/3.
TEST(Metrics, HandComputedValues) {
  const Metrics m = compare({1.0f, 2.0f, 2.0f}, {1.0, 2.0, 3.0}, tol(0.1, 0));
  EXPECT_DOUBLE_EQ(m.max_abs_err, 1.0);
  EXPECT_DOUBLE_EQ(m.ref_inf_norm, 3.0);
  EXPECT_DOUBLE_EQ(m.max_err_norm, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.rel_rms, 1.0 / std::sqrt(14.0));
  EXPECT_DOUBLE_EQ(m.cosine, 11.0 / (3.0 * std::sqrt(14.0)));
  EXPECT_EQ(m.outside, 1);
  EXPECT_EQ(m.worst_index, 2);
}

// Opposite vectors: cosine -1, rel_rms 2.
TEST(Metrics, HandComputedOpposite) {
  const Metrics m = compare({-1.0f, 2.0f}, {1.0, -2.0}, tol(0.1, 0));
  EXPECT_DOUBLE_EQ(m.cosine, -1.0);
  EXPECT_DOUBLE_EQ(m.rel_rms, 2.0);
  EXPECT_DOUBLE_EQ(m.max_err_norm, 2.0);
}

TEST(Metrics, AllZeroOutputIsDegenerate) {
  const auto ref = ref24();
  const std::vector<float> out(24, 0.0f);
  const Metrics m = compare(out, ref, tol(1e9, 0));
  EXPECT_EQ(m.degenerate, "all_zero");
  const Verdict v = verdict(m, tol(1e9, 0), kShape);
  EXPECT_EQ(v.status, Status::Fail);
  EXPECT_EQ(v.metric, "degenerate");
  EXPECT_NE(v.message.find("all_zero"), std::string::npos);
  // With a realistic tolerance it is also far outside.
  EXPECT_GT(compare(out, ref, tol(1e-3, 0)).outside, 0);
}

TEST(Metrics, AllZeroIsFineWhenTheReferenceIsZero) {
  const std::vector<double> ref(24, 0.0);
  const std::vector<float> out(24, 0.0f);
  const Metrics m = compare(out, ref, tol(1e-3, 0));
  EXPECT_TRUE(m.degenerate.empty());
  EXPECT_EQ(verdict(m, tol(1e-3, 0), kShape).status, Status::Ok);
}

// A reference far below the output format's smallest subnormal (one key far below a sink: its
// weight underflows in fp32) is zero at the output's precision: an all-zero output is right.
// One element of the same reference above it, and all-zero is degenerate again.
TEST(Metrics, AllZeroIsFineWhenTheReferenceRoundsToZeroInTheOutputFormat) {
  ToleranceInputs ti;
  ti.v_max = 2;
  ti.logit_rms = 1;
  ti.max_context = 513;
  ti.row_length = 24;
  const Tolerance t = tolerance_for(ErrorModel{}, ti);
  ASSERT_TRUE(t.noise.enabled);
  std::vector<double> ref(24);
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = (i % 2 ? 1e-130 : -3e-131) * double(i + 1);
  const std::vector<float> out(24, 0.0f);
  const Metrics m = compare(out, ref, t);
  EXPECT_TRUE(m.degenerate.empty()) << m.degenerate;
  EXPECT_EQ(verdict(m, t, kShape).status, Status::Ok) << verdict(m, t, kShape).message;
  ref[7] = 1e-3;
  EXPECT_EQ(compare(out, ref, t).degenerate, "all_zero");
}

TEST(Metrics, ConstantOutputIsDegenerate) {
  const auto ref = ref24();
  const std::vector<float> out(24, 0.7f);
  EXPECT_EQ(compare(out, ref, tol(1e9, 0)).degenerate, "constant");
}

TEST(Metrics, OutputEqualToUniformIsVMean) {
  const auto ref = ref24();
  std::vector<double> uniform(24);
  for (size_t i = 0; i < 24; ++i) uniform[i] = 0.3 + 0.01 * double(i);  // the V mean per element
  const auto out = as_float(uniform);
  const Tolerance t = tol(1e-3, 1e-3);
  const Metrics m = compare(out, ref, t, uniform);
  EXPECT_EQ(m.degenerate, "v_mean");
  // The reference equal to uniform (genuinely flat attention) is not a finding.
  const Metrics m2 = compare(out, uniform, t, uniform);
  EXPECT_TRUE(m2.degenerate.empty());
  EXPECT_EQ(verdict(m2, t, kShape).status, Status::Ok);
  // The correct output is not flagged.
  EXPECT_TRUE(compare(as_float(ref), ref, t, uniform).degenerate.empty());
}

TEST(Metrics, CoordinatesRowMajor) {
  EXPECT_EQ(coordinates(0, kShape), "s=0 i=0 h=0 d=0");
  EXPECT_EQ(coordinates(23, kShape), "s=1 i=0 h=2 d=3");
  EXPECT_EQ(coordinates(6, kShape), "s=0 i=0 h=1 d=2");
  EXPECT_EQ(coordinates(-1, kShape), "-");
}

TEST(Metrics, StatusNames) {
  EXPECT_STREQ(to_string(Status::Ok), "Ok");
  EXPECT_STREQ(to_string(Status::Fail), "Fail");
  EXPECT_STREQ(to_string(Status::NotSupported), "NotSupported");
  EXPECT_STREQ(to_string(Status::Skipped), "Skipped");
}

// ---- tolerance model ------------------------------------------------------------------------------

ToleranceInputs ti(double v_max, double logit_rms, int64_t ctx) {
  ToleranceInputs t;
  t.v_max = v_max;
  t.logit_rms = logit_rms;
  t.max_context = ctx;
  return t;
}

TEST(Tolerance, NonNegativeAndRtolFromOutputType) {
  ErrorModel em;
  em.out = DType::bf16;
  const Tolerance a = tolerance_for(em, ti(1, 2, 100));
  EXPECT_GT(a.atol, 0);
  EXPECT_DOUBLE_EQ(a.rtol, 2.0 / 256);
  em.out = DType::fp16;
  EXPECT_DOUBLE_EQ(tolerance_for(em, ti(1, 2, 100)).rtol, 2.0 / 2048);
}

TEST(Tolerance, GrowsWithUp) {
  ErrorModel lo, hi;
  hi.u_p = 1.0 / 256;
  EXPECT_GT(tolerance_for(hi, ti(1, 2, 100)).atol, tolerance_for(lo, ti(1, 2, 100)).atol);
}
TEST(Tolerance, GrowsWithUq) {
  ErrorModel lo, hi;
  hi.u_q = 1.0 / 16;
  EXPECT_GT(tolerance_for(hi, ti(1, 2, 100)).atol, tolerance_for(lo, ti(1, 2, 100)).atol);
  // u_q matters through the logits: with zero logits it adds nothing.
  EXPECT_DOUBLE_EQ(tolerance_for(hi, ti(1, 0, 100)).atol, tolerance_for(lo, ti(1, 0, 100)).atol);
}
TEST(Tolerance, GrowsWithContext) {
  ErrorModel em;
  EXPECT_GT(tolerance_for(em, ti(1, 2, 1 << 20)).atol, tolerance_for(em, ti(1, 2, 16)).atol);
}
TEST(Tolerance, ScalesWithVMax) {
  ErrorModel em;
  em.u_p = 1.0 / 256;
  EXPECT_DOUBLE_EQ(tolerance_for(em, ti(4, 2, 100)).atol, 4 * tolerance_for(em, ti(1, 2, 100)).atol);
}
TEST(Tolerance, GrowsWithTmpRounding) {
  ErrorModel lo, hi;
  hi.u_tmp = 1.0 / 256;
  EXPECT_GT(tolerance_for(hi, ti(1, 2, 100)).atol, tolerance_for(lo, ti(1, 2, 100)).atol);
}

// The derivation in the report carries the numbers it was computed from.
TEST(Tolerance, ModelStringMentionsTheNumbers) {
  ErrorModel em;
  em.out = DType::fp16;
  em.u_p = 1.0 / 256;
  const Tolerance t = tolerance_for(em, ti(3.5, 2, 4096));
  EXPECT_NE(t.model.find("3.5"), std::string::npos) << t.model;      // v_max
  EXPECT_NE(t.model.find("n=4096"), std::string::npos) << t.model;   // context
  EXPECT_NE(t.model.find("fp16"), std::string::npos) << t.model;     // output type
  EXPECT_NE(t.model.find("0.00781"), std::string::npos) << t.model;  // 2 u_p = 2/256
  char atol[32];
  std::snprintf(atol, sizeof atol, "%.4g", t.atol);
  EXPECT_NE(t.model.find(atol), std::string::npos) << t.model;
}

// Hand-computed: bf16 output only, v_max 1, n = 1:
// atol = 2 * (2^-8 + 4 * 2^-24) = 2^-7 + 2^-21.
TEST(Tolerance, HandComputedMinimalModel) {
  ErrorModel em;
  em.out = DType::bf16;
  const Tolerance t = tolerance_for(em, ti(1, 0, 1));
  EXPECT_DOUBLE_EQ(t.atol, std::ldexp(1.0, -7) + std::ldexp(1.0, -21));
}

// A correct-but-rounded output (bf16 rounding of the reference) passes its own tolerance.
TEST(Tolerance, RoundedReferencePassesItsTolerance) {
  const auto ref = ref24();
  std::vector<float> out(24);
  for (size_t i = 0; i < 24; ++i) out[i] = codec::bf16_to_float(codec::float_to_bf16(float(ref[i])));
  ErrorModel em;
  em.out = DType::bf16;
  double vmax = 0;
  for (double r : ref) vmax = std::max(vmax, std::fabs(r));
  const Tolerance t = tolerance_for(em, ti(vmax, 2, 64));
  EXPECT_EQ(verdict(compare(out, ref, t), t, kShape).status, Status::Ok);
}

}  // namespace
}  // namespace pa

namespace pa {
namespace {
// Regression for a misfire: a correct output (within tolerance) must never be flagged "v_mean",
// however close the reference itself is to the V mean (single-key rows with a sink are).
TEST(Metrics, OutputWithinToleranceIsNeverFlaggedVMean) {
  Rng rng(77, Stream::kMutant);
  const Tolerance t = tol(0.01, 0.0);
  for (int trial = 0; trial < 2000; ++trial) {
    const size_t n = size_t(rng.uniform_int(2, 16));
    std::vector<double> ref(n), uniform(n);
    std::vector<float> out(n);
    for (size_t i = 0; i < n; ++i) {
      uniform[i] = rng.uniform(-1, 1);
      ref[i] = uniform[i] + rng.uniform(-0.05, 0.05);      // sometimes within 3 bounds, sometimes not
      out[i] = float(ref[i] + rng.uniform(-0.009, 0.009));  // inside atol of the reference
    }
    const Metrics m = compare(out, ref, t, uniform);
    ASSERT_EQ(m.outside, 0);
    ASSERT_NE(m.degenerate, "v_mean") << "trial " << trial;
  }
}
}  // namespace
}  // namespace pa

// ---- aggregate checks: generated attention rows, simulated kernels -------------------------------
namespace pa {
namespace {

// Generated decode rows with their exact (double) reference and what a correct kernel holds
// before its output rounding. V = head mean (+-U(0.5,1.5)) + f N(0,1), f ~ U(1/2, 2), logits of
// std 2: the shape inputs/inputs.cpp generates. `p_type` rounds P before P.V as a path declaring
// u_p = u(p_type) does (fp32: not rounded); `partition` > 0 rounds each weight against its
// split-K partition's maximum and merges the partitions with fp-exact rescaling, as hip does.
struct SimAttention {
  int64_t rows = 0, D = 0;
  std::vector<double> ref, pre, lse;
  std::vector<float> lse32;  // a correct kernel's fp32 lse
  ToleranceInputs measured, fallback;
};

double round_to_type(DType t, double x) { return codec::decode(t, codec::encode(t, float(x))); }

SimAttention simulate(uint64_t seed, int64_t rows, int64_t D, int max_keys, DType p_type, int partition = 0) {
  Rng rng(seed, Stream::kSuite);
  SimAttention a;
  a.rows = rows;
  a.D = D;
  a.ref.assign(size_t(rows * D), 0.0);
  a.pre = a.ref;
  double v_max = 0, x_max = 0;
  PvRmsAccumulator pv;
  int64_t ctx_max = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t T = rng.uniform_int(1, max_keys);
    ctx_max = std::max(ctx_max, T);
    const double mean = (rng.uniform() < 0.5 ? -1 : 1) * rng.uniform(0.5, 1.5);
    std::vector<double> v(static_cast<size_t>(T * D)), x(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) {
      const double f = rng.uniform(0.5, 2.0);
      for (int64_t d = 0; d < D; ++d) v[size_t(t * D + d)] = mean + f * rng.normal();
      x[size_t(t)] = 2.0 * rng.normal();
    }
    const double m = *std::max_element(x.begin(), x.end());
    double l = 0;
    float l32 = 0;
    for (int64_t t = 0; t < T; ++t) {
      l += std::exp(x[size_t(t)] - m);
      l32 += std::exp(float(x[size_t(t)]) - float(m));
    }
    a.lse.push_back(m + std::log(l));
    a.lse32.push_back(float(m) + std::log(l32));
    // The kernel computes in fp32, as every path does.
    const int64_t P = partition > 0 ? partition : T;
    float den = 0;
    std::vector<float> num(size_t(D), 0.0f);
    for (int64_t t0 = 0; t0 < T; t0 += P) {  // one split-K partition
      const int64_t t1 = std::min(T, t0 + P);
      const float mk = float(*std::max_element(x.begin() + t0, x.begin() + t1));
      const float rescale = std::exp(mk - float(m));
      float lk = 0;
      std::vector<float> ok(size_t(D), 0.0f);
      for (int64_t t = t0; t < t1; ++t) {
        const float p = std::exp(float(x[size_t(t)]) - mk);
        const float pr = p_type == DType::fp32 ? p : float(round_to_type(p_type, p));
        lk += p;
        for (int64_t d = 0; d < D; ++d) ok[size_t(d)] += pr * float(v[size_t(t * D + d)]);
      }
      den += lk * rescale;
      for (int64_t d = 0; d < D; ++d) num[size_t(d)] += ok[size_t(d)] * rescale;
    }
    pv.begin_row(D);
    for (int64_t t = 0; t < T; ++t)
      if (x[size_t(t)] < m) pv.add_key(std::exp(x[size_t(t)] - m) / l, &v[size_t(t * D)]);
    for (int64_t d = 0; d < D; ++d) {
      double o = 0;
      for (int64_t t = 0; t < T; ++t) {
        o += std::exp(x[size_t(t)] - m) / l * v[size_t(t * D + d)];
        v_max = std::max(v_max, std::fabs(v[size_t(t * D + d)]));
      }
      a.ref[size_t(r * D + d)] = o;
      a.pre[size_t(r * D + d)] = double(num[size_t(d)] / den);
    }
    pv.end_row(&a.ref[size_t(r * D)]);
    for (double xi : x) x_max = std::max(x_max, std::fabs(xi));
  }
  a.fallback.v_max = v_max;
  a.fallback.logit_rms = x_max;  // a stand-in of the right size for the quadrature sum
  a.fallback.max_context = ctx_max;
  a.measured = a.fallback;
  a.measured.row_length = D;
  a.measured.pv_rms = pv.value();
  return a;
}

std::vector<float> rounded(DType t, const std::vector<double>& pre, double scale = 1.0) {
  std::vector<float> o(pre.size());
  for (size_t i = 0; i < pre.size(); ++i) o[i] = float(round_to_type(t, scale * pre[i]));
  return o;
}
// A kernel that truncates its fp32 value instead of rounding it (bf16 by dropping the low half).
std::vector<float> truncated(DType t, const std::vector<double>& pre) {
  std::vector<float> o(pre.size());
  const uint32_t sign = 0x8000u;
  for (size_t i = 0; i < pre.size(); ++i) {
    const float f = float(pre[i]);
    uint32_t c = codec::encode(t, f);
    if (std::fabs(codec::decode(t, c)) > std::fabs(f)) c = (c & sign) | ((c & ~sign) - 1);
    o[i] = codec::decode(t, c);
  }
  return o;
}

struct Judged {
  Metrics m;
  Verdict v;
};
Judged judge(const std::vector<float>& out, const std::vector<double>& ref, const ErrorModel& em,
             const ToleranceInputs& ti, int64_t D) {
  const Tolerance t = tolerance_for(em, ti);
  Judged j;
  j.m = compare(out, ref, t);
  j.v = verdict(j.m, t, {{"row", int64_t(ref.size()) / D}, {"d", D}});
  return j;
}

struct Size {
  int64_t rows, D;
  int keys, trials;
};
// PACHECK_PROPERTY_SCALE multiplies the generated cases (as for the property suites): the
// no-false-alarm claim is checked over 10^6 cases with a large scale, outside CI.
int scaled(int trials) {
  const char* s = std::getenv("PACHECK_PROPERTY_SCALE");
  const double k = s ? std::strtod(s, nullptr) : 1.0;
  return std::max(1, int(trials * (k > 0 ? k : 1.0)));
}
const Size kSizes[] = {{1, 64, 64, 800}, {8, 128, 128, 60}, {64, 128, 256, 10}};

// The paths' numerics: v1 rounds only its output; hip also rounds P to the output type.
ErrorModel model(DType out, bool p_rounded) {
  ErrorModel em;
  em.out = out;
  em.u_p = p_rounded ? codec::unit_roundoff(out) : 0.0;
  return em;
}

struct Worst {
  double rms = 0, bias = 0, scale = 0;
  void add(const Metrics& m) {
    rms = std::max(rms, m.rms_fraction);
    bias = std::max(bias, m.bias_fraction);
    scale = std::max(scale, m.scale_fraction);
  }
};

// Every (output dtype, P rounded or not, size) the aggregate tests sweep.
struct Sweep {
  DType out;
  bool p_rounded;
  Size z;
};
std::vector<Sweep> sweep() {
  std::vector<Sweep> v;
  for (DType out : {DType::bf16, DType::fp16})
    for (bool p_rounded : {false, true})
      for (const Size& z : kSizes) v.push_back({out, p_rounded, z});
  return v;
}

TEST(Aggregate, CorrectKernelsNeverFail) {
  int64_t cases = 0;
  uint64_t seed = 1;
  for (const auto& [out, p_rounded, z] : sweep()) {
    Worst measured, fallback;
    for (int trial = 0; trial < scaled(z.trials); ++trial) {
      const SimAttention a = simulate(++seed, z.rows, z.D, z.keys, p_rounded ? out : DType::fp32);
      const std::vector<float> o = rounded(out, a.pre);
      const Judged jm = judge(o, a.ref, model(out, p_rounded), a.measured, z.D);
      const Judged jf = judge(o, a.ref, model(out, p_rounded), a.fallback, z.D);
      ASSERT_EQ(jm.v.status, Status::Ok) << "seed " << seed << ": " << jm.v.message;
      ASSERT_EQ(jf.v.status, Status::Ok) << "seed " << seed << ": " << jf.v.message;
      ASSERT_TRUE(jm.m.aggregate_checked);
      measured.add(jm.m);
      fallback.add(jf.m);
      cases += 2;
    }
    std::cout << "[ worst    ] out=" << to_string(out) << (p_rounded ? " P rounded" : " P fp32")
              << " n=" << z.rows * z.D << " rms/bias/scale of limit: measured " << measured.rms << " "
              << measured.bias << " " << measured.scale << ", fallback " << fallback.rms << " "
              << fallback.bias << " " << fallback.scale << "\n";
  }
  std::cout << "[ cases    ] " << cases << "\n";
}

// A 1.03 (or 0.97) scale hides inside the elementwise bound of a bf16 output; the scale check
// catches it at every size when P is not rounded, and from 8 rows (n = 1024) when it is (one
// row's P-rounding noise is itself a random per-row scale of ~u_p).
TEST(Aggregate, ScaledOutputFailsTheScaleCheck) {
  uint64_t seed = 1000;
  int hidden = 0;
  for (const auto& [out, p_rounded, z] : sweep()) {
    if (p_rounded && z.rows < 8) continue;
    for (int trial = 0; trial < std::min(z.trials, 100); ++trial) {
      const SimAttention a = simulate(++seed, z.rows, z.D, z.keys, p_rounded ? out : DType::fp32);
      for (double k : {1.03, 0.97}) {
        const Judged j = judge(rounded(out, a.pre, k), a.ref, model(out, p_rounded), a.measured, z.D);
        ASSERT_EQ(j.v.status, Status::Fail) << "seed " << seed;
        EXPECT_GT(j.m.scale_fraction, 1.0) << "seed " << seed;
        EXPECT_NEAR(j.m.alpha / j.m.alpha_expected, k, 0.01);
        if (j.m.outside == 0) {
          ++hidden;
          EXPECT_EQ(j.v.metric, "scale") << j.v.message;
          EXPECT_NE(j.v.message.find("alpha"), std::string::npos) << j.v.message;
        }
      }
    }
  }
  EXPECT_GT(hidden, 100);  // most of them were inside the elementwise bound
}

// Truncation instead of rounding passes the elementwise bound by construction (rtol = 2 u_out).
// The bias check catches it where the output rounding dominates the noise: bf16 without P
// rounding at every size; fp16 (whose finer rounding is closer to the fp32 noise) and P-rounded
// paths (P's random per-row scale averages out over rows only) from larger n.
TEST(Aggregate, TruncatedOutputFailsTheBiasCheck) {
  struct Config {
    DType out;
    bool p_rounded;
    Size size;
  };
  const Config configs[] = {{DType::bf16, false, {1, 64, 64, 300}},   {DType::bf16, false, {8, 128, 128, 50}},
                            {DType::fp16, false, {64, 128, 256, 10}}, {DType::bf16, true, {256, 128, 256, 5}},
                            {DType::fp16, true, {256, 128, 256, 5}}};
  uint64_t seed = 2000;
  for (const Config& cf : configs)
    for (int trial = 0; trial < cf.size.trials; ++trial) {
      const DType p_type = cf.p_rounded ? cf.out : DType::fp32;
      const SimAttention a = simulate(++seed, cf.size.rows, cf.size.D, cf.size.keys, p_type);
      const std::vector<float> o = truncated(cf.out, a.pre);
      ErrorModel em = model(cf.out, cf.p_rounded);
      const Judged j = judge(o, a.ref, em, a.measured, cf.size.D);
      EXPECT_EQ(j.m.outside, 0);
      ASSERT_EQ(j.v.status, Status::Fail) << to_string(cf.out) << " n=" << o.size() << " seed " << seed;
      EXPECT_EQ(j.v.metric, "bias") << j.v.message;
      EXPECT_LT(j.m.bias - j.m.bias_expected, 0) << j.v.message;
      // Declared, the same truncation is correct; and then rounding to nearest is the bias.
      em.out_rounding = Rounding::toward_zero;
      const Judged k = judge(o, a.ref, em, a.measured, cf.size.D);
      EXPECT_EQ(k.v.status, Status::Ok) << k.v.message;
      EXPECT_EQ(judge(o, a.ref, em, a.fallback, cf.size.D).v.status, Status::Ok);
      if (!cf.p_rounded) {
        EXPECT_EQ(judge(rounded(cf.out, a.pre), a.ref, em, a.measured, cf.size.D).v.metric, "bias");
      }
    }
}

// Zero-mean noise beyond the declared numerics (here 2% of an element, orthogonal to the
// reference and to its signs so that neither alpha nor the bias moves) fails the rms check only.
TEST(Aggregate, ExcessNoiseFailsTheRmsCheck) {
  uint64_t seed = 3000;
  for (int trial = 0; trial < 50; ++trial) {
    const SimAttention a = simulate(++seed, 8, 128, 128, DType::fp32);
    Rng rng(seed, Stream::kMutant);
    const size_t n = a.ref.size();
    std::vector<double> e(n), sg(n);
    for (size_t i = 0; i < n; ++i) {
      // On |ref| < 2 only, so that no element leaves the elementwise bound.
      e[i] = std::fabs(a.ref[i]) < 2 ? (rng.uniform() < 0.5 ? -0.02 : 0.02) * std::fabs(a.ref[i]) : 0.0;
      sg[i] = a.ref[i] > 0 ? 1 : -1;
    }
    // Gram-Schmidt: e orthogonal to ref, then to sign(ref).
    for (const std::vector<double>* b : {&a.ref, static_cast<const std::vector<double>*>(&sg)}) {
      double eb = 0, bb = 0;
      for (size_t i = 0; i < n; ++i) eb += e[i] * (*b)[i], bb += (*b)[i] * (*b)[i];
      for (size_t i = 0; i < n; ++i) e[i] -= eb / bb * (*b)[i];
    }
    std::vector<double> pre = a.pre;
    for (size_t i = 0; i < n; ++i) pre[i] += e[i];
    const Judged j = judge(rounded(DType::bf16, pre), a.ref, model(DType::bf16, false), a.measured, 128);
    ASSERT_EQ(j.m.outside, 0);
    ASSERT_EQ(j.v.status, Status::Fail);
    EXPECT_EQ(j.v.metric, "rms_excess") << j.v.message;
    EXPECT_GT(j.m.rel_rms, j.m.rms_limit);
    EXPECT_LT(j.m.bias_fraction, 1);
    EXPECT_LT(j.m.scale_fraction, 1);
  }
}

// A one-key row of an fp8 cache holds few distinct values (code * scale), repeated across the GQA
// heads that read it: their rounding errors do not average out, so the bias of a correctly
// rounded output is far from 0. Measuring against the reference rounded as declared keeps
// such outputs passing.
TEST(Aggregate, RepeatedReferenceValuesDoNotFoolTheBias) {
  Rng rng(4000, Stream::kMutant);
  int far_from_zero = 0;
  for (int trial = 0; trial < 500; ++trial) {
    const double scale = rng.uniform(0.001, 0.01);
    std::vector<double> row(64);
    for (double& r : row) {
      const uint32_t code = uint32_t(rng.uniform_int(0, 0x7D)) | (rng.uniform() < 0.5 ? 0x80u : 0u);
      r = double(codec::decode(DType::fp8_e4m3fn, code)) * scale;
    }
    std::vector<double> ref;
    for (int h = 0; h < 8; ++h) ref.insert(ref.end(), row.begin(), row.end());
    ToleranceInputs ti;
    ti.v_max = 448 * scale;
    ti.max_context = 1;
    ti.row_length = 64;
    ti.pv_rms = 0;  // a single key: its weight is exactly 1
    const Judged j = judge(rounded(DType::bf16, ref), ref, model(DType::bf16, true), ti, 64);
    ASSERT_EQ(j.v.status, Status::Ok) << j.v.message;
    if (std::fabs(j.m.bias_expected) > j.m.bias_limit) ++far_from_zero;
  }
  EXPECT_GT(far_from_zero, 50);  // a check against 0 would have failed these correct outputs
}

// Metamorphic comparisons judge one output against another of the same model (here hip with
// two split-K partition sizes): both carry rounding noise, and neither is the exact reference.
TEST(Aggregate, TwoCorrectOutputsOfOneModelAgree) {
  uint64_t seed = 5000;
  Worst w;
  for (DType out : {DType::bf16, DType::fp16})
    for (const Size& z : kSizes)
      for (int trial = 0; trial < scaled(std::min(z.trials, 300)); ++trial) {
        const SimAttention a = simulate(++seed, z.rows, z.D, z.keys, out, 0);
        const SimAttention b = simulate(seed, z.rows, z.D, z.keys, out, 16);
        const std::vector<float> oa = rounded(out, a.pre);
        const Judged j = judge(rounded(out, b.pre), std::vector<double>(oa.begin(), oa.end()), model(out, true),
                               a.measured, z.D);
        ASSERT_EQ(j.v.status, Status::Ok) << "seed " << seed << ": " << j.v.message;
        w.add(j.m);
      }
  std::cout << "[ worst    ] pairs rms/bias/scale of limit " << w.rms << " " << w.bias << " " << w.scale << "\n";
}

// Hand-computed: ref (1, -2, 4) is exact in bf16; out = (1.03, -2.06, 4.12) in float.
// alpha = <o,r>/<r,r> = (1.03 + 4.12 + 16.48)/21 (each o_i as its float), bias = sum (o-r) sign(r)
// / sum |r| = (0.03 + 0.06 + 0.12)/7; the reference rounded to bf16 is itself: expected 1 and 0.
TEST(Aggregate, HandComputedStatistics) {
  const std::vector<double> ref = {1.0, -2.0, 4.0};
  const std::vector<float> out = {1.03f, -2.06f, 4.12f};
  ToleranceInputs ti;
  ti.v_max = 4;
  ti.max_context = 1;
  const Tolerance t = tolerance_for(model(DType::bf16, false), ti);
  const Metrics m = compare(out, ref, t);
  ASSERT_TRUE(m.aggregate_checked);
  const double o0 = out[0], o1 = out[1], o2 = out[2];
  EXPECT_DOUBLE_EQ(m.alpha, (o0 * 1 + o1 * -2 + o2 * 4) / 21);
  EXPECT_DOUBLE_EQ(m.bias, ((o0 - 1) + (-o1 - 2) + (o2 - 4)) / 7);
  EXPECT_DOUBLE_EQ(m.alpha_expected, 1.0);
  EXPECT_DOUBLE_EQ(m.bias_expected, 0.0);
  EXPECT_DOUBLE_EQ(m.rms_fraction, m.rel_rms / m.rms_limit);
  EXPECT_DOUBLE_EQ(m.worst_aggregate_fraction(), std::max({m.rms_fraction, m.bias_fraction, m.scale_fraction}));
  // A hand-made tolerance has no noise model: elementwise checks only.
  EXPECT_FALSE(compare(out, ref, tol(1, 1)).aggregate_checked);
  EXPECT_EQ(verdict(compare(out, ref, tol(1, 1)), tol(1, 1), kShape).status, Status::Ok);
  // An all-zero reference leaves nothing to scale: the aggregates are skipped.
  EXPECT_FALSE(compare({0.f, 0.f}, {0.0, 0.0}, t).aggregate_checked);
}

// Less is known, the limits are wider: the fallbacks of ToleranceInputs never tighten a check.
TEST(Aggregate, FallbacksAreConservative) {
  for (uint64_t seed = 6000; seed < 6040; ++seed) {
    const SimAttention a = simulate(seed, 4, 64, 64, DType::bf16);
    const std::vector<float> o = rounded(DType::bf16, a.pre);
    const Metrics mm = judge(o, a.ref, model(DType::bf16, true), a.measured, 64).m;
    const Metrics mf = judge(o, a.ref, model(DType::bf16, true), a.fallback, 64).m;
    EXPECT_GE(mf.rms_limit, mm.rms_limit);
    EXPECT_GE(mf.bias_limit, mm.bias_limit);
    EXPECT_GE(mf.alpha_limit, mm.alpha_limit);
  }
  ToleranceInputs ti;
  ti.v_max = 3;
  ti.max_context = 100;
  EXPECT_NE(tolerance_for(model(DType::fp16, true), ti).noise.model.find("not measured"), std::string::npos);
}

// Hand-computed: one row, D = 2, keys (w, v) = (0.25, (2, -1)) and (0.5, (1, 1)), o = (1, 0).
// sum w^2 v^2 = (0.0625*4 + 0.25*1, 0.0625*1 + 0.25*1) = (0.5, 0.3125);
// sum w^2 (v - o)^2 = (0.0625*1 + 0, 0.0625*1 + 0.25*1) = (0.0625, 0.3125);
// pv = sqrt((0.5 + 0.3125) / 2). A second, smaller row leaves the maximum.
TEST(Aggregate, PvRmsAccumulatorHandComputed) {
  PvRmsAccumulator acc;
  EXPECT_EQ(acc.value(), 0.0);
  const double v0[] = {2, -1}, v1[] = {1, 1}, o[] = {1, 0};
  acc.begin_row(2);
  acc.add_key(0.25, v0);
  acc.add_key(0.5, v1);
  acc.end_row(o);
  EXPECT_DOUBLE_EQ(acc.value(), std::sqrt(0.8125 / 2));
  acc.begin_row(2);
  acc.add_key(0.1, v1);
  acc.end_row(o);
  EXPECT_DOUBLE_EQ(acc.value(), std::sqrt(0.8125 / 2));
}

// ---- LSE ------------------------------------------------------------------------------------------

TEST(Lse, CorrectFp32LsePassesAndLsePlusLog2Fails) {
  uint64_t seed = 7000;
  double worst = 0;
  for (const Size& z : kSizes)
    for (int trial = 0; trial < scaled(z.trials); ++trial) {
      const SimAttention a = simulate(++seed, z.rows, z.D, z.keys, DType::fp32);
      const ErrorModel em = model(DType::bf16, true);
      const LseMetrics m = compare_lse(a.lse32, a.lse, em, a.measured);
      const Verdict v = verdict(m, {{"row", z.rows}});
      ASSERT_EQ(v.status, Status::Ok) << v.message;
      worst = std::max(worst, m.worst_fraction);
      std::vector<float> wrong = a.lse32;
      const size_t at = size_t(trial) % wrong.size();
      wrong[at] += std::log(2.0f);  // a doubled denominator (a sink or partition counted twice)
      const LseMetrics mw = compare_lse(wrong, a.lse, em, a.measured);
      const Verdict vw = verdict(mw, {{"row", z.rows}});
      ASSERT_EQ(vw.status, Status::Fail);
      EXPECT_EQ(vw.metric, "lse");
      EXPECT_EQ(mw.worst_index, int64_t(at));
      EXPECT_NE(vw.message.find("row=" + std::to_string(at)), std::string::npos) << vw.message;
    }
  std::cout << "[ worst    ] lse of its bound " << worst << "\n";
}

TEST(Lse, NaNAndInfinities) {
  const std::vector<double> ref = {1.5, -INFINITY, 3.0};
  ToleranceInputs ti;
  ti.max_context = 10;
  ti.logit_rms = 2;
  const ErrorModel em;
  const Shape rows = {{"s", 1}, {"i", 1}, {"h", 3}};
  EXPECT_EQ(verdict(compare_lse({1.5f, -INFINITY, 3.0f}, ref, em, ti), rows).status, Status::Ok);  // empty row
  const LseMetrics nan = compare_lse({1.5f, -INFINITY, NAN}, ref, em, ti);
  EXPECT_EQ(nan.nan_count, 1);
  EXPECT_EQ(verdict(nan, rows).metric, "lse");
  EXPECT_NE(verdict(nan, rows).message.find("h=2"), std::string::npos);
  EXPECT_EQ(compare_lse({1.5f, 0.0f, 3.0f}, ref, em, ti).inf_mismatch, 1);  // finite for an empty row
  EXPECT_EQ(compare_lse({-INFINITY, -INFINITY, 3.0f}, ref, em, ti).inf_mismatch, 1);
  EXPECT_EQ(verdict(compare_lse({1.5f, -INFINITY, INFINITY}, ref, em, ti), rows).status, Status::Fail);
}

// Hand-computed bound: u_q = 0, logit_rms = 0, n = 1, ref = 0:
// 2 * (4 * 2^-24 + 2^-21 * 32) = 2^-21 + 2^-15.
TEST(Lse, HandComputedBound) {
  ToleranceInputs ti;
  ti.max_context = 1;
  const LseMetrics m = compare_lse({0.0f}, {0.0}, ErrorModel{}, ti);
  EXPECT_DOUBLE_EQ(m.worst_bound, std::ldexp(1.0, -21) + std::ldexp(1.0, -15));
  const double b = m.worst_bound;
  EXPECT_EQ(compare_lse({float(0.9 * b)}, {0.0}, ErrorModel{}, ti).outside, 0);
  EXPECT_EQ(compare_lse({float(1.1 * b)}, {0.0}, ErrorModel{}, ti).outside, 1);
}

}  // namespace
}  // namespace pa
