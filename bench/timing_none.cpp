// Device timing in a build without a GPU toolchain: every caller learns why there is none.
#include "bench/timing.hpp"

namespace pa {

namespace {
constexpr const char* kWhy = "pacheck was built without a GPU toolchain (PACHECK_GPU=off or no nvcc/hipcc found)";
}

Timing time_on_device(const pacheck_kernel&, const KernelCall&, const TimingOptions&) {
  Timing t;
  t.error = kWhy;
  return t;
}
double stream_read_gbs(size_t, const TimingOptions&, std::string* error) {
  if (error) *error = kWhy;
  return 0;
}

}  // namespace pa
