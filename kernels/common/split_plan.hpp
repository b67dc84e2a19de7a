#pragma once
// The split-K plan of a two-stage kernel: how many partitions of partition_size tokens the longest
// context splits into, and the stage-1 scratch it needs (one (max, sum, partial O) per row and
// partition; shorter sequences leave trailing partitions unused). The host twin, the GPU launcher,
// workspace_bytes and the bench all take it from here, so they cannot size it differently.
#include <cstdint>

#include "pacheck/kernel_abi.h"

namespace pa {

struct SplitPlan {
  int32_t partition = 0;       // tokens per partition
  int32_t num_partitions = 0;  // of the longest context
  int64_t rows = 0;            // T * Hq (T = S * q_len unless ragged)
  int32_t head_size = 0;       // Dv: the partial outputs are V-sized

  int64_t max_logits_elems() const { return rows * num_partitions; }  // [S, q_len, Hq, P] fp32
  int64_t exp_sums_elems() const { return rows * num_partitions; }    // [S, q_len, Hq, P] fp32
  int64_t tmp_out_elems() const { return rows * num_partitions * head_size; }  // [S, q_len, Hq, P, D] fp32
  int64_t bytes() const { return 4 * (max_logits_elems() + exp_sums_elems() + tmp_out_elems()); }
  /// The three scratch arrays carved, in this order, out of one workspace of bytes() bytes.
  float* max_logits(void* ws) const { return static_cast<float*>(ws); }
  float* exp_sums(void* ws) const { return max_logits(ws) + max_logits_elems(); }
  float* tmp_out(void* ws) const { return exp_sums(ws) + exp_sums_elems(); }
};

/// @pre p.partition_size >= 1
inline SplitPlan split_plan(const pacheck_problem& p) {
  SplitPlan s;
  s.partition = p.partition_size;
  s.num_partitions = (p.max_context + p.partition_size - 1) / p.partition_size;
  s.rows = (p.total_q > 0 ? int64_t(p.total_q) : int64_t(p.num_seqs) * p.q_len) * p.num_q_heads;
  s.head_size = p.head_size_v > 0 ? p.head_size_v : p.head_size;
  return s;
}

}  // namespace pa
