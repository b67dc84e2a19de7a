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

enum class BuiltinPath : uint8_t { v1, hip, asm_, unified, unified_split, mla, mla_split };
inline constexpr size_t kBuiltinCount = 7;

struct BuiltinSpec {
  BuiltinPath path;
  const char* name;
  const pacheck_capability* capability;
  const pacheck_numerics* numerics;
};
/// v1, hip, asm (the classic call), unified, unified_split (the ragged family) and mla,
/// mla_split (the latent cache), in registration order.
const std::array<BuiltinSpec, kBuiltinCount>& builtin_specs();
/// The path of a descriptor made by builtin_descriptor().
BuiltinPath builtin_path(const pacheck_kernel* self);
/// Paths that read the minor-2 batch (cu_seqlens_q, the CSR table, Dv != D, empty rows).
inline bool reads_ragged_batch(BuiltinPath p) {
  return p == BuiltinPath::unified || p == BuiltinPath::unified_split || p == BuiltinPath::mla ||
         p == BuiltinPath::mla_split;
}
/// Two-stage paths: stage 1 over partition_size splits into the workspace, stage 2 merges.
inline bool splits_context(BuiltinPath p) {
  return p == BuiltinPath::hip || p == BuiltinPath::unified_split || p == BuiltinPath::mla_split;
}
/// Paths that run G padded up to their declared tile (the padded rows computed and discarded).
inline bool pads_gqa(BuiltinPath p) { return p == BuiltinPath::asm_ || p == BuiltinPath::mla_split; }
/// Paths that feed P to the matrix core in the q dtype.
inline bool rounds_p(BuiltinPath p) {
  return p == BuiltinPath::hip || p == BuiltinPath::asm_ || p == BuiltinPath::mla_split;
}

using LaunchFn = int (*)(const pacheck_kernel*, const pacheck_problem*, const pacheck_buffers*, void*);
using LastErrorFn = const char* (*)(const pacheck_kernel*);
/// The descriptor of `spec` on one side (host twin or GPU kernel).
pacheck_kernel builtin_descriptor(const BuiltinSpec& spec, pacheck_memory memory, LaunchFn launch,
                                  LastErrorFn last_error, const char* provenance);

}  // namespace pa
