#pragma once
// The paged_attention_common-style entry point (design §4, Dispatcher): one call that plans with
// select_path, checks or sizes the workspace and runs the chosen path on a backend. It lives in
// its own library (pacheck::dispatch_entry) so that the pure selection never depends on kernels.
#include <optional>
#include <vector>

#include "core/inputs.hpp"
#include "dispatch/select.hpp"
#include "kernels/paths.hpp"

namespace pa {

/// Both scale forms of a quantized cache, as aiter's entry receives them: the per-tensor
/// checkpoint scales (hip's form) and the per-token scales [NB, Hkv, B] (asm's form). The entry
/// hands the chosen path the form the cache was *written* with (the case's kv_scale), never the
/// other one: "which answer you got depended on batch size" was exactly that mix-up.
struct CommonScales {
  std::optional<float> k_scale, v_scale;  // per-tensor; nullopt = not given
  std::vector<float> k_token, v_token;    // [NB, Hkv, B] block-major; empty = not given
};

/// Both forms derived from a packed cache (per-tensor -> also broadcast to per-token; per-token ->
/// re-laid block-major, no per-tensor form unless the mode is none/per_tensor).
CommonScales common_scales(const PhysicalKv& kv);

/// Plans with select_path(dev, in.c, forced) — `forced` unset falls back to PACHECK_FORCE_PATH
/// (CK's force-kernel switch; an unknown name throws InputError) — validates `provided_ws` (throws InputError when a
/// buffer is smaller than the plan needs) or sizes one, then runs run_host / run_gpu.
/// A refusal returns Status::NotSupported with Decision::error() as the reason; never aborts.
/// A requested GPU backend that is not available returns Status::Skipped with the reason.
/// Throws InputError when the scale form the case needs is missing or of the wrong size.
/// `decision_out`, when given, receives the plan (pacheck run reports the chosen and declined paths).
PathOutput paged_attention_common(const Device& dev, const Inputs& in, const PhysicalKv& shuffled_kv,
                                  const CommonScales& scales, Backend backend,
                                  std::optional<PathId> forced, Workspace* provided_ws = nullptr,
                                  Decision* decision_out = nullptr);

/// nullopt when `ws` holds at least `need` in each buffer, else a sentence naming the short one.
std::optional<std::string> workspace_shortfall(const Workspace& ws, const Workspace& need);

}  // namespace pa
