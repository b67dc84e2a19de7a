#pragma once
// The CPU oracle (docs/kernels.md, reference/): attention over *logical* K/V in fp64. It reads only
// LogicalKv (decode(code) * scale per logical token), never a physical layout, a block table or a
// page. Boring on purpose: plain loops in a fixed, documented summation order, so its results are
// byte-stable across compilers (see attention.cpp).
#include <vector>

#include "inputs/inputs.hpp"
#include "core/metrics.hpp"

namespace pa {

struct ReferenceResult {
  std::vector<double> out;      // [S, q_len, Hq, D]
  std::vector<double> lse;      // [S, q_len, Hq], natural log of the softmax denominator (sinks included)
  std::vector<double> uniform;  // [S, q_len, Hq, D]: mean of the V rows the query can see
  ToleranceInputs stats;        // v_max, logit_rms, max_context for the tolerance model
};

/// @pre in was made by make_inputs (valid case).
/// @post bit-identical results for any reference_threads() (see attention.cpp)
ReferenceResult reference_attention(const Inputs& in);

/// The agreement another fp64 oracle (reference_attention_device) is held to, as
/// oracle_disagreement measures it.
inline constexpr double kOracleAgreement = 1e-12;

/// How far two oracle results are apart, relative: the largest of, per output row, max_d |a - b|
/// over max_d |b| (out and uniform), |a.lse - b.lse| / max(1, |b.lse|), and the relative
/// differences of stats.v_max, stats.logit_rms and stats.pv_rms. 0 when identical; +inf when the
/// shapes differ or a NaN stands where the other holds a number.
double oracle_disagreement(const ReferenceResult& a, const ReferenceResult& b);

/// Threads reference_attention uses: n >= 1 fixes the count, 0 restores default_threads() (env
/// PACHECK_THREADS, else the hardware's). The work splits over (sequence, KV head) items, each
/// computed whole by one thread, so the count changes speed only, never a bit of the result.
/// Thread-safe; meant to be set once by a driver (or by a test).
void set_reference_threads(int n);
/// @post >= 1
int reference_threads();

}  // namespace pa
