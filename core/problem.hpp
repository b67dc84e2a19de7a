#pragma once
// The ABI problem (include/pacheck/kernel_abi.h) as pacheck reads it: the physical view of its
// caches and the sizes of its outputs, built in one place. The host twins, the GPU launcher, the
// timing code, the known-bad kernels and the launch marshalling all take them from here, so no two
// of them can disagree about where an element lives or how large an output is.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "core/dtype.hpp"
#include "core/layout.hpp"
#include "pacheck/kernel_abi.h"

namespace pa {

/// The K and V page layouts and the scale layout of a launch.
struct KvLayouts {
  PageLayout k, v;
  ScaleLayout scale;
};

/// The minor-2 fields read with their meaning for a problem that leaves them 0 (one written by
/// hand, or by an earlier minor): Dv = D, T = S * q_len, the largest q_len = q_len.
inline int32_t head_size_v(const pacheck_problem& p) { return p.head_size_v > 0 ? p.head_size_v : p.head_size; }
inline int64_t total_q(const pacheck_problem& p) {
  return p.total_q > 0 ? int64_t(p.total_q) : int64_t(p.num_seqs) * p.q_len;
}
inline int32_t max_q_len(const pacheck_problem& p) { return p.max_q_len > 0 ? p.max_q_len : p.q_len; }
inline int64_t page_stride_v(const pacheck_problem& p) {
  return p.page_stride_v > 0 ? p.page_stride_v : p.page_stride;
}

/// Why the problem's caches cannot be laid out (a size the layout cannot split), or nullopt.
inline std::optional<std::string> kv_layouts_error(const pacheck_problem& p) {
  const int32_t eb = dtype_bytes(DType(p.kv_dtype));
  const KvLayout kind = KvLayout(p.kv_layout);
  if (is_mla(kind) && head_size_v(p) >= p.head_size)
    return std::string(to_string(kind)) + " needs head_size_v < head_size, got " + std::to_string(head_size_v(p)) +
           " and " + std::to_string(p.head_size);
  if (auto e = layout_error(kind, p.num_kv_heads, p.block_size, cache_row(kind, KvTensor::key, p.head_size, head_size_v(p)), eb))
    return e;
  return layout_error(kind, p.num_kv_heads, p.block_size, cache_row(kind, KvTensor::value, p.head_size, head_size_v(p)), eb);
}

/// @pre kv_layouts_error(p) is nullopt
inline KvLayouts kv_layouts(const pacheck_problem& p) {
  const KvLayout kind = KvLayout(p.kv_layout);
  const int32_t eb = dtype_bytes(DType(p.kv_dtype));
  const int32_t D = p.head_size, Dv = head_size_v(p);
  return {make_page_layout(kind, KvTensor::key, p.num_kv_heads, p.block_size, cache_row(kind, KvTensor::key, D, Dv), eb,
                           p.page_stride),
          make_page_layout(kind, KvTensor::value, p.num_kv_heads, p.block_size, cache_row(kind, KvTensor::value, D, Dv),
                           eb, page_stride_v(p)),
          ScaleLayout{ScaleMode(p.scale_mode), p.num_kv_heads, p.block_size, p.num_blocks}};
}

/// Query rows of a launch: T * Hq (the LSE has one float per row).
inline int64_t out_rows(const pacheck_problem& p) { return total_q(p) * p.num_q_heads; }
/// Bytes of the query codes [T, Hq, D] in the q dtype.
inline size_t q_bytes(const pacheck_problem& p) {
  return size_t(out_rows(p) * p.head_size) * size_t(dtype_bytes(DType(p.q_dtype)));
}
/// Bytes of the output codes [T, Hq, Dv] in the q dtype.
inline size_t out_bytes(const pacheck_problem& p) {
  return size_t(out_rows(p) * head_size_v(p)) * size_t(dtype_bytes(DType(p.q_dtype)));
}
/// Bytes of the LSE [T, Hq] (0 when the launch does not ask for it).
inline size_t lse_bytes(const pacheck_problem& p) { return p.want_lse ? size_t(out_rows(p)) * 4 : 0; }

}  // namespace pa
