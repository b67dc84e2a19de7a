#pragma once
// Known-bad kernels (test-only): the algorithmic bugs no input or output transformation can
// plant -- a split-K merge without rescaling, an MTP causal mask ignored, padded GQA rows written
// over real heads -- as small, plain kernels behind the same ABI descriptor a plug-in uses. Each
// declares the capability of the built-in path it imitates and carries that path's name, so the
// corpus's expectations address it when it is substituted for its namesake; the mutation test
// requires the corpus to catch every one, on the host and on the GPU.
#include <vector>

#include "pacheck/kernel_abi.h"

namespace pa {

struct KnownBad {
  const char* bug;             // "merge_without_rescale", ...
  const char* incident_class;  // the incident class it reproduces
  const pacheck_kernel* kernel;  // named after the path it imitates ("hip", "asm")
};

/// Host-memory known-bad kernels.
std::vector<KnownBad> known_bad_host();
std::vector<const pacheck_kernel*> known_bad_host_kernels();

/// The same bugs as device-memory kernels (testing/known_bad/known_bad_gpu.hip); empty in a build
/// without a GPU toolchain.
std::vector<KnownBad> known_bad_gpu();
std::vector<const pacheck_kernel*> known_bad_gpu_kernels();

}  // namespace pa
