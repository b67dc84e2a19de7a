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

/// Why the problem's caches cannot be laid out (a size the layout cannot split), or nullopt.
inline std::optional<std::string> kv_layouts_error(const pacheck_problem& p) {
  return layout_error(KvLayout(p.kv_layout), p.num_kv_heads, p.block_size, p.head_size,
                      dtype_bytes(DType(p.kv_dtype)));
}

/// @pre kv_layouts_error(p) is nullopt
inline KvLayouts kv_layouts(const pacheck_problem& p) {
  const KvLayout kind = KvLayout(p.kv_layout);
  const int32_t eb = dtype_bytes(DType(p.kv_dtype));
  return {make_page_layout(kind, KvTensor::key, p.num_kv_heads, p.block_size, p.head_size, eb, p.page_stride),
          make_page_layout(kind, KvTensor::value, p.num_kv_heads, p.block_size, p.head_size, eb, p.page_stride),
          ScaleLayout{ScaleMode(p.scale_mode), p.num_kv_heads, p.block_size, p.num_blocks}};
}

/// Query rows of a launch: S * q_len * Hq (the LSE has one float per row).
inline int64_t out_rows(const pacheck_problem& p) { return int64_t(p.num_seqs) * p.q_len * p.num_q_heads; }
/// Bytes of the output codes [S, q_len, Hq, D] in the q dtype.
inline size_t out_bytes(const pacheck_problem& p) {
  return size_t(out_rows(p) * p.head_size) * size_t(dtype_bytes(DType(p.q_dtype)));
}
/// Bytes of the LSE [S, q_len, Hq] (0 when the launch does not ask for it).
inline size_t lse_bytes(const pacheck_problem& p) { return p.want_lse ? size_t(out_rows(p)) * 4 : 0; }

}  // namespace pa
