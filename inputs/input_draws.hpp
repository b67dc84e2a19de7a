#pragma once
// The per-element definitions of generated inputs (inputs/inputs.hpp), PA_HOST_DEVICE so that
// make_inputs on the host and make_device_inputs on the GPU (inputs/inputs_device.hip) share one
// home for the arithmetic: the normal at a stream position, the token factor, a K/V element's
// value, the scale draw and the encode of x / s. The host keeps its own vectorised schedule (8-wide
// blocks, CPU clones) and the device its own (a warp per row), but both call these functions, so
// a change here moves both and cannot make them disagree.
//
// Bit-identity rests on the operations used: integer mixing, +, *, / and conversions, all IEEE
// and correctly rounded on both sides, with no FMA contraction (host -ffp-contract=off, nvcc
// --fmad=false, HIP -ffp-contract=off), and scaling by exact powers of two. No libm function that
// is not correctly rounded (exp2, pow) appears here.
#include <cstdint>

#include "core/dtype.hpp"
#include "core/host_device.hpp"
#include "core/prng.hpp"

namespace pa::draws {

/// The approximately normal value whose four uniforms are draws k + 1 .. k + 4 after r's position
/// (what the (k/4 + 1)-th of a run of sequential r.normal() calls returns), without advancing r.
PA_HOST_DEVICE inline double normal_at(const Rng& r, uint64_t k) {
  return Rng::irwin_hall(Rng::to_unit(r.peek(k + 1)), Rng::to_unit(r.peek(k + 2)),
                         Rng::to_unit(r.peek(k + 3)), Rng::to_unit(r.peek(k + 4)));
}

/// Per-token magnitude factor in [1/2, 2] (one draw): per-token scales then really differ across
/// tokens and pages, so a scale taken from the wrong slot changes values by up to 4x. Affine in a
/// uniform draw, not exp2 of one: exp2 is not correctly rounded, and inputs must be identical
/// everywhere.
PA_HOST_DEVICE inline double token_factor(Rng& rng) { return rng.uniform(0.5, 2.0); }

/// x * 2^-k for 0 <= k <= 62: one correctly rounded multiply by an exact power of two (what
/// std::ldexp gives for these exponents), usable in device code and vectorisable on the host.
PA_HOST_DEVICE inline double times_pow2_neg(double x, int k) {
  return x * bit_cast<double>(uint64_t(1023 - k) << 52);
}

/// Values::outliers: element e of a tensor keeps its value with probability 3/4, else it is
/// scaled by 2^-k, k uniform in [0, 15] (exact: a power of two), from draw e + 1 of its spread
/// stream.
PA_HOST_DEVICE inline double spread_value(const Rng& spread, uint64_t e, double x) {
  const uint64_t u = spread.peek(e + 1);
  return (u >> 62) == 0 ? times_pow2_neg(x, int((u >> 32) & 15)) : x;
}

/// The part of a K/V element drawn from its normal n: f * n (K) or m + f * n (V, per-head mean m).
PA_HOST_DEVICE inline double scaled_normal(double f, double n, double m, bool add_mean) {
  const double z = f * n;
  return add_mean ? m + z : z;
}

/// The real-valued draws x[T, H, D] of K or V, one row r = token * H + head at a time. The byte
/// definition is the sequential pass over rows r = 0, 1, ... of the stream: row r takes a token
/// factor, then D normals of 4 draws each, so it starts at draw r * (1 + 4 D) after `start` and
/// any row (any element) can be drawn on its own. Element (r, d) is
///   scaled_normal(f_r, normal d of row r, mean[h], V) * gain[h, d] (K, outliers)
/// then spread_value with element index r * D + d (outliers).
/// The pointers are the caller's (host vectors, or their device copies in device code).
struct KvRows {
  Rng start{0};  // positioned at row 0
  int32_t heads = 0, head_size = 0;
  const double* mean = nullptr;  // [H] for V, nullptr for K
  // Values::outliers only: per-channel gains [H, D] (K's outlier channels), and the stream whose
  // draw e + 1 decides element e's power-of-two spread.
  const double* gain = nullptr;
  Rng spread{0};
  bool has_spread = false;

  /// The generator at the start of row r (its token factor is the next draw).
  PA_HOST_DEVICE Rng row_start(int64_t r) const {
    Rng g = start;
    g.skip(uint64_t(r) * (1 + 4 * uint64_t(head_size)));
    return g;
  }
  /// Element (r, d) once its row's token factor f is drawn from `normals` (row_start(r) after
  /// token_factor): the value the sequential pass draws.
  /// @pre 0 <= d < head_size
  PA_HOST_DEVICE double element(const Rng& normals, double f, int64_t r, int32_t d) const {
    const int32_t h = int32_t(r % heads);
    double x = scaled_normal(f, normal_at(normals, 4 * uint64_t(d)), mean ? mean[h] : 0.0, mean != nullptr);
    if (gain) x *= gain[int64_t(h) * head_size + d];
    if (has_spread) x = spread_value(spread, uint64_t(r) * uint64_t(head_size) + uint64_t(d), x);
    return x;
  }
};

/// The scale of one unit of a tensor's scale mode (the whole tensor, a head, or a token row). The
/// scale stream takes two draws per unit in unit order (tensor; head h; row r), unit u's draws
/// 2u + 1 and 2u + 2:
///  * a margin: for 8-bit formats the scale is amax / format max times [1, 1.25], so codes use the
///    format's range up to near saturation, the way a real writer quantizes, yet no two units
///    share a scale; 16-bit formats take a scale in [1/2, 2];
///  * a spread: unit 0 takes 1, unit 1 takes 32 (and at least 32x unit 0's scale), the others
///    [1, 16], so the per-head and per-token scales of a tensor span 16x or more even after K's
///    and V's are set apart (set_apart raises a scale by at most 2x), and a scale read from the
///    wrong unit is far off.
struct ScaleDraw {
  Rng stream{0};
  bool eight = false;  // an 8-bit KV dtype: the scale follows the unit's amax
  double fmax = 0;     // the format's largest finite value

  ScaleDraw() = default;
  PA_HOST_DEVICE ScaleDraw(DType kv_dtype, Rng s)
      : stream(s), eight(is_8bit(kv_dtype)), fmax(codec::max_finite(kv_dtype)) {}
  /// The scale of `unit` with the given amax (>= 0); s0 is unit 0's (only unit 1 reads it).
  PA_HOST_DEVICE double operator()(double amax, uint64_t unit, double s0) const {
    Rng r = stream;
    r.skip(2 * unit);
    const double margin = eight ? r.uniform(1.0, 1.25) : r.uniform(0.5, 2.0);
    const double u = r.uniform();
    const double spread = unit == 0 ? 1.0 : unit == 1 ? 32.0 : 1.0 + 15.0 * u;
    const double a = amax > 0 ? amax : 1.0;
    const double sc = (eight ? a / fmax : 1.0) * margin * spread;
    const double floor1 = 32.0 * s0;
    return unit == 1 && sc < floor1 ? floor1 : sc;  // std::max(sc, 32 s0) for unit 1
  }
};

/// max(a, |x|) for a >= 0 (exact in any order: the amax of a row, head or tensor).
PA_HOST_DEVICE inline double abs_max(double a, double x) {
  const double ax = x < 0 ? -x : x;
  return a < ax ? ax : a;
}

/// The code of x under scale s: encode(float(x / s)) (a 16-bit dtype without scale has s = 1).
template <DType T>
PA_HOST_DEVICE inline uint16_t encode_scaled_as(double x, double s) {
  return uint16_t(codec::Codec<T>::encode(float(x / s)));
}
PA_HOST_DEVICE inline uint16_t encode_scaled(DType t, double x, double s) {
  return uint16_t(codec::encode(t, float(x / s)));
}

}  // namespace pa::draws
