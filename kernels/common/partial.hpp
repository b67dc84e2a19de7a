#pragma once
// The split-K partial result shared by the host twins and the GPU kernels (FlashInfer's state_t):
// over a set of keys, o = sum_t exp(x_t - m) * v_t (unnormalised), m = max_t x_t, l = sum_t
// exp(x_t - m). Two partials over disjoint key sets merge exactly (up to rounding) into the
// partial over their union, so split size never changes the math, only the summation order.
//
// The empty partial (no visible key) is {o = 0, m = -inf, l = 0}; merge() treats -inf maxima
// explicitly so that exp(-inf - -inf) = exp(NaN) never happens: merging with an empty partial is
// the identity and merging two empty partials is empty. A sink logit s is the partial
// {o = 0, m = s, l = 1}: it joins the denominator only.
#include <math.h>  // expf, logf, INFINITY in the global namespace, for host and device alike

#include "core/host_device.hpp"

namespace pa {

/// Weights that bring two running maxima onto their common maximum, NaN-free for empties.
struct MergeWeights {
  float m;       // max(m_a, m_b)
  float wa, wb;  // exp(m_a - m), exp(m_b - m); 0 for an empty side
};
PA_HOST_DEVICE inline MergeWeights merge_weights(float m_a, float m_b) {
  MergeWeights w;
  w.m = m_a > m_b ? m_a : m_b;
  if (w.m == -INFINITY) {  // both empty
    w.wa = w.wb = 0.f;
    return w;
  }
  w.wa = m_a == -INFINITY ? 0.f : expf(m_a - w.m);
  w.wb = m_b == -INFINITY ? 0.f : expf(m_b - w.m);
  return w;
}

/// A partial over N output elements (N = D on the host; the slice a thread owns on the GPU).
template <int N>
struct Partial {
  float o[N];
  float m;
  float l;

  PA_HOST_DEVICE static Partial empty() {
    Partial p;
    for (int i = 0; i < N; ++i) p.o[i] = 0.f;
    p.m = -INFINITY;
    p.l = 0.f;
    return p;
  }
  /// The attention sink as a partial: it adds exp(s - m) to the denominator and nothing to o.
  PA_HOST_DEVICE static Partial sink(float s) {
    Partial p = empty();
    p.m = s;
    p.l = 1.f;
    return p;
  }
  /// A partial from a normalised output (tmp_out = o / l) and its (m, l): stage-2 input. Reads
  /// the first `n` elements (a row of tmp_out is D long, which may be shorter than N).
  PA_HOST_DEVICE static Partial from_normalised(const float* o_norm, float m, float l, int n = N) {
    Partial p;
    for (int i = 0; i < N; ++i) p.o[i] = i < n ? o_norm[i] * l : 0.f;
    p.m = m;
    p.l = l;
    return p;
  }
  /// *this := *this (+) b. Associative and commutative up to float rounding; empty is neutral.
  PA_HOST_DEVICE void merge(const Partial& b) {
    const MergeWeights w = merge_weights(m, b.m);
    for (int i = 0; i < N; ++i) o[i] = o[i] * w.wa + b.o[i] * w.wb;
    l = l * w.wa + b.l * w.wb;
    m = w.m;
  }
  /// o / l; 0 for an empty partial (l == 0). A NaN that reached l (a poisoned slot was read)
  /// stays NaN: masking it as 0 would turn a poison leak into a plausible-looking zero.
  PA_HOST_DEVICE float normalised(int i) const { return l == 0.f ? 0.f : o[i] / l; }
  /// Natural log of the denominator: m + log(l); -inf for an empty partial, NaN stays NaN.
  PA_HOST_DEVICE float lse() const { return l == 0.f ? -INFINITY : m + logf(l); }
};

}  // namespace pa
