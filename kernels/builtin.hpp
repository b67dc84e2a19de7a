#pragma once
// pacheck's own kernels as descriptors: one factory for the host twins (kernels/host_twins.cpp)
// and the GPU kernels (kernels/builtin_gpu.hip). A path has one name, one declaration, one
// numerics and one workspace function on both sides; only the memory kind, the launch and the
// provenance differ, so a twin can never claim more (or size its scratch differently) than its
// kernel.
#include <array>
#include <cstdint>

#include "kernels/builtin_capability.hpp"
#include "pacheck/kernel_abi.h"

namespace pa {

enum class BuiltinPath : uint8_t { v1, hip, asm_, unified, unified_split };
inline constexpr size_t kBuiltinCount = 5;

struct BuiltinSpec {
  BuiltinPath path;
  const char* name;
  const pacheck_capability* capability;
  const pacheck_numerics* numerics;
};
/// v1, hip, asm (the classic call) and unified, unified_split (the ragged family), in
/// registration order.
const std::array<BuiltinSpec, kBuiltinCount>& builtin_specs();
/// The path of a descriptor made by builtin_descriptor().
BuiltinPath builtin_path(const pacheck_kernel* self);

using LaunchFn = int (*)(const pacheck_kernel*, const pacheck_problem*, const pacheck_buffers*, void*);
using LastErrorFn = const char* (*)(const pacheck_kernel*);
/// The descriptor of `spec` on one side (host twin or GPU kernel).
pacheck_kernel builtin_descriptor(const BuiltinSpec& spec, pacheck_memory memory, LaunchFn launch,
                                  LastErrorFn last_error, const char* provenance);

}  // namespace pa
