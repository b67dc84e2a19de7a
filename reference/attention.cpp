#include "reference/attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include <Eigen/Core>

// The CPU oracle. Semantics, one decode step of Case c over *logical* K/V (design §2):
//
//  * GQA/MQA: query head h reads KV head h / G with G = Hq / Hkv (never h % Hkv).
//  * MTP / positions: query token i (0 <= i < q_len) of sequence s sits at position
//    p = ctx_s - q_len + i and sees keys j <= p (causal among the new tokens).
//  * Logit of key j: x = softmax_scale_eff * (q . k_j)           (Case::effective_softmax_scale)
//                    x = c * tanh(x / c)        if logit_softcap c > 0
//                    x = x + slope_h * (j - p)  if ALiBi (slopes from in.alibi_slopes, j - p <= 0)
//  * Sliding window W > 0: only keys with p - j < W, i.e. j in (p - W, p]. Because j = p is always
//    visible, no row is ever empty (the "empty window" edge case cannot arise for W >= 1; W = 0 is
//    off). A window at least as long as the context is the same as no window.
//  * Sinks: in.sinks[h] is one extra logit that enters the softmax denominator only; it has no V
//    row, so it only lowers the weights of the real keys.
//  * out = sum_j softmax_j * V_j; lse = log(sum_j exp(x_j) [+ exp(sink)]) (natural log).
//  * uniform = mean of the V rows the query can see (for the degenerate-output check).
//  * stats.v_max = max |V| over every valid token of every sequence; stats.logit_rms = max over
//    every (query row, visible key) of |softmax_scale_eff| * sqrt(sum_d (q_d k_d)^2), the
//    quadrature sum the tolerance model needs (metrics.cpp); stats.max_context = max ctx_s.
//
// Fixed summation order (golden fixtures are byte-stable across compilers and SIMD widths; the
// project compiles with -ffp-contract=off, so no FMA contraction either):
//  * q . k_j: one double accumulator starting at 0, d = 0, 1, ..., D-1 in increasing order.
//    The quadrature sum for logit_rms uses its own accumulator in the same order.
//  * m = max over the visible logits and the sink (max is exact, order does not matter).
//  * e_j = exp(x_j - m); denom = sum of e_j over j increasing from the window start, then
//    + exp(sink - m) last.
//  * acc[d] = sum over j increasing of e_j * V[j][d] (one accumulator per d; the loop over d is
//    element-wise, so vectorizing it does not reorder any sum); out[d] = acc[d] / denom.
//  * lse = m + log(denom).
//  * uniform[d] = (sum over j increasing of V[j][d]) / n.
// Eigen is used only for storage (the decoded [ctx, D] K and V of one (sequence, KV head)); no
// Eigen reduction touches anything that reaches out, lse or uniform. The one Eigen reduction used,
// maxCoeff of |V| for v_max, is a max, which is exact in any order.
// exp, log and tanh come from the C library: results are byte-stable for a given libm (glibc);
// these functions are not required to be correctly rounded, so another libm may differ in ulps.

namespace pa {

namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Decodes K or V of one (sequence, KV head) into a [ctx, D] row-major matrix, once, so the G
// query heads and q_len tokens that read it share the decode.
void decode_head(const LogicalKv& kv, int32_t s, int32_t ctx, int32_t h, RowMatrix& m) {
  const int32_t D = kv.head_size;
  m.resize(ctx, D);
  for (int32_t t = 0; t < ctx; ++t) {
    double* row = m.data() + int64_t(t) * D;
    for (int32_t d = 0; d < D; ++d) row[d] = kv.value(s, t, h, d);
  }
}

void check_inputs(const Inputs& in) {
  const Case& c = in.c;
  auto fail = [](const std::string& what) {
    throw std::invalid_argument("reference_attention: " + what);
  };
  if (c.num_kv_heads < 1 || c.num_q_heads % c.num_kv_heads != 0) fail("Hq must be a multiple of Hkv");
  if (int64_t(in.context_lens.size()) != c.num_seqs) fail("context_lens size != num_seqs");
  if (in.k.heads != c.num_kv_heads || in.v.heads != c.num_kv_heads ||
      in.k.head_size != c.head_size || in.v.head_size != c.head_size)
    fail("K/V shape does not match the case");
  if (in.q.size() != size_t(c.num_seqs) * c.q_len * c.num_q_heads * c.head_size)
    fail("q size does not match the case");
  if (c.alibi && int64_t(in.alibi_slopes.size()) != c.num_q_heads) fail("alibi_slopes needs Hq entries");
  if (c.sinks && int64_t(in.sinks.size()) != c.num_q_heads) fail("sinks needs Hq entries");
  for (int32_t ctx : in.context_lens)
    if (ctx < c.q_len) fail("context shorter than q_len");
}

}  // namespace

ReferenceResult reference_attention(const Inputs& in) {
  check_inputs(in);
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

  RowMatrix kmat, vmat;
  std::vector<double> q(static_cast<size_t>(D)), acc(static_cast<size_t>(D)), uni(static_cast<size_t>(D));
  std::vector<double> logits;
  for (int32_t s = 0; s < S; ++s) {
    const int32_t ctx = in.context_lens[size_t(s)];
    logits.resize(size_t(ctx));
    for (int32_t kvh = 0; kvh < Hkv; ++kvh) {
      decode_head(in.k, s, ctx, kvh, kmat);
      decode_head(in.v, s, ctx, kvh, vmat);
      r.stats.v_max = std::max(r.stats.v_max, vmat.cwiseAbs().maxCoeff());  // max: order-free
      for (int32_t i = 0; i < QL; ++i) {
        const int32_t p = ctx - QL + i;                        // position of query token i
        const int32_t lo = W > 0 ? std::max(0, p - W + 1) : 0;  // first visible key
        const int32_t n = p - lo + 1;                           // visible keys, >= 1

        // Mean of the visible V rows (same for every query head of this KV head).
        std::fill(uni.begin(), uni.end(), 0.0);
        for (int32_t j = lo; j <= p; ++j) {
          const double* vj = vmat.data() + int64_t(j) * D;
          for (int32_t d = 0; d < D; ++d) uni[size_t(d)] += vj[d];
        }

        for (int32_t g = 0; g < G; ++g) {
          const int32_t h = kvh * G + g;  // query head h reads KV head h / G = kvh
          const size_t row = (size_t(s) * QL + size_t(i)) * Hq + size_t(h);
          for (int32_t d = 0; d < D; ++d) q[size_t(d)] = double(in.q_at(s, i, h, d));
          const double slope = c.alibi ? double(in.alibi_slopes[size_t(h)]) : 0.0;

          // Logits of the visible keys; m = their max (and the sink's).
          double m = c.sinks ? double(in.sinks[size_t(h)]) : -std::numeric_limits<double>::infinity();
          for (int32_t j = lo; j <= p; ++j) {
            const double* kj = kmat.data() + int64_t(j) * D;
            double dot = 0.0, sq = 0.0;
            for (int32_t d = 0; d < D; ++d) {
              const double prod = q[size_t(d)] * kj[d];
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

          // Weights, denominator (sink last), unnormalized P.V.
          double denom = 0.0;
          for (int32_t j = 0; j < n; ++j) {
            logits[size_t(j)] = std::exp(logits[size_t(j)] - m);
            denom += logits[size_t(j)];
          }
          if (c.sinks) denom += std::exp(double(in.sinks[size_t(h)]) - m);
          std::fill(acc.begin(), acc.end(), 0.0);
          for (int32_t j = 0; j < n; ++j) {
            const double e = logits[size_t(j)];
            const double* vj = vmat.data() + int64_t(lo + j) * D;
            for (int32_t d = 0; d < D; ++d) acc[size_t(d)] += e * vj[d];
          }

          double* o = r.out.data() + row * D;
          double* u = r.uniform.data() + row * D;
          for (int32_t d = 0; d < D; ++d) {
            o[d] = acc[size_t(d)] / denom;
            u[d] = uni[size_t(d)] / double(n);
          }
          r.lse[row] = m + std::log(denom);
        }
      }
    }
  }
  return r;
}

}  // namespace pa
