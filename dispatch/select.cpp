#include "dispatch/select.hpp"

#include <algorithm>
#include <cstdlib>

#include "core/text.hpp"

namespace pa {

namespace {

const std::string* reason_of(const Decision& d, const std::string& k) {
  for (const auto& [q, r] : d.declined)
    if (q == k) return &r;
  return nullptr;
}

bool names(const std::vector<std::string>& order, const std::string& name) {
  return std::find(order.begin(), order.end(), name) != order.end();
}

bool busy(const Routing& r, const Device& dev, const Case& c, std::string* rule) {
  const int64_t work = int64_t(c.num_seqs) * c.num_q_heads;
  const int64_t threshold = int64_t(r.threshold_per_cu) * dev.cu_count;
  const std::string numbers = "num_seqs*Hq=" + std::to_string(work) + (work > threshold ? " > " : " <= ") +
                              std::to_string(r.threshold_per_cu) + "*CU=" + std::to_string(threshold) + " (" +
                              dev.name + ")";
  for (DType t : r.busy_kv)
    if (c.kv_dtype == t) {
      *rule = std::string("kv_dtype=") + to_string(t) + " prefers " + (r.busy_order.empty() ? "?" : r.busy_order[0]) +
              " (" + numbers + ")";
      return true;
    }
  const bool b = work > threshold;
  const auto& order = b ? r.busy_order : r.idle_order;
  *rule = numbers + " prefers " + (order.empty() ? "?" : order[0]);
  return b;
}

}  // namespace

Routing aiter_routing() { return Routing{}; }

std::vector<KernelPtr> routable(const std::vector<KernelPtr>& kernels, const Routing& routing) {
  std::vector<KernelPtr> out;  // registration order: refusals list kernels the way they were registered
  for (const KernelPtr& k : kernels)
    if (names(routing.busy_order, k->name()) || names(routing.idle_order, k->name()) ||
        names(routing.mla_order, k->name()))
      out.push_back(k);
  return out;
}

std::string Decision::error() const {
  if (path) return {};
  if (!invalid.empty()) return "invalid case: " + join(invalid, "; ");
  if (forced) {
    const std::string* r = reason_of(*this, *forced);
    return "forced path " + *forced + " does not support this case: " + (r ? *r : std::string("?")) +
           (supported.empty() ? "; no other path supports it either" : "; supported by: " + join(supported, ", "));
  }
  if (declined.empty()) return "no path supports this case: no routable kernel is registered";
  std::vector<std::string> parts;
  for (const auto& [p, r] : declined) parts.push_back(p + ": " + r);
  return "no path supports this case: " + join(parts, "; ");
}

Declines ask_kernels(const Device& dev, const Case& c, const std::vector<KernelPtr>& kernels) {
  Declines d;
  for (const KernelPtr& k : kernels) d[k->name()] = k->decline_reason(c, dev);
  return d;
}

Decision select_path(const Device& dev, const Case& c, const std::vector<KernelPtr>& kernels,
                     std::optional<std::string> forced, const Routing& routing) {
  std::vector<std::string> invalid;
  const std::optional<ValidCase> v = ValidCase::of(c, &invalid);
  if (!v) {
    Decision d;
    d.forced = forced;
    d.invalid = invalid;
    d.why = "refused: the case is invalid (" + join(d.invalid, "; ") + ")";
    return d;
  }
  return select_path(dev, *v, kernels, ask_kernels(dev, c, routable(kernels, routing)), forced, routing);
}

Decision select_path(const Device& dev, const ValidCase& vc, const std::vector<KernelPtr>& kernels,
                     const Declines& declines, std::optional<std::string> forced, const Routing& routing) {
  const Case& c = vc;
  Decision d;
  d.forced = forced;
  // The rule that applies to this case, and the kernels it names (MLA cases and the others are
  // routed apart, so neither lists the other family's refusals).
  std::string rule;
  const bool mla = is_mla(c.kv_layout);
  const std::vector<std::string>& order = mla                           ? routing.mla_order
                                          : busy(routing, dev, c, &rule) ? routing.busy_order
                                                                         : routing.idle_order;
  if (mla)
    rule = "MLA (kv_layout=" + std::string(to_string(c.kv_layout)) + ", Hq=" + std::to_string(c.num_q_heads) +
           ") prefers " + join(routing.mla_order, " then ");
  std::vector<KernelPtr> candidates;
  for (const KernelPtr& k : routable(kernels, routing)) {
    const bool in_mla = names(routing.mla_order, k->name());
    const bool in_classic = names(routing.busy_order, k->name()) || names(routing.idle_order, k->name());
    // A forced path may be any routable kernel (its refusal then names its own reason).
    if (forced || (mla ? in_mla : in_classic)) candidates.push_back(k);
  }
  std::vector<std::optional<std::string>> reason;
  for (const KernelPtr& k : candidates) {
    const auto it = declines.find(k->name());
    reason.push_back(it != declines.end() ? it->second : k->decline_reason(c, dev));
    if (reason.back()) d.declined.emplace_back(k->name(), *reason.back());
  }
  const auto index_of = [&](const std::string& name) -> int {
    for (size_t i = 0; i < candidates.size(); ++i)
      if (candidates[i]->name() == name) return int(i);
    return -1;
  };
  const auto first_supporting = [&]() -> int {
    for (const std::string& name : order)
      if (const int i = index_of(name); i >= 0 && !reason[size_t(i)]) return i;
    return -1;
  };

  int chosen = -1;
  if (forced) {
    const int f = index_of(*forced);
    if (f < 0) {
      d.declined.emplace_back(*forced, "not a registered routable kernel");
      d.why = "refused: forced path " + *forced + " is not registered";
      return d;
    }
    if (reason[size_t(f)]) {
      for (size_t i = 0; i < candidates.size(); ++i)
        if (!reason[i]) d.supported.push_back(candidates[i]->name());
      d.why = "refused: forced path " + *forced + " declines (" + *reason[size_t(f)] + ")";
      return d;
    }
    chosen = f;
    const int h = first_supporting();
    d.why = "forced to " + *forced + " (the heuristic, " + rule + ", would pick " +
            (h >= 0 ? candidates[size_t(h)]->name() : std::string("nothing else")) + ")";
  } else {
    std::vector<std::string> skipped;
    for (const std::string& name : order) {
      const int i = index_of(name);
      if (i < 0) continue;
      if (reason[size_t(i)]) {
        skipped.push_back(name + " declined (" + *reason[size_t(i)] + ")");
        continue;
      }
      chosen = i;
      break;
    }
    if (chosen < 0) {
      d.why = "refused: " + rule + ", but every path declined";
      return d;
    }
    d.why = rule + (skipped.empty() ? "" : "; " + join(skipped, "; ")) + " -> " + candidates[size_t(chosen)]->name();
  }
  const Kernel& k = *candidates[size_t(chosen)];
  d.path = k.name();
  const int32_t tile = padded_gqa(k.info().capability, c.gqa());
  if (tile != c.gqa())
    d.why += " (gqa=" + std::to_string(c.gqa()) + " padded to tile " + std::to_string(tile) + ")";
  d.workspace_bytes = k.workspace_bytes(c);
  return d;
}

std::optional<std::string> forced_path_from_string(const char* value, const std::vector<KernelPtr>& known) {
  if (!value || !*value) return std::nullopt;
  std::vector<std::string> names;
  for (const KernelPtr& k : known) {
    if (k->name() == value) return std::string(value);
    names.push_back(k->name());
  }
  throw InputError(std::string("PACHECK_FORCE_PATH=") + value + ": unknown path (expected " + join(names, ", ") + ")");
}

std::optional<std::string> forced_path_from_env(const std::vector<KernelPtr>& known) {
  return forced_path_from_string(std::getenv("PACHECK_FORCE_PATH"), known);
}

}  // namespace pa
