// The GPU known-bad kernels of a build without a GPU toolchain: none (the GPU mutation test
// skips itself with the reason gpu_available() gives).
#include "testing/known_bad/known_bad.hpp"

namespace pa {

std::vector<KnownBad> known_bad_gpu() { return {}; }
std::vector<const pacheck_kernel*> known_bad_gpu_kernels() { return {}; }

}  // namespace pa
