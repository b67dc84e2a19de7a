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
#include <string>
#include <vector>

#include <rapidcheck.h>

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
  std::string level = "ci";
};
/// Limits from PACHECK_PROPERTY_LEVEL (ci | nightly); unknown values throw InputError.
Limits limits_from_env();

/// A context length biased toward the lengths that break kernels: 1, 2, B-1, B, B+1, 2B+-1,
/// 3B+1, partition-1/+0/+1, 2 partitions+1, max_context, long_context, and uniform draws. The
/// boundary lengths form one list in roughly ascending order and a uniform draw sits past its
/// end, so shrinking the one index walks toward shorter boundary lengths (the list keeps its
/// positions when the block or partition shrinks, so "partition+1" stays "partition+1").
/// At least q_len (the context includes the new tokens).
rc::Gen<int32_t> context_len(int32_t block, int32_t partition, int32_t q_len, const Limits& lim);

/// A split-K partition size: whole pages, one page first (the simplest split, so a split bug
/// shrinks to a context of two pages), then two pages, 256 and 512 tokens.
rc::Gen<int32_t> partition_size(int32_t block);

/// Cases inside `k`'s declaration on `dev`: only the declared dtypes (fp8 only in the device's
/// flavour), layouts, scale modes, head and block sizes, GQA ratios, q_len and options. Draws the
/// kernel's own decline_reason refuses (its supports() predicate) are discarded
/// (rc::GenerationFailure, which RapidCheck counts as a discard). `k` must outlive the generator.
rc::Gen<Case> case_in(const Kernel& k, const Device& dev, const Limits& lim);

/// Arbitrary valid cases (generic Case rules only), inside and outside every capability.
rc::Gen<Case> any_case(const Limits& lim);

/// any_case draws that `k` declines on at least one of `devs` (the others are discarded).
/// `k` must outlive the generator.
rc::Gen<Case> declined_case(const Kernel& k, const std::vector<Device>& devs, const Limits& lim);

}  // namespace pa::gen
