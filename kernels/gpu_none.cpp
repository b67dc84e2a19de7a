// The GPU entry points of a build without a GPU toolchain (PACHECK_GPU=off or none found): the
// project still builds, and every caller learns why there is no GPU backend.
#include <stdexcept>

#include "kernels/paths.hpp"

namespace pa {

namespace {
constexpr const char* kWhy = "pacheck was built without a GPU toolchain (PACHECK_GPU=off or no nvcc/hipcc found)";
}

bool gpu_available(std::string* why) {
  if (why) *why = kWhy;
  return false;
}
Device gpu_device() { throw std::runtime_error(kWhy); }
std::string gpu_runtime_version() { return "n/a"; }
std::string gpu_driver_version() { return "n/a"; }
PathOutput run_gpu(PathId, const Inputs&, const PhysicalKv&, const Device&) {
  PathOutput r;
  r.status = Status::Skipped;
  r.reason = kWhy;
  return r;
}
PathOutput run_gpu_reference(const Inputs& in, const PhysicalKv& kv) {
  return run_gpu(PathId::v1, in, kv, Device{});
}
std::string gpu_write_cache(const Inputs&, const std::vector<bool>&, PhysicalKv&) { return kWhy; }

}  // namespace pa
