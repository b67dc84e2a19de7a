// The GPU entry points of a build without a GPU toolchain (PACHECK_GPU=off or none found): the
// project still builds, and every caller learns why there is no GPU backend.
#include <stdexcept>

#include "kernels/cache_writer.hpp"
#include "kernels/crossing.hpp"

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
std::string gpu_compiler_version() { return "n/a"; }
std::vector<const pacheck_kernel*> gpu_kernel_descriptors() { return {}; }
Crossed cross_device(const pacheck_kernel&, const KernelCall&, void*, float*, bool) {
  Crossed x;
  x.skipped = kWhy;
  return x;
}
Crossed cross_device_graph(const pacheck_kernel&, const KernelCall&, const KernelCall&, void*, float*, void*) {
  Crossed x;
  x.skipped = kWhy;
  return x;
}
int plan_device(const pacheck_kernel&, const pacheck_problem&, const PlanBatch&, PlanPtr*, std::string* error) {
  *error = kWhy;
  return PACHECK_ERROR;
}
Crossed cross_device_shared(const KernelCall&, uint64_t, const SharedLaunch&, void*, float*) {
  Crossed x;
  x.skipped = kWhy;
  return x;
}
std::string gpu_write_cache(const Inputs&, const std::vector<bool>&, PhysicalKv&) { return kWhy; }

}  // namespace pa
