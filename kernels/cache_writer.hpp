#pragma once
// reshape_and_cache, the writer that fills a paged cache from new K/V rows (vLLM/aiter's
// cache writer): into every layout, unquantised, per-tensor (x / scale) or per-token (scale =
// amax / format max per (token, head), stored at the physical slot), slots < 0 skipped, strided
// pages honoured. The GPU kernel and its host twin share one contract and one rounding.
#include <string>
#include <vector>

#include "inputs/inputs.hpp"

namespace pa {

/// Writes the case's logical K/V rows (decode(code) * scale, as fp32) into a freshly poisoned pool
/// in the case's layout and scale mode. Tokens t with skip(t) get slot -1 and must stay poisoned.
/// Returns an error message, or "" with `out` filled.
std::string gpu_write_cache(const Inputs& in, const std::vector<bool>& skip, PhysicalKv& out);
/// The host twin of the same writer (kernels/host_cache_writer.cpp).
std::string host_write_cache(const Inputs& in, const std::vector<bool>& skip, PhysicalKv& out);

}  // namespace pa
