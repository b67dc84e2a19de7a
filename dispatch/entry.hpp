#pragma once
// The paged_attention_common-style entry point (docs/kernels.md, Dispatcher): one call that plans with
// select_path, checks or sizes the workspace and runs the chosen path on a backend. It lives in
// its own library (pacheck::dispatch_entry) so that the pure selection never depends on kernels.
#include <optional>
#include <vector>

#include "inputs/inputs.hpp"
#include "dispatch/select.hpp"
#include "kernels/kernel.hpp"

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

/// Plans with select_path(dev, in.c, kernels, forced) — `forced` unset falls back to
/// PACHECK_FORCE_PATH (CK's force-kernel switch; an unknown name throws InputError) — checks a
/// caller-provided workspace size (throws InputError when it is smaller than the plan needs),
/// then runs the chosen kernel. A refusal returns Status::NotSupported with Decision::error() as
/// the reason; never aborts. A device kernel without a GPU returns Status::Skipped with the reason.
/// Throws InputError when the scale form the case needs is missing or of the wrong size.
/// `decision_out`, when given, receives the plan (pacheck run reports the chosen and declined paths).
KernelOutput paged_attention_common(const Device& dev, const Inputs& in, const PhysicalKv& shuffled_kv,
                                    const CommonScales& scales, const std::vector<KernelPtr>& kernels,
                                    std::optional<std::string> forced, const int64_t* provided_ws_bytes = nullptr,
                                    Decision* decision_out = nullptr);

}  // namespace pa
