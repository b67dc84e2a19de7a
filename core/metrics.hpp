#pragma once
// The accuracy verdict of design §5. Each metric is defined once, here, and the tolerance comes
// from an error model of the path's numerics rather than from a hand-tuned constant.
#include <cstdint>
#include <string>
#include <vector>

#include "core/case.hpp"
#include "core/dtype.hpp"

namespace pa {

/// Status is not a boolean: these are four different facts and reports count them separately.
enum class Status : uint8_t { Ok, Fail, NotSupported, Skipped };
const char* to_string(Status s);

/// How a path computes, in unit roundoffs (0 = exact / not rounded). Paths declare theirs.
struct ErrorModel {
  DType out = DType::bf16;  // output rounding
  double u_p = 0;           // softmax weights P rounded before P.V (e.g. to bf16 for an MFMA)
  double u_q = 0;           // Q (or K) rounded before Q.K (e.g. fp8 Q on fp8 paths)
  double u_tmp = 0;         // split-K partial outputs stored rounded (tmp_out in a 16-bit type)
};

/// What the tolerance depends on in the data, measured on the case's logical inputs.
struct ToleranceInputs {
  double v_max = 0;       // max |V| over the values a query can see
  double logit_rms = 0;   // RMS of |scale * q_d * k_d| summed in quadrature per logit (see .cpp)
  int64_t max_context = 0;
};

struct Tolerance {
  double atol = 0, rtol = 0;
  std::string model;  // the derivation, with numbers, recorded in reports
};

/// @post atol >= 0, rtol >= 0; a correct path of this ErrorModel stays within atol + rtol*|ref|.
Tolerance tolerance_for(const ErrorModel& em, const ToleranceInputs& ti);

struct Metrics {
  int64_t count = 0;
  int64_t nan_count = 0;        // NaN in the output (any fails)
  int64_t inf_mismatch = 0;     // Inf where the reference is finite, or of another sign
  double max_abs_err = 0;
  double ref_inf_norm = 0;
  double max_err_norm = 0;      // max |o - ref| / ||ref||_inf
  double rel_rms = 0;           // ||o - ref||_2 / ||ref||_2
  double cosine = 1;            // <o, ref> / (||o|| ||ref||)
  int64_t outside = 0;          // elements with |o - ref| > atol + rtol |ref|
  double frac_outside = 0;
  int64_t worst_index = -1;     // flat index of the element furthest outside its bound
  double worst_out = 0, worst_ref = 0;
  std::string degenerate;       // "", "all_zero", "constant", "v_mean"
};

/// Compares an output with the reference. `uniform` (optional, may be empty) is the output of
/// uniform attention (the mean of visible V): an output that matches it while the reference does
/// not is flagged "v_mean".
/// @pre out.size() == ref.size() and uniform is empty or of the same size.
Metrics compare(const std::vector<float>& out, const std::vector<double>& ref,
                const Tolerance& tol, const std::vector<double>& uniform = {});

struct Verdict {
  Status status = Status::Ok;
  std::string metric;   // the metric that decided a failure ("nan", "outside_tolerance", ...)
  std::string message;  // one line naming the metric, the worst element and the numbers
};

/// Ok iff no NaN, no Inf mismatch, every element within tolerance and the output is not
/// degenerate. `shape` names the output's dimensions for coordinates in the message,
/// e.g. {{"s", S}, {"i", q_len}, {"h", Hq}, {"d", D}}.
Verdict verdict(const Metrics& m, const Tolerance& tol,
                const std::vector<std::pair<std::string, int64_t>>& shape);

/// The named dimensions of a case's output [S, q_len, Hq, D], for verdict() coordinates.
std::vector<std::pair<std::string, int64_t>> output_shape(const Case& c);

/// "s=0 i=0 h=3 d=17" for a flat index in a row-major shape.
std::string coordinates(int64_t flat, const std::vector<std::pair<std::string, int64_t>>& shape);

}  // namespace pa
