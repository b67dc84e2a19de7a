#pragma once
// The dispatcher: one pure function decides which path runs a case. Launch, workspace sizing and
// "is this supported" all call select_path, so they cannot disagree (ggml's habit).
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dispatch/capability.hpp"

namespace pa {

/// Split-K scratch of the two-stage path, in elements (fp32).
struct Workspace {
  int64_t max_logits = 0;  // [S, q_len, Hq, num_partitions]
  int64_t exp_sums = 0;    // [S, q_len, Hq, num_partitions]
  int64_t tmp_out = 0;     // [S, q_len, Hq, num_partitions, D]
  int64_t bytes() const { return 4 * (max_logits + exp_sums + tmp_out); }
};

struct Decision {
  std::optional<PathId> path;                               // nullopt = nothing supports the case
  std::string why;                                          // the rule that chose it
  std::vector<std::pair<PathId, std::string>> declined;     // every path that declined, and why
  Workspace workspace;                                      // for the chosen path
  std::optional<PathId> forced;                             // the override, when one was given
  std::vector<std::string> invalid;                         // validate(c): non-empty = refused as invalid
  /// Empty when a path was chosen; else one line naming why nothing runs, e.g.
  /// "no path supports this case: v1: kv_layout=shuffled not in {nhd,vllm}; hip: ...; asm: ...".
  std::string error() const;
};

/// Pure: filter by capability, then the aiter heuristic (asm when num_seqs*Hq > 2*CU count or KV
/// is int8; otherwise hip; v1 for what the shuffled paths cannot do). `forced` (API argument or
/// PACHECK_FORCE_PATH, read by the caller) picks that path if it supports the case, else the
/// decision is a refusal naming the forced path's reason.
Decision select_path(const Device& dev, const Case& c, std::optional<PathId> forced = std::nullopt);

/// The workspace path p needs for c (zero for single-pass paths).
Workspace workspace_for(PathId p, const Case& c);

/// The environment override PACHECK_FORCE_PATH (CK's force-kernel switch): unset or empty ->
/// nullopt; "v1", "hip" or "asm" -> that path; anything else throws InputError naming the value.
std::optional<PathId> forced_path_from_env();
/// The same rule applied to a given value (nullptr = unset); testable without touching the env.
std::optional<PathId> forced_path_from_string(const char* value);

}  // namespace pa
