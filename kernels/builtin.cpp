#include "kernels/builtin.hpp"

#include "kernels/common/split_plan.hpp"

namespace pa {

const std::array<BuiltinSpec, kBuiltinCount>& builtin_specs() {
  static const std::array<BuiltinSpec, kBuiltinCount> kSpecs = {{
      {BuiltinPath::v1, "v1", &builtin::kV1Capability, &builtin::kV1Numerics},
      {BuiltinPath::hip, "hip", &builtin::kHipCapability, &builtin::kMfmaNumerics},
      {BuiltinPath::asm_, "asm", &builtin::kAsmCapability, &builtin::kMfmaNumerics},
      {BuiltinPath::unified, "unified", &builtin::kUnifiedCapability, &builtin::kV1Numerics},
      {BuiltinPath::unified_split, "unified_split", &builtin::kUnifiedSplitCapability, &builtin::kV1Numerics},
      {BuiltinPath::mla, "mla", &builtin::kMlaCapability, &builtin::kV1Numerics},
      {BuiltinPath::mla_split, "mla_split", &builtin::kMlaSplitCapability, &builtin::kMfmaNumerics},
  }};
  return kSpecs;
}

BuiltinPath builtin_path(const pacheck_kernel* self) { return static_cast<const BuiltinSpec*>(self->user_data)->path; }

namespace {
// Only the two-stage path needs scratch: its split plan, the same on both sides.
uint64_t builtin_workspace(const pacheck_kernel* self, const pacheck_problem* p) {
  const BuiltinPath path = builtin_path(self);
  return splits_context(path) ? uint64_t(split_plan(*p).bytes()) : 0;
}
}  // namespace

pacheck_kernel builtin_descriptor(const BuiltinSpec& spec, pacheck_memory memory, LaunchFn launch,
                                  LastErrorFn last_error, const char* provenance) {
  pacheck_kernel k{};
  k.struct_size = sizeof k;
  k.abi_version = PACHECK_KERNEL_ABI_VERSION;
  k.abi_minor = PACHECK_KERNEL_ABI_MINOR;
  k.name = spec.name;
  k.version = "1";
  k.provenance = provenance;
  k.memory = memory;
  k.capability = spec.capability;
  k.numerics = spec.numerics;
  k.user_data = const_cast<BuiltinSpec*>(&spec);
  k.supports = nullptr;
  k.workspace_bytes = builtin_workspace;
  k.launch = launch;
  k.last_error = last_error;
  return k;
}

}  // namespace pa
