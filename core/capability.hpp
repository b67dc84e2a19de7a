#pragma once
// What a kernel declares it can do, as a C++ value, in the vocabulary of the kernel ABI
// (include/pacheck/kernel_abi.h). Every kernel -- built-in or plug-in -- is described by one
// Capability and one Numerics parsed from its descriptor, and every question "does kernel K take
// case C" goes through decline_reason(), so the dispatcher, the testbed and the generators cannot
// disagree about it.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/case.hpp"
#include "core/device.hpp"
#include "core/metrics.hpp"
#include "pacheck/kernel_abi.h"

namespace pa {

template <class E>
constexpr uint32_t bit(E e) { return 1u << unsigned(e); }

struct Capability {
  uint32_t q_dtypes = 0;    // bit(DType): query and output
  uint32_t kv_dtypes = 0;   // bit(DType)
  uint32_t layouts = 0;     // bit(KvLayout)
  uint32_t scales = 0;      // bit(ScaleMode)
  std::vector<int32_t> head_sizes;
  std::vector<int32_t> block_sizes;
  int32_t max_gqa = 0;                 // G = Hq / Hkv; kNoGqaLimit when the ABI says no limit
  std::vector<int32_t> gqa_tiles;      // non-empty: G is padded up to the smallest tile >= G
  int32_t max_q_len = 1;
  int32_t max_q_len_x_gqa = 0;         // 0 = no limit
  int32_t max_context = 0;             // 0 = no limit
  bool strided_pages = false;          // page_stride above the dense page
  bool partition_multiple_of_block = false;  // two-stage kernels split at whole pages
  bool needs_token_scales_for_8bit = false;  // 8-bit KV only with per-token scales
  bool scales_for_8bit_only = false;   // 16-bit caches are read without scales (vLLM's "auto"):
                                       // such cases carry scale mode none
  int32_t fixed_partition = 0;         // > 0: split-K at this many tokens whatever the case says
                                       // (vLLM v2: 512); 0 = the case's partition_size
  int32_t page_stride_align = 1;       // page_stride (elements) must be a multiple of this
  bool custom_softmax_scale = false, sliding_window = false, logit_softcap = false,
       alibi = false, sinks = false, lse = false;
  // ABI minor 2 (the defaults are what an earlier minor could express).
  bool ragged = false;                 // per-sequence q_len (cu_seqlens_q)
  bool empty_rows = false;             // sequences of context 0
  uint32_t page_tables = bit(PageTable::padded);  // bit(PageTable) the kernel reads
  std::vector<int32_t> head_sizes_v;   // Dv != D the kernel takes (with any D it takes)
  bool lse_base2 = false;              // writes log2-sum-exp
  // ABI minor 3: the call around the launch.
  bool plan = false;                   // has a plan step (descriptor plan / launch_planned)
  bool plan_covers_shorter = false;    // a plan serves the planned batch with shorter contexts
  bool graph_safe = false;             // device launches may be captured and replayed in a graph
  bool deterministic = false;          // the same inputs give the same bits
};

/// The latent (MLA) layouts, as a mask of bit(KvLayout) (the ABI's ids: the same bits).
inline constexpr uint32_t kLatentLayouts = bit(KvLayout::mla_joint) | bit(KvLayout::mla_split);
/// The declaration reads some latent (MLA) cache.
inline bool reads_latent(const Capability& c) { return (c.layouts & kLatentLayouts) != 0; }
/// The declaration reads latent (MLA) caches and nothing else: no V layout of its own, one KV
/// head by definition.
inline bool latent_only(const Capability& c) { return reads_latent(c) && !(c.layouts & ~kLatentLayouts); }

/// max_gqa of a kernel declaring no GQA limit (ABI max_gqa = PACHECK_NO_LIMIT): large enough
/// for any head count, small enough that G arithmetic never overflows.
inline constexpr int32_t kNoGqaLimit = 1 << 30;

/// What a kernel rounds, and to what (ABI pacheck_numerics): DType values, or nullopt = kept in
/// fp32, or `as_q` = the case's q dtype.
struct RoundTo {
  std::optional<DType> to;
  bool as_q = false;
};
/// One set of roundings (one pacheck_numerics).
struct Roundings {
  RoundTo p, qk, partial;
  RoundTo v, pv;  // ABI minor 1: V after dequantization; P.V products and running sums
};
/// A kernel's numerics: `base` for every KV dtype, except those an entry of `by_kv` names (the
/// first entry whose mask holds the case's KV dtype governs it).
struct Numerics {
  Roundings base;
  struct ForKv {
    uint32_t kv_dtypes = 0;  // bit(DType)
    Roundings r;
  };
  std::vector<ForKv> by_kv;
  const Roundings& for_kv(DType kv) const;
};

/// The tolerance model's view of a kernel's numerics on a case (the roundings of its KV dtype).
ErrorModel error_model(const Numerics& n, const Case& c);

/// nullopt when the declaration admits `c` on `dev`, else one sentence naming the field, the value
/// and what is supported ("head_size=256 not in {128}"). An fp8 cache whose flavour is not the
/// device's native one is refused first (decoding it would be silently wrong by factors of 2).
std::optional<std::string> decline_reason(const Capability& cap, const Case& c, const Device& dev);

/// The GQA tile a kernel runs G in (G itself when it declares no tiles).
int32_t padded_gqa(const Capability& cap, int32_t gqa);

/// Parses and checks an ABI declaration. Throws InputError naming `where` and the field for an
/// unknown dtype / layout / scale id, a struct_size too small for the fields read, or a
/// declaration that admits nothing (no head sizes, ...).
Capability capability_from_abi(const pacheck_capability* c, const std::string& where);
/// `n` is the descriptor's numerics (NULL = everything fp32), `by_kv[0..count)` its
/// numerics_by_kv (ABI minor 1; NULL when absent).
Numerics numerics_from_abi(const pacheck_numerics* n, const std::string& where,
                           const pacheck_numerics* const* by_kv = nullptr, uint32_t count = 0);
/// Throws InputError naming `where` and the first field that admits no case at all.
void check_admits_something(const Capability& cap, const std::string& where);

/// The ABI problem of a case (every field a kernel needs; softmax_scale always explicit).
pacheck_problem problem_of(const Case& c);

/// One line per declared field, for `pacheck kernels`.
std::vector<std::pair<std::string, std::string>> describe(const Capability& cap);
std::string describe(const Numerics& n);

}  // namespace pa
