#pragma once
// make_inputs in parts, for core's own use (inputs/inputs.cpp and inputs/inputs_device.hip): the GPU
// generator makes the bulk of K and V itself but takes everything else from the host code that
// make_inputs runs, so the small inputs and the scale rules have one implementation. Not part of
// core's interface: nothing outside core/ includes this header.
#include <cstdint>
#include <vector>

#include "inputs/input_draws.hpp"
#include "inputs/inputs.hpp"

namespace pa::detail {

/// What make_inputs derives from a case's seed before it draws the K/V rows.
struct InputParts {
  /// make_inputs' result less the bulk: q_codes, q, alibi_slopes, sinks, block_tables,
  /// context_lens, num_blocks and max_blocks_per_seq final; k and v carry dtype, heads, head_size
  /// and token_base, with empty codes and scales.
  Inputs in;
  std::vector<double> k_gain;  // [Hkv, D]: K's outlier-channel gains (Values::outliers), else empty
  std::vector<double> v_mean;  // [Hkv]: V's per-head means
  draws::ScaleDraw k_draw, v_draw;

  /// K's or V's row source; its mean and gain point at `mean` and `gain` when given (device
  /// copies of v_mean and k_gain), else at this object's vectors.
  /// @post valid while this object (or, for device pointers, their buffers) lives
  draws::KvRows rows(KvTensor which, const double* mean = nullptr, const double* gain = nullptr) const;
  /// Logical rows (token, head) of K and of V: T * Hkv.
  int64_t rows_count() const { return in.k.token_base.back() * in.k.heads; }
};

/// Every draw of make_inputs except the K/V rows (Q, slopes, sinks, page placement, tables,
/// outlier gains, V means). Runs Q on input_threads() threads.
InputParts make_input_parts(const ValidCase& c);

/// The scales of the per-tensor ([1]) and per-head ([H]) modes given each head's amax over all
/// rows (all zero for 16-bit dtypes, whose scales ignore it).
/// @pre mode is per_tensor or per_head; amax has one value >= 0 per head
std::vector<double> shared_scales(ScaleMode mode, const draws::ScaleDraw& draw,
                                  const std::vector<double>& amax);

/// K and V per-tensor and per-head scales are never close: of each unit's two scales the larger
/// is raised to at least twice the smaller.
/// @pre k.size() == v.size()
void set_apart(std::vector<double>& k, std::vector<double>& v);

/// The per-token modes' scale of row 0 (unit 0), which unit 1's scale reads; 0 when there is one
/// row (no unit 1).
double first_row_scale(const draws::KvRows& rows, const draws::ScaleDraw& draw, int64_t rows_count);

/// owner[blk] = s * max_blocks_per_seq + b when logical page b of sequence s lives in pool page
/// blk, -1 for a free page; empty when a page is claimed twice or lies outside the pool (pack then
/// falls back to its sequential scatter; the device pack, which scatters in parallel, refuses).
std::vector<int64_t> page_owners(const Inputs& in);

/// The float scale every row of head h carries in the modes without per-token scales: 1 (none),
/// float(shared[0]) (per tensor), float(shared[h]) (per head).
/// @pre mode is not per-token; shared as shared_scales returned it (empty for none)
std::vector<float> head_row_scales(ScaleMode mode, const std::vector<double>& shared, int32_t heads);

}  // namespace pa::detail
