#pragma once
// RapidCheck generators of Cases, shared by every suite that draws cases. Two families:
//   case_in(kernel, device)  draws only inside what a kernel declares (its Capability) and keeps
//                            only draws its own decline_reason accepts, so a failure is a real
//                            bug of that kernel, not a refusal;
//   any_case()               draws across and beyond every capability, for refusals and the
//                            dispatcher.
// Every choice is an index drawn with inRange at full size, and each list of choices is ordered
// simplest first, so a failure shrinks toward few sequences, short contexts, small heads and no
// options (RapidCheck's element / elementOf do not shrink at all). Inputs come from the case's
// seed (inputs/inputs.hpp), which makes a shrunk case a complete, replayable description.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <rapidcheck.h>

#include "core/capability.hpp"
#include "core/case.hpp"
#include "core/device.hpp"
#include "kernels/kernel.hpp"

namespace pa::gen {

/// Size limits of generated cases. `ci` keeps the whole property suite within a minute or two on
/// two cores; `nightly` (PACHECK_PROPERTY_LEVEL=nightly) draws far more and far larger cases.
struct Limits {
  int32_t max_seqs = 3;
  int32_t max_context = 600;     // typical draws; long_context is drawn on top, rarely
  int32_t long_context = 4097;   // one element past 4096: the partition/length edge of real runs
  int32_t max_q_heads = 16;
  bool big_pools = true;         // sometimes pools with page ids > 65535 (tiny pages only)
  int32_t max_extend = 48;       // longest extend row (a prefill chunk) of a ragged batch
  std::string level = "ci";
};
/// Limits from PACHECK_PROPERTY_LEVEL (ci | nightly); unknown values throw InputError.
Limits limits_from_env();

/// How a workload leans: the percent of draws (0-100) that take each feature, where the kernel
/// declares it. The property suite uses the defaults; the built-in suites (tools/suites.cpp) and
/// `pacheck mutate` set their own. Every choice still shrinks toward the feature off. (How often a
/// context goes past max_context is Limits::long_context's: one boundary slot of the context
/// generator.)
struct Weights {
  int mtp = 50;           // q_len > 1
  int gqa = 80;           // G = Hq / Hkv > 1
  int options = 50;       // each declared option on its own: custom scale, window, soft-cap, ALiBi, sinks
  int eight_bit = -1;     // an 8-bit KV cache; -1: every declared KV dtype equally likely
  int llm_values = 25;    // LLM-like values (Case::values outliers)
  int padded_pages = 50;  // page padding, where the kernel takes strided pages
  int big_pool = 5;       // a pool with page ids > 65535 (tiny pages, and Limits::big_pools only)
  // The ragged family (ABI minor 2), each where the kernel declares it:
  int ragged = 50;        // a ragged batch (per-sequence q_len: decode, MTP and extend rows)
  int head_size_v = 30;   // Dv != D
  int empty_rows = 25;    // one sequence of context 0 (an empty slot of a padded batch)
  int csr = 50;           // the CSR page table
  int extremes = 20;      // Values::extremes (zero and huge query rows)
  int table_pads = 40;    // table pads -1 or 0 instead of free pages
  int32_t max_head = 0;   // > 0: head sizes up to this when the kernel declares any (cost)
  int32_t max_block = 0;  // > 0: page sizes up to this when the kernel declares any (cost)

  /// The defaults with these four features at these percentages.
  static Weights leaning(int options, int padded_pages, int mtp, int llm_values) {
    Weights w;
    w.options = options;
    w.padded_pages = padded_pages;
    w.mtp = mtp;
    w.llm_values = llm_values;
    return w;
  }
};

/// A context length biased toward the lengths that break kernels: 1, 2, B-1, B, B+1, 2B+-1,
/// 3B+1, partition-1/+0/+1, 2 partitions+1, max_context, long_context, and uniform draws. The
/// boundary lengths form one list in roughly ascending order and a uniform draw sits past its
/// end, so shrinking the one index walks toward shorter boundary lengths (the list keeps its
/// positions when the block or partition shrinks, so "partition+1" stays "partition+1").
/// `partition` is where the kernel splits: with `fixed_partition` it is the kernel's declared
/// fixed split (Capability::fixed_partition), and 2 partitions-1 and 2 partitions join the list.
/// At least q_len (the context includes the new tokens).
rc::Gen<int32_t> context_len(int32_t block, int32_t partition, int32_t q_len, const Limits& lim,
                             bool fixed_partition = false);

/// A split-K partition size: whole pages, one page first (the simplest split, so a split bug
/// shrinks to a context of two pages), then two pages, 256 and 512 tokens.
rc::Gen<int32_t> partition_size(int32_t block);

/// The KV dtypes of `cap` that can be drawn for `dev`: every declared cache dtype except an e4m3
/// flavour other than the device's own (which decline_reason refuses on purpose); fp8_e5m2 is no
/// e4m3 flavour and is drawn wherever it is declared.
std::vector<DType> drawable_kv_dtypes(const Capability& cap, const Device& dev);

/// The smallest page padding >= `pad` that makes page_stride = Hkv*B*D + pad a multiple of
/// `align` (Capability::page_stride_align).
int64_t aligned_page_pad(int64_t dense_stride, int64_t pad, int32_t align);

/// Cases inside `k`'s declaration on `dev`: only the declared dtypes (e4m3 only in the device's
/// flavour), layouts, scale modes, head and block sizes, GQA ratios, q_len and options; boundary
/// contexts aimed at the kernel's fixed partition when it declares one; page padding that keeps the
/// declared page-stride alignment. `kv`, when given, fixes the KV dtype (a suite covering every
/// declared dtype). Draws the kernel's own decline_reason refuses (its supports() predicate) are
/// discarded (rc::GenerationFailure, which RapidCheck counts as a discard). `k` must outlive the
/// generator.
rc::Gen<Case> case_in(const Kernel& k, const Device& dev, const Limits& lim, const Weights& w = {},
                      std::optional<DType> kv = std::nullopt);

/// Arbitrary valid cases (generic Case rules only), inside and outside every capability.
rc::Gen<Case> any_case(const Limits& lim);

/// any_case draws that `k` declines on at least one of `devs` (the others are discarded).
/// `k` must outlive the generator.
rc::Gen<Case> declined_case(const Kernel& k, const std::vector<Device>& devs, const Limits& lim);

/// One value of `g` drawn deterministically from `seed`, outside any property (the suites and
/// `pacheck mutate`); a draw the generator discards is drawn again from the next seed of the same
/// sequence, so the result depends on `seed` alone. Gives up (InputError naming `what`) after
/// 10000 discards in a row.
Case sample(const rc::Gen<Case>& g, uint64_t seed, const std::string& what);

}  // namespace pa::gen
