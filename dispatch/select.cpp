#include "dispatch/select.hpp"

#include <cstdlib>

#include "core/mutants.hpp"

namespace pa {

namespace {

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

// The aiter rule (paged_attention_common): the asm kernel wins once the batch fills the machine,
// i.e. more (sequence, query head) work items than two per CU; below that the HIP split-K kernel
// keeps more CUs busy. int8 KV has only the asm kernel. v1 is last: it reads the non-shuffled
// layouts, which the shuffled paths never can, so it only ever takes what they cannot do.
// Returns the preference order and the sentence stating the rule with the case's numbers.
std::vector<PathId> preference(const Device& dev, const Case& c, std::string* rule) {
  const int64_t work = int64_t(c.num_seqs) * c.num_q_heads;
  const int64_t threshold = 2 * int64_t(dev.cu_count);
  const std::string numbers = "num_seqs*Hq=" + std::to_string(work) +
                              (work > threshold ? " > " : " <= ") + "2*CU=" +
                              std::to_string(threshold) + " (" + dev.name + ")";
  if (c.kv_dtype == DType::int8) {
    *rule = "kv_dtype=int8 prefers asm (" + numbers + ")";
    return {PathId::asm_, PathId::hip, PathId::v1};
  }
  if (work > threshold) {
    *rule = numbers + " prefers asm";
    return {PathId::asm_, PathId::hip, PathId::v1};
  }
  *rule = numbers + " prefers hip";
  return {PathId::hip, PathId::asm_, PathId::v1};
}

const std::string* reason_of(const Decision& d, PathId p) {
  for (const auto& [q, r] : d.declined)
    if (q == p) return &r;
  return nullptr;
}

}  // namespace

std::string Decision::error() const {
  if (path) return {};
  if (!invalid.empty()) return "invalid case: " + join(invalid, "; ");
  if (forced) {
    const std::string* r = reason_of(*this, *forced);
    std::string s = std::string("forced path ") + to_string(*forced) +
                    " does not support this case: " + (r ? *r : std::string("?"));
    std::vector<std::string> others;
    for (PathId p : kAllPaths)
      if (!reason_of(*this, p)) others.push_back(to_string(p));
    s += others.empty() ? "; no other path supports it either"
                        : "; supported by: " + join(others, ", ");
    return s;
  }
  std::vector<std::string> parts;
  for (const auto& [p, r] : declined) parts.push_back(std::string(to_string(p)) + ": " + r);
  return "no path supports this case: " + join(parts, "; ");
}

Workspace workspace_for(PathId p, const Case& c) {
  Workspace w;
  if (p != PathId::hip || c.partition_size < 1) return w;
  // Stage 1 of the split-K path writes one (max, sum, partial O) per partition of the longest
  // context; stage 2 merges them. Shorter sequences leave trailing partitions unused.
  const int64_t parts = (int64_t(c.max_context()) + c.partition_size - 1) / c.partition_size;
  const int64_t rows = int64_t(c.num_seqs) * c.q_len * c.num_q_heads * parts;
  w.max_logits = rows;
  w.exp_sums = rows;
  w.tmp_out = rows * c.head_size;
  return w;
}

Decision select_path(const Device& dev, const Case& c, std::optional<PathId> forced) {
  Decision d;
  d.forced = forced;
  d.invalid = validate(c);
  if (!d.invalid.empty()) {
    d.why = "refused: the case is invalid (" + join(d.invalid, "; ") + ")";
    return d;
  }
  std::optional<std::string> reason[3];
  for (PathId p : kAllPaths) {
    reason[int(p)] = decline_reason(p, c, dev);
    // Planted routing bugs (test-only build): asm's head-size or block-size limit not consulted.
    if ((PA_MUTANT(head_size_routing) || PA_MUTANT(block_size_routing)) && p == PathId::asm_ && reason[int(p)]) {
      Case relaxed = c;
      if (PA_MUTANT(head_size_routing)) relaxed.head_size = 128;
      if (PA_MUTANT(block_size_routing)) relaxed.block_size = 16;
      if (!decline_reason(p, relaxed, dev)) reason[int(p)].reset();
    }
    if (reason[int(p)]) d.declined.emplace_back(p, *reason[int(p)]);
  }
  std::string rule;
  const std::vector<PathId> order = preference(dev, c, &rule);

  if (forced) {
    if (reason[int(*forced)]) {
      d.why = std::string("refused: forced path ") + to_string(*forced) + " declines (" +
              *reason[int(*forced)] + ")";
      return d;
    }
    d.path = forced;
    std::string heuristic = "nothing else";
    for (PathId p : order)
      if (!reason[int(p)]) {
        heuristic = to_string(p);
        break;
      }
    d.why = std::string("forced to ") + to_string(*forced) + " (the heuristic, " + rule +
            ", would pick " + heuristic + ")";
  } else {
    std::vector<std::string> skipped;
    for (PathId p : order) {
      if (reason[int(p)]) {
        skipped.push_back(std::string(to_string(p)) + " declined (" + *reason[int(p)] + ")");
        continue;
      }
      d.path = p;
      break;
    }
    if (!d.path) {
      d.why = "refused: " + rule + ", but every path declined";
      return d;
    }
    d.why = rule + (skipped.empty() ? "" : "; " + join(skipped, "; ")) + " -> " + to_string(*d.path);
  }
  const Capability& cap = capability(*d.path);
  if (padded_gqa(cap, c.gqa()) != c.gqa())
    d.why += " (gqa=" + std::to_string(c.gqa()) + " padded to tile " +
             std::to_string(padded_gqa(cap, c.gqa())) + ")";
  d.workspace = workspace_for(*d.path, c);
  return d;
}

std::optional<PathId> forced_path_from_string(const char* value) {
  if (!value || !*value) return std::nullopt;
  if (auto p = parse_path(value)) return p;
  throw InputError(std::string("PACHECK_FORCE_PATH=") + value +
                   ": unknown path (expected v1, hip or asm)");
}

std::optional<PathId> forced_path_from_env() {
  return forced_path_from_string(std::getenv("PACHECK_FORCE_PATH"));
}

}  // namespace pa
