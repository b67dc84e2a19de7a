#include "core/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace pa {

const char* to_string(Status s) {
  switch (s) {
    case Status::Ok: return "Ok";
    case Status::Fail: return "Fail";
    case Status::NotSupported: return "NotSupported";
    case Status::Skipped: return "Skipped";
  }
  return "?";
}

// Error model (all bounds relative to v_max = max |V|, since o is a convex combination of V rows):
//  * output rounding to the out dtype:            u_out * |o|          -> rtol
//  * P rounded to u_p before P.V: each weight is off by u_p relative, and the normalizer computed
//    from unrounded weights disagrees by at most the same:             2 u_p v_max
//  * Q/K rounded to u_q before Q.K: each logit moves by ~u_q * logit_rms / sqrt(3) (independent
//    uniform rounding errors add in quadrature); a logit shift delta moves o by at most
//    2 delta v_max. Taken at 4 sigma:                                  8 u_q logit_rms v_max / sqrt(3)
//  * split-K partials stored rounded (u_tmp), merged with weights summing to 1:  u_tmp v_max
//  * fp32 accumulation over n = max_context terms, random-walk bound at 4 sigma:
//                                                                      4 sqrt(n) 2^-24 v_max
// plus one output ulp of v_max for outputs near zero (an element of o near 0 still carries the
// rounding of partial sums of size v_max). The sum is doubled as the safety factor: a layout,
// scale or routing bug moves o by O(v_max), far above this.
Tolerance tolerance_for(const ErrorModel& em, const ToleranceInputs& ti) {
  const double u_out = codec::unit_roundoff(em.out);
  const double acc = 4.0 * std::sqrt(double(std::max<int64_t>(ti.max_context, 1))) * 0x1.0p-24;
  const double qk = 8.0 * em.u_q * ti.logit_rms / std::sqrt(3.0);
  const double rel = u_out + 2.0 * em.u_p + qk + em.u_tmp + acc;
  Tolerance t;
  t.rtol = 2.0 * u_out;
  t.atol = 2.0 * rel * ti.v_max;
  char buf[400];
  std::snprintf(buf, sizeof buf,
                "atol = 2*v_max*(u_out + 2u_p + 8u_q*logit_rms/sqrt3 + u_tmp + 4sqrt(n)2^-24) = "
                "2*%.4g*(%.3g + %.3g + %.3g + %.3g + %.3g) = %.4g; rtol = 2u_out = %.4g "
                "(out=%s, n=%lld)",
                ti.v_max, u_out, 2 * em.u_p, qk, em.u_tmp, acc, t.atol, t.rtol, to_string(em.out),
                (long long)ti.max_context);
  t.model = buf;
  return t;
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
  // A degenerate output is only a finding when the reference is not itself that degenerate thing.
  if (n > 1 && m.nan_count == 0) {
    bool ref_zero = true, ref_const = true;
    for (size_t i = 0; i < n; ++i) {
      if (ref[i] != 0) ref_zero = false;
      if (ref[i] != ref[0]) ref_const = false;
    }
    if (all_zero && !ref_zero) m.degenerate = "all_zero";
    else if (constant && !ref_const) m.degenerate = "constant";
    else if (near_uniform && !ref_uniform) m.degenerate = "v_mean";
  }
  return m;
}

std::vector<std::pair<std::string, int64_t>> output_shape(const Case& c) {
  return {{"s", c.num_seqs}, {"i", c.q_len}, {"h", c.num_q_heads}, {"d", c.head_size}};
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
  } else {
    std::snprintf(buf, sizeof buf, "max_err_norm=%.3g rel_rms=%.3g cosine=%.6f", m.max_err_norm,
                  m.rel_rms, m.cosine);
    v.message = buf;
    return v;
  }
  v.status = Status::Fail;
  v.message = buf;
  return v;
}

}  // namespace pa
