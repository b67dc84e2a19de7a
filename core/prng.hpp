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
  kSuite
};

class Rng {
 public:
  PA_HOST_DEVICE constexpr Rng(uint64_t seed, uint64_t stream = 0)
      : state_(mix64(seed ^ mix64(stream + 0x9E3779B97F4A7C15ull))) {}
  PA_HOST_DEVICE constexpr Rng(uint64_t seed, Stream stream) : Rng(seed, uint64_t(stream)) {}

  PA_HOST_DEVICE constexpr uint64_t next_u64() {
    state_ += 0x9E3779B97F4A7C15ull;
    return mix64(state_);
  }
  // Uniform in [0, 1) with 53 random bits.
  PA_HOST_DEVICE constexpr double uniform() { return double(next_u64() >> 11) * 0x1.0p-53; }
  PA_HOST_DEVICE constexpr double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [lo, hi] (inclusive), for spans up to 2^32. Multiply-shift: bias below
  // 2^-32 and identical everywhere (no rejection loop whose iteration count could differ).
  PA_HOST_DEVICE constexpr int64_t uniform_int(int64_t lo, int64_t hi) {
    const uint64_t span = uint64_t(hi - lo) + 1;
    return lo + int64_t(((next_u64() >> 32) * span) >> 32);
  }
  // Approximately standard normal: Irwin-Hall sum of 4 uniforms, rescaled to unit variance.
  // Bounded (|z| <= 3.47) and built only from + and *, so it is bit-identical everywhere.
  PA_HOST_DEVICE constexpr double normal() {
    const double s = uniform() + uniform() + uniform() + uniform();
    return (s - 2.0) * 1.7320508075688772;  // sqrt(12 / 4)
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
