#pragma once
// The logit transform shared by the host twins and the GPU kernels; it must match the CPU
// reference (reference/attention.cpp) term for term:
//
//   query token i of a sequence with context ctx sits at position p = ctx - q_len + i;
//   key t is visible iff t <= p (causal among the MTP tokens) and, with a window W > 0, t > p - W;
//   x = softmax_scale * (q . k);  with soft-cap c > 0: x = c * tanh(x / c);
//   with ALiBi: x += slope[h] * (t - p)   (<= 0: older keys are penalised);
//   sinks are not logits of any key: they enter the denominator only (Partial::sink).
//
// 1/c is precomputed so the inner loop has no division.
#include <math.h>
#include <stdint.h>

#include "core/host_device.hpp"

namespace pa {

PA_HOST_DEVICE inline int32_t query_position(int32_t ctx, int32_t q_len, int32_t i) {
  return ctx - q_len + i;
}

struct LogitTransform {
  float scale = 1.f;          // softmax scale
  float softcap = 0.f;        // 0 = off
  float inv_softcap = 0.f;    // 1 / softcap
  int32_t window = 0;         // 0 = off
  const float* alibi = nullptr;  // [Hq] slopes or null

  /// First visible key of a query at position p (keys [first, p] are visible).
  PA_HOST_DEVICE int32_t first_visible(int32_t p) const {
    return (window > 0 && p - window + 1 > 0) ? p - window + 1 : 0;
  }
  PA_HOST_DEVICE bool visible(int32_t t, int32_t p) const {
    return t <= p && (window <= 0 || t > p - window);
  }
  /// The logit of raw dot product q.k for query head h at position p against key t.
  PA_HOST_DEVICE float operator()(float dot, int32_t h, int32_t t, int32_t p) const {
    float x = dot * scale;
    if (softcap > 0.f) x = softcap * tanhf(x * inv_softcap);
    if (alibi) x += alibi[h] * float(t - p);
    return x;
  }
};

/// Builds the transform from case fields (host side; the kernels receive it by value).
inline LogitTransform make_logit_transform(double softmax_scale, double softcap, int32_t window,
                                           const float* alibi) {
  LogitTransform lt;
  lt.scale = float(softmax_scale);
  lt.softcap = float(softcap);
  lt.inv_softcap = softcap > 0 ? float(1.0 / softcap) : 0.f;
  lt.window = window;
  lt.alibi = alibi;
  return lt;
}

}  // namespace pa
