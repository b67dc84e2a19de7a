// Metrics, verdict and the tolerance model (design §5). Expected metric values are computed by
// hand in the test from their definitions.
#include <algorithm>
#include <cmath>
#include <cstdio>
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
  const Tolerance t{0.01, 0.0, "test"};
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
