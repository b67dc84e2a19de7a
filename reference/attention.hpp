#pragma once
// The CPU oracle (docs/kernels.md, reference/): attention over *logical* K/V in fp64. It reads only
// LogicalKv (decode(code) * scale per logical token), never a physical layout, a block table or a
// page. Boring on purpose: plain loops in a fixed, documented summation order, so its results are
// byte-stable across compilers (see attention.cpp).
#include <vector>

#include "core/inputs.hpp"
#include "core/metrics.hpp"

namespace pa {

struct ReferenceResult {
  std::vector<double> out;      // [S, q_len, Hq, D]
  std::vector<double> lse;      // [S, q_len, Hq], natural log of the softmax denominator (sinks included)
  std::vector<double> uniform;  // [S, q_len, Hq, D]: mean of the V rows the query can see
  ToleranceInputs stats;        // v_max, logit_rms, max_context for the tolerance model
  double own_rounding = 0;      // unit roundoff of a stored reference output (0: this fp64 oracle;
                                // the GPU reference kernel's output is rounded to the q dtype)
};

/// @pre in was made by make_inputs (valid case).
/// @post bit-identical results for any reference_threads() (see attention.cpp)
ReferenceResult reference_attention(const Inputs& in);

/// Threads reference_attention uses: n >= 1 fixes the count, 0 restores default_threads() (env
/// PACHECK_THREADS, else the hardware's). The work splits over (sequence, KV head) items, each
/// computed whole by one thread, so the count changes speed only, never a bit of the result.
/// Thread-safe; meant to be set once by a driver (or by a test).
void set_reference_threads(int n);
/// @post >= 1
int reference_threads();

}  // namespace pa
