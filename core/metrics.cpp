#include "core/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace pa {

namespace {
constexpr double kSqrt3 = 1.7320508075688772;
constexpr double kU32 = 0x1.0p-24;  // fp32 unit roundoff
constexpr double kPvGroup = 16.0;  // terms of one rounded P.V dot (u_pv): a 16-byte V vector of 8-bit codes
}  // namespace

const char* to_string(Rounding r) { return r == Rounding::toward_zero ? "toward_zero" : "nearest_even"; }

const char* to_string(Status s) {
  switch (s) {
    case Status::Ok: return "Ok";
    case Status::Fail: return "Fail";
    case Status::NotSupported: return "NotSupported";
    case Status::Skipped: return "Skipped";
  }
  return "?";
}

// ---- the statistical model of the aggregate checks ----------------------------------------------
// One-sigma size of each error source per output element. A rounding to nearest with unit
// roundoff u errs uniformly within half a code step, so its RMS is at most u|x|/sqrt3; toward zero
// it errs within a whole step, RMS <= 2u|x|/sqrt3 (and not with mean zero).
//  * output rounding:  out_rel = u_out/sqrt3 relative, out_abs = (smallest step / 2)/sqrt3 near 0.
//  * coherent (the same random draw for every element of a row: it changes the row's weights):
//    - P rounded (u_p): o_d errs by sum_t w_t eps_t v_{t,d} with eps_t the weight's relative
//      rounding (by sum_t w_t eps_t (v_{t,d} - o_d) when the kernel normalizes by the rounded
//      weights); RMS <= (u_p/sqrt3) pv_rms, pv_rms as measured (ToleranceInputs) or 2 v_max.
//    - P below fp16's smallest normal (2^-14, the largest among 16-bit P types) rounds by up to
//      u_p 2^-14 absolutely; over n keys that random-walks to 2 u_p 2^-14 sqrt(n) v_max / sqrt3.
//    - Q/K rounded (u_q): each logit moves by u_q logit_rms/sqrt3 (RMS), and a logit shift delta
//      moves o by at most 2 delta v_max.
//    - fp32 logits: the Q.K sum over D <= 256 products random-walks to ~sqrt(D/6) 2^-24
//      logit_rms, plus rounding of x and x - m: taken as 2^-24 (8 logit_rms + 8), times 2 v_max.
//    - fp32 denominator l: sqrt(n) 2^-24 / sqrt3 relative, on |o| <= v_max.
//  * independent per element: the fp32 P.V sum (sqrt(n + 16) 2^-24 v_max / sqrt3, the 16 for the
//    per-term conversions and the final division) and split-K partials stored rounded
//    (u_tmp v_max / sqrt3).
//    - V rounded after dequantization (u_v): o_d errs by sum_t w_t eps_{t,d} v_{t,d}, the eps
//      independent per (t, d): RMS u_v/sqrt3 sqrt(sum_t w_t^2 v_{t,d}^2) <= u_v v_max / sqrt3.
//    - P.V products and their short partial sums rounded (u_pv): a kernel's dot of up to 16
//      (P_t, v_t) pairs (vLLM's V_VEC_SIZE) rounds each product and each of the <= 15 partial
//      sums; the errors are independent, a group's partial sums are at most its weight W_g times
//      v_max, so a group errs with RMS <= u_pv/sqrt3 sqrt(16) W_g v_max and the groups add in
//      quadrature (sum W_g^2 <= 1): 4 u_pv v_max / sqrt3.
// Every term is an upper bound of its RMS for the data measured in ToleranceInputs.
namespace {
std::string fmt3(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", x);
  return b;
}

NoiseModel noise_model(const ErrorModel& em, const ToleranceInputs& ti) {
  NoiseModel nm;
  nm.enabled = true;
  nm.out = em.out;
  nm.out_rounding = em.out_rounding;
  const double tz = em.out_rounding == Rounding::toward_zero ? 2.0 : 1.0;
  nm.out_rel = tz * codec::unit_roundoff(em.out) / kSqrt3;
  nm.out_abs = tz * 0.5 * codec::smallest_step(em.out) / kSqrt3;
  const double n = double(std::max<int64_t>(ti.max_context, 1));
  const bool measured = ti.pv_rms >= 0;
  const double pv = measured ? std::min(ti.pv_rms, 2.0 * ti.v_max) : 2.0 * ti.v_max;
  const double p_round = em.u_p / kSqrt3 * pv;
  const double p_under = 2.0 * em.u_p * 0x1.0p-14 * std::sqrt(n) * ti.v_max / kSqrt3;
  const double q_round = 2.0 * ti.v_max * em.u_q * ti.logit_rms / kSqrt3;
  const double logits = 2.0 * ti.v_max * kU32 * (8.0 * ti.logit_rms + 8.0);
  const double denom = kU32 * std::sqrt(n) * ti.v_max / kSqrt3;
  nm.coherent = std::sqrt(p_round * p_round + p_under * p_under + q_round * q_round + logits * logits +
                          denom * denom);
  const double acc = kU32 * std::sqrt(n + 16.0) * ti.v_max / kSqrt3;
  const double tmp = em.u_tmp * ti.v_max / kSqrt3;
  const double v_round = em.u_v * ti.v_max / kSqrt3;
  const double pv_round = std::sqrt(kPvGroup) * em.u_pv * ti.v_max / kSqrt3;
  nm.independent = std::sqrt(acc * acc + tmp * tmp + v_round * v_round + pv_round * pv_round);
  nm.row_length = ti.row_length;
  char buf[700];
  std::snprintf(buf, sizeof buf,
                "1-sigma per element: output %s %s %.3g|ref| + %.3g; coherent per row %.3g (P %.3g "
                "from pv=%.4g%s, P underflow %.3g, Q %.3g, fp32 logits %.3g, fp32 l %.3g); independent "
                "%.3g (fp32 P.V %.3g, tmp %.3g%s); row_length=%lld%s. Limits: rel_rms <= 6 x expected; "
                "|bias - expected|, |alpha - expected| <= 6.5 sigma + 14 M + u_out/8 + 2^-20",
                to_string(em.out), to_string(em.out_rounding), nm.out_rel, nm.out_abs, nm.coherent,
                p_round, pv, measured ? "" : " (=2v_max: not measured)", p_under, q_round, logits, denom,
                nm.independent, acc, tmp,
                em.u_v > 0 || em.u_pv > 0
                    ? (", V " + fmt3(v_round) + ", rounded P.V " + fmt3(pv_round)).c_str()
                    : "",
                (long long)ti.row_length, ti.row_length > 0 ? "" : " (unknown: whole output one row)");
  nm.model = buf;
  return nm;
}
}  // namespace

void PvRmsAccumulator::begin_row(int64_t head_size) {
  a_.assign(size_t(head_size), 0.0);
  b_.assign(size_t(head_size), 0.0);
  c_ = 0;
}
void PvRmsAccumulator::add_key(double w, const double* v) {
  const double w2 = w * w;
  for (size_t d = 0; d < a_.size(); ++d) {
    a_[d] += w2 * v[d] * v[d];
    b_[d] += w2 * v[d];
  }
  c_ += w2;
}
void PvRmsAccumulator::end_row(const double* o) {
  if (a_.empty()) return;
  double sum = 0;
  for (size_t d = 0; d < a_.size(); ++d) {
    const double centred = a_[d] - 2.0 * o[d] * b_[d] + o[d] * o[d] * c_;  // sum w^2 (v - o)^2
    sum += std::max(a_[d], centred);
  }
  worst_ = std::max(worst_, std::sqrt(sum / double(a_.size())));
}

// Error model (all bounds relative to v_max = max |V|, since o is a convex combination of V rows):
//  * output rounding to the out dtype:            u_out * |o|          -> rtol
//  * P rounded to u_p before P.V: each weight is off by u_p relative, and the normalizer computed
//    from unrounded weights disagrees by at most the same:             2 u_p v_max
//  * Q/K rounded to u_q before Q.K: each logit moves by ~u_q * logit_rms / sqrt(3) (independent
//    uniform rounding errors add in quadrature); a logit shift delta moves o by at most
//    2 delta v_max. Taken at 4 sigma:                                  8 u_q logit_rms v_max / sqrt(3)
//  * split-K partials stored rounded (u_tmp), merged with weights summing to 1:  u_tmp v_max
//  * V rounded to u_v after dequantization: o_d = sum_t w_t v_{t,d} (1 + eps), |eps| <= u_v, and
//    the weights sum to 1:                                             u_v v_max
//  * P.V products and their partial sums of at most kPvGroup = 16 terms kept in a u_pv type (fp16
//    dot products of a V vector; the running sum over the context stays fp32): each product
//    rounds by u_pv relative, each of a group's <= 15 partial sums by u_pv times at most the
//    group's sum of |P_t v_t|; over all groups, with the weights summing to 1:
//    (a worst case: a group is too short for a random walk to pay)    16 u_pv v_max
//  * fp32 accumulation over n = max_context terms, random-walk bound at 4 sigma:
//                                                                      4 sqrt(n) 2^-24 v_max
//  * fp32 logits at their own magnitude (the Q.K sum, x - m):         8 2^-24 logit_rms v_max
// plus one output ulp of v_max for outputs near zero (an element of o near 0 still carries the
// rounding of partial sums of size v_max). The sum is doubled as the safety factor: a layout,
// scale or routing bug moves o by O(v_max), far above this.

Tolerance tolerance_for(const ErrorModel& em, const ToleranceInputs& ti) {
  const double u_out = codec::unit_roundoff(em.out);
  const double acc = 4.0 * std::sqrt(double(std::max<int64_t>(ti.max_context, 1))) * 0x1.0p-24;
  const double qk = 8.0 * em.u_q * ti.logit_rms / std::sqrt(3.0);
  const double pv = kPvGroup * em.u_pv;
  // fp32 logits: the Q.K sum and x - m round at the logits' own magnitude, 2^-24 (8 logit_rms)
  // as in the noise model. Negligible at ordinary logits (~1e-6 v_max); it is what a correct fp32
  // kernel errs by on rows whose logits reach tens of thousands (Values::extremes), where a
  // near-tie between two keys turns a 0.01 logit error into a visible output difference.
  const double logit32 = 8.0 * 0x1.0p-24 * ti.logit_rms;
  const double rel = u_out + 2.0 * em.u_p + qk + em.u_tmp + em.u_v + pv + acc + logit32;
  Tolerance t;
  t.rtol = 2.0 * u_out;
  t.atol = 2.0 * rel * ti.v_max;
  // The V and P.V terms appear only when declared: other kernels keep the 1.0 text in their records.
  const bool vpv = em.u_v > 0 || em.u_pv > 0;
  char extra[64] = "";
  if (vpv) std::snprintf(extra, sizeof extra, " + %.3g + %.3g", em.u_v, pv);
  char buf[600];
  std::snprintf(buf, sizeof buf,
                "atol = 2*v_max*(u_out + 2u_p + 8u_q*logit_rms/sqrt3 + u_tmp%s + 4sqrt(n)2^-24 + "
                "8*2^-24*logit_rms) = 2*%.4g*(%.3g + %.3g + %.3g + %.3g%s + %.3g + %.3g) = %.4g; rtol = 2u_out = %.4g "
                "(out=%s, n=%lld)",
                vpv ? " + u_v + 16u_pv" : "", ti.v_max, u_out, 2 * em.u_p, qk, em.u_tmp, extra, acc, logit32, t.atol,
                t.rtol, to_string(em.out), (long long)ti.max_context);
  t.model = buf;
  t.noise = noise_model(em, ti);
  return t;
}

// ---- the aggregate checks ------------------------------------------------------------------------
// Three statistics over the whole output, each compared with its value for the reference rounded
// as declared (rho = round(ref)), which is known exactly: that removes the output rounding's own
// contribution, including when the reference's values repeat (a one-key row of an fp8 cache holds
// few distinct values, whose rounding errors do not average out):
//   bias  = sum (o - r) sign(r) / sum |r|   (rounding toward zero: -u/2 .. -u; nearest: ~0)
//   alpha = <o, r> / <r, r>                 (a scale error lambda gives 1 + lambda exactly)
//   rel_rms = ||o - r|| / ||r||             (against the model's expected RMS)
// dev_i = o_i - rho_i is then what the pre-rounding error eta (the NoiseModel's coherent and
// independent terms) does to the output: with sigma_eta its RMS and the code step ulp_i,
// E[(round(r + eta) - round(r))^2] <= sigma_eta ulp_i + sigma_eta^2 (rounding flips with
// probability |eta|/ulp when |eta| < ulp; ~eta^2 beyond), zero mean for rounding to nearest.
// Two regimes per element:
//  * eta small (6.5 sigma_eta + 2^-21|r| < ulp/4): o is rho, except near a rounding boundary
//    (within that distance of it), where the neighbouring code alt is accepted too. Flips
//    further away need a 6.5-sigma eta. The zones cover < 1/2 of each step, so a
//    rounding-direction bug keeps at least half its signal.
//  * otherwise flips are frequent and contribute sigma_eta ulp_i to the variance; as single
//    flips are a bounded, heavy-tailed part, the limit is Bernstein's: for independent terms
//    bounded by M with total variance V, P(|sum| > 6.43 sqrt(V) + 13.8 M) < 2e-9, so
//    limit = 6.5 sqrt(V) + 14 M (+ floor): < 0.01 expected false alarms in 10^6 cases.
// Coherent terms are shared by a row's D elements: their contribution to sum_d dev_d w_d has
// variance <= D sigma^2 sum_d w_d^2 (Cauchy-Schwarz), so they average only over rows, by
// sqrt(rows) = sqrt(n / D); D = n when the row length is unknown (no averaging at all).
// An element whose reference is itself a code of the output type may be another kernel's output
// (metamorphic comparisons): its noise counts twice (kappa = 2) and, as the boundaries of that
// other output's rounding are unknown, it is in no zone (but the one truncation has at a code).
// Floor u_out/8 + 2^-20: systematic effects outside the model (fast-math exp and reciprocal,
// <= 2^-21 relative) stay below it, while rounding toward zero (-u/2 .. -u) and a 1.03 scale
// stay far above it. The rms limit is 6 x expected: each bounded rounding term's worst case is
// sqrt3 x its RMS, so all of them at their worst together stay below sqrt3 sqrt(#terms) < 4.3
// expected, and the random-walk terms exceed 6 sigma with probability < 2e-9.
namespace {

constexpr double kSigmas = 6.5, kFlips = 14.0, kRmsFactor = 6.0;

bool sign_magnitude(DType t) {
  return t == DType::bf16 || t == DType::fp16 || t == DType::fp32 || t == DType::fp8_e4m3fn ||
         t == DType::fp8_e5m2;
}

// The declared rounding of one reference value, with the codes that bracket it.
struct Rounded {
  bool ok = false;         // false: beyond the output type's range (the elementwise check owns it)
  bool exact = false;      // the reference is a code of the output type
  bool ambiguous = false;  // within tau of a rounding boundary: alt is as right as rho
  double rho = 0, alt = 0, ulp = 0;
};

Rounded round_declared(const NoiseModel& nm, double r, double tau) {
  Rounded x;
  const DType t = nm.out;
  const float f = float(r);  // double rounding here only within 2^-24|r| of a boundary (< tau)
  if (!std::isfinite(f)) return x;
  const uint32_t c = codec::encode(t, f);
  const double v = codec::decode(t, c);
  if (!std::isfinite(v)) return x;
  x.ok = true;
  x.rho = v;
  x.exact = v == r;
  if (!sign_magnitude(t)) {  // no path writes these: nearest only, no bracket
    x.ulp = 2.0 * codec::unit_roundoff(t) * std::fabs(r) + codec::smallest_step(t);
    return x;
  }
  const uint32_t sb = t == DType::fp32 ? 0x80000000u : dtype_bytes(t) == 2 ? 0x8000u : 0x80u;
  auto value = [&](uint32_t code) { return double(codec::decode(t, code)); };
  auto up = [&](uint32_t code) { return (code & sb) | ((code & ~sb) + 1); };
  auto down = [&](uint32_t code) { return (code & sb) | ((code & ~sb) - 1); };
  const bool toward_zero = nm.out_rounding == Rounding::toward_zero;
  if (x.exact) {
    const double next = value(up(c));
    x.ulp = std::isfinite(next) ? std::fabs(next - v) : std::fabs(v - value(down(c)));
    // A value a hair below |r| truncates to the code under it.
    if (toward_zero && (c & ~sb) != 0) {
      x.alt = value(down(c));
      x.ambiguous = true;
    }
    return x;
  }
  uint32_t inner = c, outer = c;
  if (std::fabs(v) < std::fabs(r)) outer = up(c);
  else inner = down(c);
  const double vi = value(inner), vo = value(outer);
  if (!std::isfinite(vo)) {  // r between the largest finite code and overflow
    x.ulp = 2.0 * codec::unit_roundoff(t) * std::fabs(r);
    return x;
  }
  x.ulp = std::fabs(vo - vi);
  if (!toward_zero) {
    x.alt = inner == c ? vo : vi;
    x.ambiguous = std::fabs(r - 0.5 * (vi + vo)) <= tau;
  } else {
    x.rho = vi;
    if (std::fabs(vo - r) <= tau) {
      x.alt = vo;
      x.ambiguous = true;
    } else if (std::fabs(r - vi) <= tau && (inner & ~sb) != 0) {
      x.alt = value(down(inner));
      x.ambiguous = true;
    }
  }
  return x;
}

void aggregate_checks(const std::vector<float>& out, const std::vector<double>& ref, const NoiseModel& nm,
                      Metrics& m) {
  const size_t n = std::min(out.size(), ref.size());
  const double coh2 = nm.coherent * nm.coherent, ind2 = nm.independent * nm.independent;
  const double sigma_eta = std::sqrt(coh2 + ind2);
  const double D = double(nm.row_length > 0 ? std::min<int64_t>(nm.row_length, int64_t(n)) : int64_t(n));
  double sum_abs = 0, sum_r2 = 0, b_num = 0, b_exp = 0, a_num = 0, a_exp = 0;
  double vb = 0, va = 0, kappa = 0, kappa_r2 = 0, mb = 0, ma = 0, rms_var = 0;
  for (size_t i = 0; i < n; ++i) {
    const double o = out[i], r = ref[i];
    if (!std::isfinite(o) || !std::isfinite(r)) continue;
    const double tau = kSigmas * sigma_eta + 0x1.0p-21 * std::fabs(r);
    const Rounded x = round_declared(nm, r, tau);
    if (!x.ok) continue;
    const double k = x.exact ? 2.0 : 1.0;
    // A code-exact reference may be another output whose own flips are unknown: no zone, except
    // the one toward-zero rounding defines at a code (a hair below truncates to the code under it).
    const bool noisy = (x.exact && !x.ambiguous) || !(tau < 0.25 * x.ulp);
    const double expect = (!noisy && x.ambiguous && o == x.alt) ? x.alt : x.rho;
    const double sg = r > 0 ? 1.0 : r < 0 ? -1.0 : 0.0;
    sum_abs += std::fabs(r);
    sum_r2 += r * r;
    b_num += (o - r) * sg;
    b_exp += (expect - r) * sg;
    a_num += o * r;
    a_exp += expect * r;
    const double var = k * (ind2 + (noisy ? sigma_eta * x.ulp : 0.0));
    vb += var;
    va += r * r * var;
    kappa += k;
    kappa_r2 += k * r * r;
    if (noisy) {
      mb = std::max(mb, k * x.ulp);
      ma = std::max(ma, k * x.ulp * std::fabs(r));
    }
    rms_var += k * (nm.out_rel * nm.out_rel * r * r + nm.out_abs * nm.out_abs + coh2 + ind2);
  }
  if (!(sum_r2 > 0)) return;  // an all-zero reference: the elementwise check is the whole verdict
  m.aggregate_checked = true;
  vb += D * coh2 * kappa;
  va += D * coh2 * kappa_r2;
  const double floor = codec::unit_roundoff(nm.out) / 8 + 0x1.0p-20;
  m.bias = b_num / sum_abs;
  m.bias_expected = b_exp / sum_abs;
  m.bias_limit = (kSigmas * std::sqrt(vb) + kFlips * mb) / sum_abs + floor;
  m.alpha = a_num / sum_r2;
  m.alpha_expected = a_exp / sum_r2;
  m.alpha_limit = (kSigmas * std::sqrt(va) + kFlips * ma) / sum_r2 + floor;
  m.expected_rms = std::sqrt(rms_var / sum_r2);
  m.rms_limit = kRmsFactor * m.expected_rms;
  m.rms_fraction = m.rel_rms / m.rms_limit;
  m.bias_fraction = std::fabs(m.bias - m.bias_expected) / m.bias_limit;
  m.scale_fraction = std::fabs(m.alpha - m.alpha_expected) / m.alpha_limit;
}

}  // namespace

double Metrics::worst_aggregate_fraction() const {
  return std::max(rms_fraction, std::max(bias_fraction, scale_fraction));
}

Metrics compare(const std::vector<float>& out, const std::vector<double>& ref,
                const Tolerance& tol, const std::vector<double>& uniform) {
  Metrics m;
  const size_t n = std::min(out.size(), ref.size());
  m.count = int64_t(n);
  double err2 = 0, ref2 = 0, out2 = 0, dot = 0, worst_excess = -1;
  bool all_zero = true, constant = true, near_uniform = !uniform.empty(), ref_uniform = !uniform.empty();
  for (size_t i = 0; i < n; ++i) {
    const double o = out[i], r = ref[i];
    if (std::isnan(o)) {
      ++m.nan_count;
      if (m.worst_index < 0 || worst_excess < INFINITY) {
        worst_excess = INFINITY;
        m.worst_index = int64_t(i);
        m.worst_out = o;
        m.worst_ref = r;
      }
      continue;
    }
    if (std::isinf(o) || std::isinf(r)) {
      if (o != r) ++m.inf_mismatch;
      continue;
    }
    const double e = std::fabs(o - r);
    const double bound = tol.atol + tol.rtol * std::fabs(r);
    m.max_abs_err = std::max(m.max_abs_err, e);
    m.ref_inf_norm = std::max(m.ref_inf_norm, std::fabs(r));
    err2 += e * e;
    ref2 += r * r;
    out2 += o * o;
    dot += o * r;
    if (e > bound) {
      ++m.outside;
      if (e - bound > worst_excess) {
        worst_excess = e - bound;
        m.worst_index = int64_t(i);
        m.worst_out = o;
        m.worst_ref = r;
      }
    }
    if (o != 0) all_zero = false;
    if (o != out[0]) constant = false;
    if (!uniform.empty()) {
      // "v_mean" needs the output within the bound of the V mean everywhere while the reference
      // is clearly (> 3 bounds) away from it somewhere. Then an output within tolerance of the
      // reference can never be flagged (it is > 2 bounds from the mean there): the flag names
      // what a failing output collapsed to, it never fails a correct one.
      if (std::fabs(o - uniform[i]) > bound) near_uniform = false;
      if (std::fabs(r - uniform[i]) > 3.0 * bound) ref_uniform = false;
    }
  }
  m.max_err_norm = m.ref_inf_norm > 0 ? m.max_abs_err / m.ref_inf_norm : m.max_abs_err;
  m.rel_rms = ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
  m.cosine = (out2 > 0 && ref2 > 0) ? dot / std::sqrt(out2 * ref2) : (out2 == ref2 ? 1.0 : 0.0);
  m.frac_outside = n ? double(m.outside) / double(n) : 0;
  // A degenerate output is only a finding when the reference is not itself that degenerate
  // thing at the output's precision: a reference of 1e-130 (one key far below a sink, its weight
  // underflowing in fp32) is zero in any output format, and an all-zero output is then right.
  // Below one step of the smallest subnormal of the declared output, values count as equal.
  if (n > 1 && m.nan_count == 0) {
    const double floor = tol.noise.enabled ? codec::smallest_step(tol.noise.out) : 0.0;
    bool ref_zero = true, ref_const = true;
    for (size_t i = 0; i < n; ++i) {
      if (!(std::fabs(ref[i]) <= floor)) ref_zero = false;
      if (!(std::fabs(ref[i] - ref[0]) <= floor)) ref_const = false;
    }
    if (all_zero && !ref_zero) m.degenerate = "all_zero";
    else if (constant && !ref_const) m.degenerate = "constant";
    else if (near_uniform && !ref_uniform) m.degenerate = "v_mean";
  }
  if (tol.noise.enabled) aggregate_checks(out, ref, tol.noise, m);
  return m;
}

std::vector<std::pair<std::string, int64_t>> output_shape(const Case& c) {
  if (c.ragged()) return {{"t", c.total_q()}, {"h", c.num_q_heads}, {"d", c.dv()}};
  return {{"s", c.num_seqs}, {"i", c.q_len}, {"h", c.num_q_heads}, {"d", c.dv()}};
}
std::vector<std::pair<std::string, int64_t>> lse_shape(const Case& c) {
  if (c.ragged()) return {{"t", c.total_q()}, {"h", c.num_q_heads}};
  return {{"s", c.num_seqs}, {"i", c.q_len}, {"h", c.num_q_heads}};
}

std::string coordinates(int64_t flat, const std::vector<std::pair<std::string, int64_t>>& shape) {
  if (flat < 0) return "-";
  std::vector<int64_t> idx(shape.size());
  for (size_t k = shape.size(); k-- > 0;) {
    const int64_t ext = std::max<int64_t>(shape[k].second, 1);
    idx[k] = flat % ext;
    flat /= ext;
  }
  std::string s;
  for (size_t k = 0; k < shape.size(); ++k)
    s += (k ? " " : "") + shape[k].first + "=" + std::to_string(idx[k]);
  return s;
}

namespace {
// Which aggregate check failed, with its message. A scale error larger than any rounding
// direction can cause (2 u_out) is named "scale"; one the size of a rounding is named "bias" when
// the bias check fails too, since only the rounding direction moves both by that little.
bool aggregate_failure(const Metrics& m, const Tolerance& tol, std::string& metric, char* buf, size_t len) {
  if (!m.aggregate_checked) return false;
  const bool scale = m.scale_fraction > 1, bias = m.bias_fraction > 1, rms = m.rms_fraction > 1;
  const double u_out = codec::unit_roundoff(tol.noise.out);
  const double da = m.alpha - m.alpha_expected;
  if (scale && (std::fabs(da) > 2 * u_out || !bias)) {
    metric = "scale";
    std::snprintf(buf, len,
                  "output scaled: least-squares alpha=<o,ref>/<ref,ref>=%.6f, expected %.6f (reference "
                  "rounded %s to %s); |diff|=%.3g > limit %.3g over %lld elements; bias=%.3g rel_rms=%.3g",
                  m.alpha, m.alpha_expected, to_string(tol.noise.out_rounding), to_string(tol.noise.out),
                  std::fabs(da), m.alpha_limit, (long long)m.count, m.bias, m.rel_rms);
  } else if (bias) {
    metric = "bias";
    std::snprintf(buf, len,
                  "output biased: mean signed error toward sign(ref) / mean|ref| = %.3g, expected %.3g "
                  "(reference rounded %s to %s; rounding toward zero gives %.3g..%.3g); |diff|=%.3g > "
                  "limit %.3g over %lld elements; alpha=%.6f rel_rms=%.3g",
                  m.bias, m.bias_expected, to_string(tol.noise.out_rounding), to_string(tol.noise.out),
                  -u_out, -u_out / 2, std::fabs(m.bias - m.bias_expected), m.bias_limit, (long long)m.count,
                  m.alpha, m.rel_rms);
  } else if (rms) {
    metric = "rms_excess";
    std::snprintf(buf, len,
                  "relative RMS error %.4g > limit %.4g = 6 x the model's expected %.4g (all elements "
                  "within the elementwise bound); max_err_norm=%.3g cosine=%.6f",
                  m.rel_rms, m.rms_limit, m.expected_rms, m.max_err_norm, m.cosine);
  } else {
    return false;
  }
  return true;
}
}  // namespace

Verdict verdict(const Metrics& m, const Tolerance& tol,
                const std::vector<std::pair<std::string, int64_t>>& shape) {
  Verdict v;
  char buf[512];
  const std::string at = coordinates(m.worst_index, shape);
  if (m.nan_count > 0) {
    v.metric = "nan";
    std::snprintf(buf, sizeof buf, "NaN in output: %lld of %lld elements, first at [%s] (ref=%.6g)",
                  (long long)m.nan_count, (long long)m.count, at.c_str(), m.worst_ref);
  } else if (m.inf_mismatch > 0) {
    v.metric = "inf_mismatch";
    std::snprintf(buf, sizeof buf, "Inf mismatch: %lld elements differ in infinity from the reference",
                  (long long)m.inf_mismatch);
  } else if (m.outside > 0) {
    v.metric = "outside_tolerance";
    std::snprintf(buf, sizeof buf,
                  "%lld/%lld elements (%.3g%%) outside atol=%.3g + rtol=%.3g*|ref|; worst at [%s]: "
                  "out=%.6g ref=%.6g; max_err_norm=%.4g rel_rms=%.4g cosine=%.6f%s%s",
                  (long long)m.outside, (long long)m.count, 100.0 * m.frac_outside, tol.atol, tol.rtol,
                  at.c_str(), m.worst_out, m.worst_ref, m.max_err_norm, m.rel_rms, m.cosine,
                  m.degenerate.empty() ? "" : "; output is degenerate: ", m.degenerate.c_str());
  } else if (!m.degenerate.empty()) {
    v.metric = "degenerate";
    std::snprintf(buf, sizeof buf, "degenerate output (%s) although the reference is not",
                  m.degenerate.c_str());
  } else if (!aggregate_failure(m, tol, v.metric, buf, sizeof buf)) {
    std::snprintf(buf, sizeof buf, "max_err_norm=%.3g rel_rms=%.3g cosine=%.6f", m.max_err_norm,
                  m.rel_rms, m.cosine);
    v.message = buf;
    if (m.aggregate_checked) {
      std::snprintf(buf, sizeof buf, "; of their limits: rms %.2f bias %.2f scale %.2f", m.rms_fraction,
                    m.bias_fraction, m.scale_fraction);
      v.message += buf;
    }
    return v;
  }
  v.status = Status::Fail;
  v.message = buf;
  return v;
}

// ---- LSE ---------------------------------------------------------------------------------------
// lse = m + log(l) in fp32 on every path (l sums the fp32 weights; P is rounded only as a P.V
// input). Its error is the weighted mean of the logit errors plus the denominator's:
//  * Q/K rounded (u_q): each logit moves by u_q logit_rms/sqrt3 (RMS); taken at 4 sigma.
//  * fp32 Q.K over D <= 256 products: ~sqrt(D/6) 2^-24 logit_rms at 1 sigma, 26x at 4 sigma:
//    2^-18 logit_rms.
//  * fp32 rounding of x, m, x - m, exp, log and m + log(l): a few ulps of the magnitudes
//    involved, |lse| and the range of x - m that carries weight (<= 32): 2^-21 (|lse| + 32).
//  * l summed in fp32 over n = max_context weights: random walk, 4 sqrt(n) 2^-24 at 4 sigma.
// Doubled as in tolerance_for (the reference may itself be an fp32 kernel's LSE). A wrong scale
// or a missing sink moves lse by O(1) (log 2 for a doubled denominator): far above this.
LseMetrics compare_lse(const std::vector<float>& lse, const std::vector<double>& ref_lse,
                       const ErrorModel& em, const ToleranceInputs& ti) {
  LseMetrics m;
  const size_t n = std::min(lse.size(), ref_lse.size());
  m.count = int64_t(n);
  const double q = 4.0 * em.u_q * ti.logit_rms / kSqrt3;
  const double dot = 0x1.0p-18 * ti.logit_rms;
  const double acc = 4.0 * std::sqrt(double(std::max<int64_t>(ti.max_context, 1))) * kU32;
  auto bound = [&](double r) { return 2.0 * (q + dot + acc + 0x1.0p-21 * (std::fabs(r) + 32.0)); };
  int64_t first_nan = -1, first_inf = -1, worst = -1;
  for (size_t i = 0; i < n; ++i) {
    const double o = lse[i], r = ref_lse[i];
    if (std::isnan(o) || std::isnan(r)) {
      ++m.nan_count;
      if (first_nan < 0) first_nan = int64_t(i);
      continue;
    }
    if (std::isinf(o) || std::isinf(r)) {  // -inf = a row without a visible key or sink
      if (o != r) {
        ++m.inf_mismatch;
        if (first_inf < 0) first_inf = int64_t(i);
      }
      continue;
    }
    const double e = std::fabs(o - r), b = bound(r);
    m.max_abs_err = std::max(m.max_abs_err, e);
    if (e > b) ++m.outside;
    if (worst < 0 || e / b > m.worst_fraction) {
      worst = int64_t(i);
      m.worst_fraction = e / b;
    }
  }
  m.worst_index = first_nan >= 0 ? first_nan : first_inf >= 0 ? first_inf : worst;
  if (m.worst_index >= 0) {
    m.worst_lse = lse[size_t(m.worst_index)];
    m.worst_ref = ref_lse[size_t(m.worst_index)];
    m.worst_bound = bound(m.worst_ref);
  }
  char buf[300];
  std::snprintf(buf, sizeof buf,
                "lse bound = 2*(4u_q*logit_rms/sqrt3 + 2^-18*logit_rms + 4sqrt(n)2^-24 + 2^-21(|ref|+32)) "
                "= 2*(%.3g + %.3g + %.3g + 2^-21(|ref|+32)) (n=%lld)",
                q, dot, acc, (long long)ti.max_context);
  m.model = buf;
  return m;
}

Verdict verdict(const LseMetrics& m, const std::vector<std::pair<std::string, int64_t>>& shape) {
  Verdict v;
  char buf[512];
  const std::string at = coordinates(m.worst_index, shape);
  if (m.nan_count > 0) {
    std::snprintf(buf, sizeof buf, "lse NaN in %lld of %lld rows, first at [%s] (ref=%.8g)",
                  (long long)m.nan_count, (long long)m.count, at.c_str(), m.worst_ref);
  } else if (m.inf_mismatch > 0) {
    std::snprintf(buf, sizeof buf,
                  "lse infinite where the reference is finite, or the reverse, in %lld of %lld rows; "
                  "first at [%s]: lse=%.8g ref=%.8g",
                  (long long)m.inf_mismatch, (long long)m.count, at.c_str(), m.worst_lse, m.worst_ref);
  } else if (m.outside > 0) {
    std::snprintf(buf, sizeof buf,
                  "lse outside its bound in %lld of %lld rows; worst at [%s]: lse=%.8g ref=%.8g "
                  "|diff|=%.4g > bound %.4g (%.3g x) [%s]",
                  (long long)m.outside, (long long)m.count, at.c_str(), m.worst_lse, m.worst_ref,
                  std::fabs(m.worst_lse - m.worst_ref), m.worst_bound, m.worst_fraction, m.model.c_str());
  } else {
    std::snprintf(buf, sizeof buf, "lse max |diff|=%.3g, %.2f of its bound", m.max_abs_err, m.worst_fraction);
    v.message = buf;
    return v;
  }
  v.status = Status::Fail;
  v.metric = "lse";
  v.message = buf;
  return v;
}

}  // namespace pa
