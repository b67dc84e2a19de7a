#pragma once
// RapidCheck generators of Cases (design §6). Two families:
//   case_in(path, device)  draws only inside a path's capability (dispatch/capability.hpp), so a
//                          failure is a real bug of that path, not a refusal;
//   any_case()             draws across and beyond every capability, for the dispatcher.
// Every field is drawn with gen::exec so RapidCheck shrinks each one separately, and each list of
// choices is ordered smallest first, so a failure shrinks toward few sequences, short contexts,
// small heads and no options. Inputs come from the case's seed (core/inputs.hpp), which makes a
// shrunk case a complete, replayable description.
#include <cstdint>
#include <string>

#include <rapidcheck.h>

#include "core/case.hpp"
#include "dispatch/capability.hpp"

namespace pa::gen {

/// Size limits of generated cases. `ci` keeps the whole property suite within minutes on two
/// cores; `nightly` (PACHECK_PROPERTY_LEVEL=nightly) draws far more and far larger cases.
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

/// A context length biased toward the boundaries that break kernels: 1, B-1, B, B+1, 2B+-1,
/// partition-1/+0/+1, long_context, and uniform draws in between.
rc::Gen<int32_t> context_len(int32_t block, int32_t partition, int32_t q_len, const Limits& lim);

/// Cases inside `p`'s capability on `dev` (decline_reason(p, case, dev) is nullopt).
rc::Gen<Case> case_in(PathId p, const Device& dev, const Limits& lim);

/// Arbitrary valid cases (generic Case rules only), inside and outside every capability.
rc::Gen<Case> any_case(const Limits& lim);

}  // namespace pa::gen
