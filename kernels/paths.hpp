#pragma once
// The systems under test, as the rest of pacheck sees them: run path P on backend (host twin or
// GPU) over a case's physical inputs. Each path refuses what its capability (dispatch/
// capability.hpp) excludes with Status::NotSupported and a reason, never garbage.
#include <string>
#include <vector>

#include "core/inputs.hpp"
#include "core/metrics.hpp"
#include "dispatch/capability.hpp"

namespace pa {

enum class Backend : uint8_t { host, gpu };
const char* to_string(Backend b);
std::optional<Backend> parse_backend(std::string_view s);

struct PathOutput {
  Status status = Status::Ok;  // Ok = it ran (accuracy is judged elsewhere); NotSupported = refused
  std::string reason;          // why it refused / failed to launch
  std::vector<float> out;      // [S, q_len, Hq, D], the out-dtype values widened to float
  std::vector<float> lse;      // [S, q_len, Hq], natural log, sinks included
  double elapsed_ms = 0;       // kernel time (GPU events) or wall time (host)
};

/// The numerics of path p's implementation (what it rounds, to what), for the tolerance model.
ErrorModel error_model(PathId p, const Case& c);

/// Runs the host twin of p: the same algorithm over the same physical layout, through the same
/// layout, scale and codec headers as the GPU kernel.
PathOutput run_host(PathId p, const Inputs& in, const PhysicalKv& kv, const Device& dev);

/// True when pacheck was built with a GPU toolchain and a GPU is present; else `why` says which.
bool gpu_available(std::string* why = nullptr);
/// The present GPU (name, arch, CU/SM count, native fp8, warp size). @pre gpu_available()
Device gpu_device();
/// GPU runtime and driver versions ("CUDA runtime 13000", "HIP runtime 50422..."), "n/a" when
/// pacheck has no GPU backend, for the report's context block.
std::string gpu_runtime_version();
std::string gpu_driver_version();
/// Runs p's GPU kernel. Buffers carry guard regions that are checked after the launch.
PathOutput run_gpu(PathId p, const Inputs& in, const PhysicalKv& kv, const Device& dev);
/// The plain GPU reference kernel (fp32, one thread per query row, logical token order through
/// the same layout values) on the case: for cases too large for the CPU reference. No capability
/// limits beyond head_size <= 256.
PathOutput run_gpu_reference(const Inputs& in, const PhysicalKv& kv);
/// GPU reshape_and_cache of the case's logical K/V (rows decode(code) * scale, as fp32) into a
/// freshly poisoned pool in the case's layout and scale mode (per-tensor: the case's scale is
/// given; per-token: the writer computes amax / format max). Tokens t with skip(t) get slot -1
/// and must stay poisoned. Returns an error message, or "" with `out` filled.
std::string gpu_write_cache(const Inputs& in, const std::vector<bool>& skip, PhysicalKv& out);
/// The host twin of the same writer (kernels/host_cache_writer.cpp): same contract and rounding.
std::string host_write_cache(const Inputs& in, const std::vector<bool>& skip, PhysicalKv& out);

}  // namespace pa
