#pragma once
// KV-cache page layouts as values (docs/layouts.md). One formula serves all four layouts:
//
//   offset(blk, h, tok, d) = blk * page_stride + h * s_h
//                          + (tok >> t_shift) * s_thi + (tok & t_mask) * s_tlo
//                          + (d   >> d_shift) * s_dhi + (d   & d_mask) * s_dlo
//
// i.e. a CuTe-style (shape : stride) map where `tok` and `d` may be split by x = 16 / sizeof(elem)
// (a power of two, so the split is a shift and a mask: no division on the device). The packer,
// the gather, the host twins and the GPU kernels all call the same PageLayout::operator(), so host
// and device cannot disagree about where an element lives. The paged map is a composition:
// block table (logical token -> physical page) then this page layout.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/host_device.hpp"

namespace pa {

enum class KvLayout : uint8_t { nhd, hnd, vllm, shuffled, mla_joint, mla_split };
inline constexpr int kKvLayoutCount = 6;
enum class KvTensor : uint8_t { key, value };

/// The MLA layouts (docs/layouts.md, "MLA"): one latent KV head per token (H = 1) whose K row is
/// Dv latent values followed by D - Dv rope values, and whose V row is the latent part of K:
///  mla_joint: one cache of [NB, B, D] rows; the V cache holds the same bytes (V = the first Dv
///             of each row, read with the row length D);
///  mla_split: the V cache is ckv [NB, B, Dv] (the latent values: all of V and K's first Dv) and
///             the K cache is kpe [NB, B, D - Dv] (the rope values, the rest of K).
/// Each page is an nhd page of its row length, so one PageLayout per cache serves both.
PA_HOST_DEVICE constexpr bool is_mla(KvLayout l) { return l == KvLayout::mla_joint || l == KvLayout::mla_split; }
/// Elements of one token's row (per head) in the K or the V cache of a layout, for head sizes D
/// (Q and K) and Dv (V): D and Dv, except D for both caches of mla_joint and D - Dv for the K
/// cache of mla_split.
PA_HOST_DEVICE constexpr int32_t cache_row(KvLayout kind, KvTensor t, int32_t D, int32_t Dv) {
  return kind == KvLayout::mla_joint ? D
         : t == KvTensor::value      ? Dv
         : kind == KvLayout::mla_split ? D - Dv
                                       : D;
}
/// Leading elements of a K row that live in the V cache: Dv for mla_split (K's latent part is the
/// ckv cache), else 0. K element d < k_from_v is V cache element d; K element d >= k_from_v is K
/// cache element d - k_from_v.
PA_HOST_DEVICE constexpr int32_t k_from_v(KvLayout kind, int32_t Dv) { return kind == KvLayout::mla_split ? Dv : 0; }

const char* to_string(KvLayout l);
std::optional<KvLayout> parse_layout(std::string_view s);

struct PageLayout {
  KvLayout kind = KvLayout::nhd;
  KvTensor tensor = KvTensor::key;
  int32_t heads = 0, block = 0, head_size = 0;  // H, B, D of one page
  int64_t page_stride = 0;                       // elements between consecutive pages (>= size())
  int64_t s_h = 0, s_thi = 0, s_tlo = 0, s_dhi = 0, s_dlo = 0;
  int32_t t_shift = 0, d_shift = 0;
  uint32_t t_mask = 0, d_mask = 0;

  /// @pre 0 <= h < heads, 0 <= tok < block, 0 <= d < head_size, 0 <= blk < pool size
  /// @post the offset lies in [blk * page_stride, blk * page_stride + size())
  PA_HOST_DEVICE int64_t operator()(int64_t blk, int32_t h, int32_t tok, int32_t d) const {
    return blk * page_stride + h * s_h + int64_t(tok >> t_shift) * s_thi +
           int64_t(uint32_t(tok) & t_mask) * s_tlo + int64_t(d >> d_shift) * s_dhi +
           int64_t(uint32_t(d) & d_mask) * s_dlo;
  }
  PA_HOST_DEVICE int64_t offset(int64_t blk, int32_t h, int32_t tok, int32_t d) const {
    return (*this)(blk, h, tok, d);
  }
  /// Elements in one page's domain (H * B * D); every layout here is dense within a page.
  PA_HOST_DEVICE int64_t size() const { return int64_t(heads) * block * head_size; }
  /// Elements a pool of `num_blocks` pages spans (the buffer size to allocate).
  PA_HOST_DEVICE int64_t cosize(int64_t num_blocks) const {
    return num_blocks <= 0 ? 0 : (num_blocks - 1) * page_stride + size();
  }
  /// Length of the run of consecutive elements along d starting at a multiple of it: the unit a
  /// kernel may load as one vector (x for the split layouts, D for nhd/hnd, 1 for vllm V).
  PA_HOST_DEVICE int32_t contiguous_d() const {
    return s_dlo == 1 ? int32_t(d_mask + 1) : (s_dhi == 1 ? head_size : 1);
  }
  /// CuTe-style "shape:stride" text, e.g. "vllm.K (NB,H,(x,D/x),B):(4096,512,(1,128),8)".
  std::string to_string() const;
};

/// Why a layout cannot be built for these sizes, or nullopt when it can.
std::optional<std::string> layout_error(KvLayout kind, int32_t heads, int32_t block,
                                        int32_t head_size, int32_t elem_bytes);

/// Builds the K or V page layout. page_stride == 0 means dense (H*B*D).
/// @pre layout_error(...) is nullopt and page_stride is 0 or >= H*B*D.
PageLayout make_page_layout(KvLayout kind, KvTensor tensor, int32_t heads, int32_t block,
                            int32_t head_size, int32_t elem_bytes, int64_t page_stride = 0);

/// How the logical page map (token t of sequence s -> physical page) is handed to a kernel
/// (docs/layouts.md, "Page tables"): each form is a codec of the same map.
///  padded: block_tables[S, max_blocks_per_seq], entries past a sequence's pages are garbage
///  csr:    kv_indptr[S + 1], kv_indices[kv_indptr[S]] (page ids, sequences concatenated; entries
///          past kv_indptr[S] are garbage) and kv_last_page_len[S] (tokens in the last page, 1..B;
///          0 for an empty sequence), FlashInfer's and aiter's MLA/pa_ps form
enum class PageTable : uint8_t { padded, csr };
inline constexpr int kPageTableCount = 2;
const char* to_string(PageTable t);
std::optional<PageTable> parse_page_table(std::string_view s);

/// What a table holds where no page is (the padded table's entries past a sequence's pages, the
/// CSR table's entries past kv_indptr[S]): a kernel must never read them. garbage: free pages
/// (reading one gives poison); minus_one: -1 (out of the pool, a fault); zero: page 0, which may
/// be another sequence's real page (reading it gives plausible wrong values).
enum class TablePad : uint8_t { garbage, minus_one, zero };
const char* to_string(TablePad t);
std::optional<TablePad> parse_table_pad(std::string_view s);

/// The CSR page table read the one way: the page of token t of sequence s, and the context a
/// kernel derives from the encoding (full pages plus the last page's length).
struct CsrTable {
  const int32_t* indptr = nullptr;         // [S + 1]
  const int32_t* indices = nullptr;        // [indptr[S]]
  const int32_t* last_page_len = nullptr;  // [S]
  int32_t block = 0;

  PA_HOST_DEVICE int32_t pages(int32_t s) const { return indptr[s + 1] - indptr[s]; }
  PA_HOST_DEVICE int32_t context(int32_t s) const {
    const int32_t n = pages(s);
    return n == 0 ? 0 : (n - 1) * block + last_page_len[s];
  }
  /// @pre t < context(s)
  PA_HOST_DEVICE int32_t block_of(int32_t s, int32_t t) const { return indices[indptr[s] + t / block]; }
};

/// Block table composed with a page layout: logical (token t of sequence s, head, d) -> element.
struct PagedLayout {
  PageLayout page;
  const int32_t* block_tables = nullptr;  // [num_seqs, max_blocks_per_seq]
  int32_t max_blocks_per_seq = 0;

  /// The physical page holding logical token t of sequence s.
  /// @pre t < the sequence's context length (entries past it are garbage)
  PA_HOST_DEVICE int32_t block_of(int32_t s, int32_t t) const {
    return block_tables[int64_t(s) * max_blocks_per_seq + t / page.block];
  }
  PA_HOST_DEVICE int32_t slot_of(int32_t t) const { return t % page.block; }
  PA_HOST_DEVICE int64_t operator()(int32_t s, int32_t t, int32_t h, int32_t d) const {
    return page(block_of(s, t), h, slot_of(t), d);
  }
};

// ---- scale layouts ------------------------------------------------------------------------------

enum class ScaleMode : uint8_t {
  none,                   // scale 1
  per_tensor,             // [1]
  per_head,               // [Hkv]
  per_token_block_major,  // [NB, Hkv, B]  (aiter asm's layout)
  per_token_head_major,   // [Hkv, NB * B]
};
const char* to_string(ScaleMode m);
std::optional<ScaleMode> parse_scale_mode(std::string_view s);
PA_HOST_DEVICE constexpr bool is_per_token(ScaleMode m) {
  return m == ScaleMode::per_token_block_major || m == ScaleMode::per_token_head_major;
}

/// Where the scale of physical slot (blk, h, tok) lives. Per-token scales follow the *physical*
/// slot (page, token-in-page), never the logical token index: that confusion was an incident.
struct ScaleLayout {
  ScaleMode mode = ScaleMode::none;
  int32_t heads = 0, block = 0;
  int64_t num_blocks = 0;

  PA_HOST_DEVICE int64_t operator()(int64_t blk, int32_t h, int32_t tok) const {
    switch (mode) {
      case ScaleMode::none:
      case ScaleMode::per_tensor: return 0;
      case ScaleMode::per_head: return h;
      case ScaleMode::per_token_block_major: return (blk * heads + h) * block + tok;
      case ScaleMode::per_token_head_major: return int64_t(h) * num_blocks * block + blk * block + tok;
    }
    return 0;
  }
  /// Number of scale elements to allocate.
  PA_HOST_DEVICE int64_t size() const {
    switch (mode) {
      case ScaleMode::none:
      case ScaleMode::per_tensor: return 1;
      case ScaleMode::per_head: return heads;
      default: return num_blocks * heads * block;
    }
  }
  std::string to_string() const;
};

}  // namespace pa
