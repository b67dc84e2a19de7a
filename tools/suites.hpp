#pragma once
// Built-in suites. Every case is drawn from the suite seed through pa::Rng (Stream::kSuite), so
// `--seed N` re-draws the whole suite and the same seed gives the same cases everywhere. The named
// cases are workloads (model head configs, incidents, refusals); the random ones are drawn by the
// property suite's generator (property/generators.hpp) inside the built-in kernels' declarations,
// with the suites' own workload weights, and every KV dtype a built-in kernel declares (fp8_e5m2
// included) has a case of its own.
// `fp8` is the native fp8 flavour of the device routed for (e4m3fnuz on MI300, e4m3fn on MI355 and
// NVIDIA): fp8 cases use it so that they run there, and a few deliberately use the other flavour,
// which every path must refuse (the MiniMax incident).
#include <cstdint>
#include <string>
#include <vector>

#include "core/case.hpp"

namespace pa::tools {

/// ~45 small cases: every path's capability (layouts, dtypes, scales, GQA, MTP, options), the
/// dispatcher's refusals, the model head configs of docs/kernels.md at short context, and one case
/// per declared KV dtype of each built-in kernel.
std::vector<Case> smoke_suite(uint64_t seed, DType fp8 = DType::fp8_e4m3fnuz);
/// smoke + ~150 random draws inside (and outside) each path's capability, longer contexts.
std::vector<Case> ci_suite(uint64_t seed, DType fp8 = DType::fp8_e4m3fnuz);
/// ci + ~800 more draws, contexts past 4096, large pools (page ids > 65535).
std::vector<Case> nightly_suite(uint64_t seed, DType fp8 = DType::fp8_e4m3fnuz);

inline constexpr uint64_t kDefaultSuiteSeed = 1;
/// "smoke", "ci", "nightly".
const std::vector<std::string>& suite_names();
/// The named suite; throws InputError naming the value when unknown.
std::vector<Case> suite(const std::string& name, uint64_t seed, DType fp8 = DType::fp8_e4m3fnuz);

}  // namespace pa::tools
