#pragma once
// Params structs and host launchers of the GPU kernels (FlashInfer's shape: params with tensor
// shapes next to fields, a __device__ body, a 3-line __global__ wrapper, a launcher returning a
// status). Plain C++: included by the .hip files and by nothing that needs a GPU compiler.
#include <cstdint>
#include <string>

#include "core/dtype.hpp"
#include "core/layout.hpp"
#include "kernels/common/logits.hpp"

namespace pa::gpu {

/// Result of a launcher: empty error = launched.
struct LaunchStatus {
  std::string error;
  bool ok() const { return error.empty(); }
};

struct AttentionParams {
  const void* q = nullptr;             // [T, Hq, D] codes of q_dtype ([S, q_len, Hq, D] when uniform)
  const void* k_cache = nullptr;       // k_layout.cosize(num_blocks) codes of kv_dtype
  const void* v_cache = nullptr;       // v_layout.cosize(num_blocks)
  const float* k_scales = nullptr;     // [scale_layout.size()]
  const float* v_scales = nullptr;     // [scale_layout.size()]
  const int32_t* block_tables = nullptr;  // [S, max_blocks]; unread when csr.indptr is set
  const int32_t* context_lens = nullptr;  // [S]; unread when csr.indptr is set
  // The ragged batch (the unified paths): query token i of sequence s is packed row
  // cu_seqlens_q[s] + i; null = uniform (row s * q_len + i).
  const int32_t* cu_seqlens_q = nullptr;  // [S + 1] or null
  // The CSR page table: pages kv_indices[kv_indptr[s] ..], context (pages - 1) * B +
  // kv_last_page_len[s] (never context_lens: a kernel ignoring last_page_len must show). indptr
  // null = the padded block_tables.
  CsrTable csr;
  const float* sinks = nullptr;        // [Hq] or null
  PageLayout k_layout, v_layout;
  ScaleLayout scale_layout;
  LogitTransform lt;                   // lt.alibi: device pointer [Hq] or null
  DType q_dtype = DType::bf16, kv_dtype = DType::bf16;
  // q_len: query tokens per sequence, or with cu_seqlens_q the largest (the grid's row count).
  int32_t num_seqs = 0, q_len = 1, num_q_heads = 0, num_kv_heads = 0, head_size = 0, block_size = 0;
  int32_t head_size_v = 0;  // Dv of V, out and tmp_out; 0 = head_size
  int32_t k_from_v = 0;     // K's leading elements read from v_cache (mla_split's latent part; k_from_v())
  int32_t total_q = 0;      // T = cu_seqlens_q[S]; 0 = num_seqs * q_len
  int32_t max_blocks = 0, max_context = 0;
  int32_t gqa = 1;          // G
  int32_t gqa_tile = 1;     // G padded up (asm tile); padded rows are computed and discarded
  int32_t partition = 0;    // tokens per split-K partition; 0 = single pass
  int32_t num_partitions = 1;
  bool round_p = false;     // P rounded to q_dtype before P.V (MFMA model)
  void* out = nullptr;      // [T, Hq, Dv] codes of q_dtype
  float* lse = nullptr;     // [T, Hq]
  float* max_logits = nullptr;  // [T, Hq, num_partitions]   (two-stage only)
  float* exp_sums = nullptr;    // [T, Hq, num_partitions]
  float* tmp_out = nullptr;     // [T, Hq, num_partitions, Dv]

  PA_HOST_DEVICE int32_t dv() const { return head_size_v > 0 ? head_size_v : head_size; }
  /// Query rows of the launch: T * Hq.
  PA_HOST_DEVICE int64_t rows() const { return (total_q > 0 ? int64_t(total_q) : int64_t(num_seqs) * q_len) * num_q_heads; }
};

/// Attention (single pass when partition == 0, else stage 1 then stage 2).
LaunchStatus launch_attention(const AttentionParams& p);

struct CacheWriteParams {
  const float* key = nullptr;      // [T, Hkv, D]
  const float* value = nullptr;    // [T, Hkv, Dv]
  const int64_t* slot_mapping = nullptr;  // [T]: blk * B + tok, < 0 = skip
  void* k_cache = nullptr;
  void* v_cache = nullptr;
  float* k_scales = nullptr;       // per-token modes: written; per-tensor: read [1]
  float* v_scales = nullptr;
  PageLayout k_layout, v_layout;
  ScaleLayout scale_layout;
  DType kv_dtype = DType::bf16;
  int32_t num_tokens = 0, num_kv_heads = 0, head_size = 0, block_size = 0;
  int32_t head_size_v = 0;         // Dv; 0 = head_size
};
/// reshape_and_cache: no quantisation (none), per-tensor (x / scale[0]) or per-token
/// (scale = amax / format max per (token, head), stored at the physical slot).
LaunchStatus launch_reshape_and_cache(const CacheWriteParams& p);

}  // namespace pa::gpu
