#pragma once
// The accuracy verdict. Each metric is defined once, here, and every threshold comes from an error
// model of the path's numerics rather than from a hand-tuned constant: the elementwise bound
// (tolerance_for), three aggregate checks beside it (rms, bias, scale: bugs that hide inside the
// elementwise bound, such as an output scaled by 1.03 or truncated instead of rounded) and the
// LSE bound (compare_lse). Derivations are in metrics.cpp.
#include <cstdint>
#include <string>
#include <vector>

#include "core/case.hpp"
#include "core/dtype.hpp"

namespace pa {

/// Status is not a boolean: these are four different facts and reports count them separately.
enum class Status : uint8_t { Ok, Fail, NotSupported, Skipped };
const char* to_string(Status s);

/// How a value is rounded to a narrower type.
enum class Rounding : uint8_t { nearest_even, toward_zero };
const char* to_string(Rounding r);

/// How a path computes, in unit roundoffs (0 = exact / not rounded). Paths declare theirs.
/// Every rounding other than the output's is round-to-nearest-even (zero mean).
struct ErrorModel {
  DType out = DType::bf16;  // output rounding
  Rounding out_rounding = Rounding::nearest_even;
  double u_p = 0;           // softmax weights P rounded before P.V (e.g. to bf16 for an MFMA)
  double u_q = 0;           // Q (or K) rounded before Q.K (e.g. fp8 Q on fp8 paths)
  double u_tmp = 0;         // split-K partial outputs stored rounded (tmp_out in a 16-bit type)
  double u_v = 0;           // V rounded after dequantization, before P.V (e.g. fp8 V to the q dtype)
  double u_pv = 0;          // P.V products and their partial sums of <= 16 terms kept rounded (fp16 dot)
};

/// What the tolerance depends on in the data, measured on the case's logical inputs.
struct ToleranceInputs {
  double v_max = 0;       // max |V| over the values a query can see
  double logit_rms = 0;   // RMS of |scale * q_d * k_d| summed in quadrature per logit (see .cpp)
  int64_t max_context = 0;
  // Optional, for the aggregate checks; each has a conservative fallback when not measured.
  int64_t row_length = 0;  // output elements per attention row (the head size); 0 = unknown
  /// The P-rounding response of P.V: max over output rows of sqrt(mean over the row's elements d
  /// of max(sum_t w_t^2 v_{t,d}^2, sum_t w_t^2 (v_{t,d} - o_d)^2)), with w_t = P_t / l the
  /// normalized weights and o the reference output, over the keys whose P_t is below 1 (the row's
  /// maximum has P = exp(0) = 1, exact in every format). The first sum is the response of kernels
  /// normalizing by the fp32 weights, the second of those normalizing by the rounded ones.
  /// PvRmsAccumulator computes it. < 0 = not measured: then bounded by 2 v_max (sum_t w_t^2 <= 1,
  /// |v - o| <= 2 v_max).
  double pv_rms = -1;
};

/// ToleranceInputs::pv_rms, accumulated while the reference computes P.V, in one pass: per output
/// row, begin_row(D), add_key(w_t, v_t) for every key whose weight is below the row's maximum,
/// then end_row(o) with the row's output.
class PvRmsAccumulator {
 public:
  void begin_row(int64_t head_size);
  /// @pre begin_row was called; v points to head_size values.
  void add_key(double w, const double* v);
  /// @pre o points to head_size values.
  void end_row(const double* o);
  /// @post >= 0; 0 before any row.
  double value() const { return worst_; }

 private:
  std::vector<double> a_, b_;  // per d: sum w^2 v^2, sum w^2 v
  double c_ = 0;               // sum w^2
  double worst_ = 0;
};

/// The statistical side of the error model, for the aggregate checks: one-sigma sizes of each
/// error source per output element. tolerance_for fills it; a hand-made Tolerance leaves it
/// disabled and gets the elementwise checks only.
struct NoiseModel {
  bool enabled = false;
  DType out = DType::bf16;
  Rounding out_rounding = Rounding::nearest_even;
  double out_rel = 0;      // output rounding, relative to |ref|
  double out_abs = 0;      // output rounding near zero (subnormal spacing), absolute
  double coherent = 0;     // pre-rounding error shared by a row's elements (P, Q, logits, l)
  double independent = 0;  // pre-rounding error independent per element (P.V sums, tmp_out)
  int64_t row_length = 0;  // 0 = unknown: the whole output is taken as one coherent row
  std::string model;       // the derivation, with numbers, recorded in reports
};

struct Tolerance {
  double atol = 0, rtol = 0;
  std::string model;  // the derivation, with numbers, recorded in reports
  NoiseModel noise;   // for the aggregate checks
};

/// @post atol >= 0, rtol >= 0; a correct path of this ErrorModel stays within atol + rtol*|ref|;
///       noise.enabled, and its terms are >= 0.
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

  // Aggregate checks, each a measured value, its expectation under the declared numerics and a
  // limit on their difference derived from tol.noise (metrics.cpp). Only when tol.noise is
  // enabled and the reference is not all zero (aggregate_checked).
  bool aggregate_checked = false;
  double expected_rms = 0;    // the model's relative RMS error (rel_rms is the measured one)
  double rms_limit = 0;       // rel_rms must stay <= rms_limit
  double bias = 0;            // sum (o - ref) sign(ref) / sum |ref|: < 0 = pulled toward zero
  double bias_expected = 0;   // the same for the reference rounded as declared
  double bias_limit = 0;      // |bias - bias_expected| must stay <= bias_limit
  double alpha = 1;           // least-squares scale <o, ref> / <ref, ref>
  double alpha_expected = 1;  // the same for the reference rounded as declared
  double alpha_limit = 0;     // |alpha - alpha_expected| must stay <= alpha_limit
  // Each check's value as a fraction of its limit (> 1 fails), for reporting how close correct
  // kernels come to a false alarm.
  double rms_fraction = 0, bias_fraction = 0, scale_fraction = 0;
  double worst_aggregate_fraction() const;
};

/// Compares an output with the reference. `uniform` (optional, may be empty) is the output of
/// uniform attention (the mean of visible V): an output that matches it while the reference does
/// not is flagged "v_mean". The reference is exact (fp64) or another output of the same model
/// (metamorphic comparisons: elements exactly representable in the output type count twice).
/// @pre out.size() == ref.size() and uniform is empty or of the same size; ref is laid out
///      [rows, tol.noise.row_length] when row_length > 0.
/// @post the aggregate fields are set iff aggregate_checked; every limit > 0 then.
Metrics compare(const std::vector<float>& out, const std::vector<double>& ref,
                const Tolerance& tol, const std::vector<double>& uniform = {});

struct Verdict {
  Status status = Status::Ok;
  std::string metric;   // the metric that decided a failure ("nan", "outside_tolerance", ...)
  std::string message;  // one line naming the metric, the worst element and the numbers
};

/// Ok iff no NaN, no Inf mismatch, every element within tolerance, the output is not degenerate
/// and the aggregate checks hold (metrics "scale", "bias", "rms_excess"). `shape` names the
/// output's dimensions for coordinates in the message, e.g. {{"s", S}, {"i", q_len}, {"h", Hq}, {"d", D}}.
Verdict verdict(const Metrics& m, const Tolerance& tol,
                const std::vector<std::pair<std::string, int64_t>>& shape);

/// The log-sum-exp rows [S, q_len, Hq] (natural log, fp32 on every path) against the reference.
struct LseMetrics {
  int64_t count = 0;
  int64_t nan_count = 0;       // NaN in lse (any fails)
  int64_t inf_mismatch = 0;    // infinite where the reference is finite or vice versa (-inf = empty row)
  int64_t outside = 0;         // rows with |lse - ref| > bound(ref)
  double max_abs_err = 0;
  double worst_fraction = 0;   // max |lse - ref| / bound(ref): > 1 fails
  int64_t worst_index = -1;    // the row furthest beyond (or closest to) its bound; first NaN first
  double worst_lse = 0, worst_ref = 0, worst_bound = 0;
  std::string model;           // the bound's derivation, with numbers
};

/// @pre lse.size() == ref_lse.size().
/// @post outside == 0 and nan_count == 0 and inf_mismatch == 0 for a path of this ErrorModel;
///       worst_fraction >= 0.
LseMetrics compare_lse(const std::vector<float>& lse, const std::vector<double>& ref_lse,
                       const ErrorModel& em, const ToleranceInputs& ti);

/// Ok iff no NaN, no infinity mismatch and every row within its bound (metric "lse").
Verdict verdict(const LseMetrics& m, const std::vector<std::pair<std::string, int64_t>>& shape);

/// The named dimensions of a case's LSE rows [S, q_len, Hq] ([T, Hq] for a ragged batch).
std::vector<std::pair<std::string, int64_t>> lse_shape(const Case& c);

/// The named dimensions of a case's output [S, q_len, Hq, Dv] ([T, Hq, Dv] for a ragged batch),
/// for verdict() coordinates.
std::vector<std::pair<std::string, int64_t>> output_shape(const Case& c);

/// "s=0 i=0 h=3 d=17" for a flat index in a row-major shape.
std::string coordinates(int64_t flat, const std::vector<std::pair<std::string, int64_t>>& shape);

}  // namespace pa
