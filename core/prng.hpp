#pragma once
// Portable, seedable randomness. Every random draw in pacheck flows from one seed through this
// file: never std::random_device, never <random>'s distributions (they differ between standard
// libraries, and golden data must not). Only integer ops, +, * and exact power-of-two scaling
// are used, so g++, clang and nvcc host code produce the same bytes.
#include <cstdint>

#include "core/host_device.hpp"

namespace pa {

// splitmix64's finalizer: a bijective 64-bit mixer.
PA_HOST_DEVICE constexpr uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Named streams keep tensors independent of each other: adding a draw to one tensor's
// generation never shifts another's bytes.
enum class Stream : uint64_t {
  kQuery = 1, kKey, kValue, kKeyScale, kValueScale, kPlacement, kGarbage, kSinks, kCase, kMutant,
  kSuite, kOutliers, kKeySpread, kValueSpread  // appended only: a stream's id is part of the bytes
};

// Counter-based: draw n (n = 1, 2, ...) of a stream is mix64(state0 + n * kGamma), independent of
// every other draw, so skip() can start a generator at any element of its stream in O(1). That is
// what lets make_inputs fill disjoint ranges of a tensor on several threads with the same bytes.
class Rng {
 public:
  static constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;  // golden-ratio increment

  PA_HOST_DEVICE constexpr Rng(uint64_t seed, uint64_t stream = 0)
      : state_(mix64(seed ^ mix64(stream + kGamma))) {}
  PA_HOST_DEVICE constexpr Rng(uint64_t seed, Stream stream) : Rng(seed, uint64_t(stream)) {}

  PA_HOST_DEVICE constexpr uint64_t next_u64() {
    state_ += kGamma;
    return mix64(state_);
  }
  /// Skips n draws (wrapping arithmetic, exact for any n).
  /// @post the next draw is the one n draws further on than it would have been
  PA_HOST_DEVICE constexpr void skip(uint64_t n) { state_ += n * kGamma; }
  /// The k-th next draw (k >= 1) without advancing: peek(1) is what next_u64() returns.
  PA_HOST_DEVICE constexpr uint64_t peek(uint64_t k) const { return mix64(state_ + k * kGamma); }
  // Uniform in [0, 1) with 53 random bits.
  PA_HOST_DEVICE constexpr double uniform() { return to_unit(next_u64()); }
  /// A draw as a uniform in [0, 1) (exact: the 53-bit integer times 2^-53).
  PA_HOST_DEVICE static constexpr double to_unit(uint64_t u) { return double(u >> 11) * 0x1.0p-53; }
  PA_HOST_DEVICE constexpr double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [lo, hi] (inclusive), for spans up to 2^32. Multiply-shift: bias below
  // 2^-32 and identical everywhere (no rejection loop whose iteration count could differ).
  PA_HOST_DEVICE constexpr int64_t uniform_int(int64_t lo, int64_t hi) {
    const uint64_t span = uint64_t(hi - lo) + 1;
    return lo + int64_t(((next_u64() >> 32) * span) >> 32);
  }
  // Approximately standard normal: Irwin-Hall sum of 4 uniforms, rescaled to unit variance.
  // Bounded (|z| <= 3.47) and built only from + and *, so it is bit-identical everywhere. The
  // draws are named so that their order in the sum is fixed (the operands of + are unsequenced).
  PA_HOST_DEVICE constexpr double normal() {
    const double u0 = uniform();
    const double u1 = uniform();
    const double u2 = uniform();
    const double u3 = uniform();
    return irwin_hall(u0, u1, u2, u3);
  }
  /// normal() from its four uniforms, in draw order (for code that draws them by position).
  PA_HOST_DEVICE static constexpr double irwin_hall(double u0, double u1, double u2, double u3) {
    return (u0 + u1 + u2 + u3 - 2.0) * 1.7320508075688772;  // sqrt(12 / 4)
  }

 private:
  uint64_t state_;
};

// Fisher-Yates shuffle with our own integer draws (std::shuffle's algorithm is unspecified).
template <class Vec>
void shuffle(Vec& v, Rng& rng) {
  for (int64_t i = int64_t(v.size()) - 1; i > 0; --i) {
    const int64_t j = rng.uniform_int(0, i);
    auto tmp = v[size_t(i)];
    v[size_t(i)] = v[size_t(j)];
    v[size_t(j)] = tmp;
  }
}

}  // namespace pa
