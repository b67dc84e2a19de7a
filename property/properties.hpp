#pragma once
// The properties check_kernel runs (property/check.hpp lists them), each built for one kernel:
// its precondition, its case generator and its body. Internal to pacheck::check.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <rapidcheck.h>

#include "core/device.hpp"
#include "kernels/kernel.hpp"
#include "property/generators.hpp"
#include "property/harness.hpp"

namespace pa::prop {

/// What every property knows about the kernel under check.
struct PropertyContext {
  KernelPtr kernel;
  std::vector<KernelPtr> all;   // the registered kernels (kernel included)
  Device device;
  bool every_device_model = false;
  gen::Limits limits;

  /// True when each case picks its own device model (host kernels with every_device_model).
  bool per_case_device() const;
  /// The device a case is run and judged on.
  Device device_for(const Case& c) const;
  /// The devices cases are drawn for (one per fp8 flavour, or `device`).
  std::vector<Device> draw_devices() const;
  /// The devices the dispatcher routes for (every model, or `device`).
  std::vector<Device> route_devices() const;
  /// Cases inside the kernel's capability on the draw devices.
  rc::Gen<Case> inside() const;
};

struct PropertySpec {
  std::string name;
  std::optional<std::string> not_applicable;  // the unmet precondition, when there is one
  rc::Gen<Case> cases = rc::gen::just(Case{});
  CaseProperty holds;
};

/// A property drawn inside the kernel's capability (ctx.inside()) that holds when `holds` says so.
inline PropertySpec inside_spec(const PropertyContext& ctx, const char* name, CaseProperty holds) {
  PropertySpec p;
  p.name = name;
  p.cases = ctx.inside();
  p.holds = std::move(holds);
  return p;
}

// property/metamorphic.cpp
PropertySpec reference_property(const PropertyContext& ctx);
PropertySpec relocation_property(const PropertyContext& ctx);
PropertySpec kv_scale_property(const PropertyContext& ctx);
PropertySpec split_property(const PropertyContext& ctx);
PropertySpec gqa_property(const PropertyContext& ctx);
PropertySpec poison_property(const PropertyContext& ctx);
PropertySpec repeat_property(const PropertyContext& ctx);
// property/ragged.cpp: the ragged family's relations (kernels declaring RAGGED)
PropertySpec batch_property(const PropertyContext& ctx);
PropertySpec extend_property(const PropertyContext& ctx);
PropertySpec zero_q_property(const PropertyContext& ctx);
// property/plans.cpp: the call around the launch (ABI minor 3)
PropertySpec plan_property(const PropertyContext& ctx);
PropertySpec graph_property(const PropertyContext& ctx);
// property/contracts.cpp
PropertySpec refusal_property(const PropertyContext& ctx);
PropertySpec writer_property(const PropertyContext& ctx);
PropertySpec dispatcher_property(const PropertyContext& ctx);

}  // namespace pa::prop
