#pragma once
// The dispatcher: one pure function decides which registered kernel runs a case. Launch,
// workspace sizing and "is this supported" all call select_path, so they cannot disagree (ggml's
// habit). The preference it applies is data (Routing), so the same function models aiter's rule
// over whatever kernels are registered under the names the rule uses.
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kernels/kernel.hpp"

namespace pa {

/// A routing rule as data. aiter's paged_attention_common: the asm kernel wins once the batch
/// fills the machine (num_seqs * Hq > threshold_per_cu * CU count) or the KV is int8 (only asm
/// has int8); below that the HIP split-K kernel keeps more CUs busy; v1 reads the non-shuffled
/// layouts, which the shuffled paths never can, so it only ever takes what they cannot do.
///
/// MLA cases (a latent cache) follow their own rule, as the MLA backends do: the split-K
/// (persistent) kernel takes the native head counts and the counts it pads up to them (its
/// declared GQA tiles: 8 and 12 run as 16, 20 and 24 as 32, 40 as 64); a count it does not declare
/// goes to the plain MLA decode; a count neither declares is refused. A rule that sends a head
/// count to a kernel that does not declare it is what the decision check catches.
struct Routing {
  std::vector<std::string> busy_order = {"asm", "hip", "v1"};  // high concurrency, or busy_kv
  std::vector<std::string> idle_order = {"hip", "asm", "v1"};
  int32_t threshold_per_cu = 2;
  std::vector<DType> busy_kv = {DType::int8};
  std::vector<std::string> mla_order = {"mla_split", "mla"};  // cases with an MLA layout
};
/// The rule pacheck models for every device model (the aiter rule, parameterised by CU count).
Routing aiter_routing();

struct Decision {
  std::optional<std::string> path;                          // nullopt = nothing supports the case
  std::string why;                                          // the rule that chose it
  std::vector<std::pair<std::string, std::string>> declined;// every candidate that declined, and why
  int64_t workspace_bytes = 0;                              // the chosen kernel's scratch
  std::optional<std::string> forced;                        // the override, when one was given
  std::vector<std::string> invalid;                         // validate(c): non-empty = refused as invalid
  std::vector<std::string> supported;                       // a refused forced path: who would take the case
  /// Empty when a kernel was chosen; else one line naming why nothing runs, e.g.
  /// "no path supports this case: v1: kv_layout=shuffled not in {nhd,vllm}; hip: ...; asm: ...".
  std::string error() const;
};

/// The candidates of `routing` among `kernels`, in the rule's order of names (kernels the rule
/// does not name are not routed to).
std::vector<KernelPtr> routable(const std::vector<KernelPtr>& kernels, const Routing& routing);

/// What each kernel says of a case (its decline_reason, nullopt = takes it), keyed by name: asked
/// once per case and kernel and shared by the dispatcher and the testbed.
using Declines = std::map<std::string, std::optional<std::string>>;
Declines ask_kernels(const Device& dev, const Case& c, const std::vector<KernelPtr>& kernels);

/// Pure: filter the routable kernels by their answers in `declines` (every routable kernel must
/// have one), then apply the routing preference. `forced` (API argument or PACHECK_FORCE_PATH,
/// read by the caller) picks that kernel if it supports the case, else the decision is a refusal
/// naming the forced kernel's reason.
Decision select_path(const Device& dev, const ValidCase& c, const std::vector<KernelPtr>& kernels,
                     const Declines& declines, std::optional<std::string> forced = std::nullopt,
                     const Routing& routing = aiter_routing());
/// The same for a case not yet validated: an invalid case is refused naming its problems; the
/// kernels are asked here.
Decision select_path(const Device& dev, const Case& c, const std::vector<KernelPtr>& kernels,
                     std::optional<std::string> forced = std::nullopt, const Routing& routing = aiter_routing());

/// The environment override PACHECK_FORCE_PATH (CK's force-kernel switch): unset or empty ->
/// nullopt; otherwise the name, which must be one of `known` (else InputError naming the value).
std::optional<std::string> forced_path_from_env(const std::vector<KernelPtr>& known);
/// The same rule applied to a given value (nullptr = unset); testable without touching the env.
std::optional<std::string> forced_path_from_string(const char* value, const std::vector<KernelPtr>& known);

}  // namespace pa
