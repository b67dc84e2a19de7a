#pragma once
// The device a case is routed and judged for. Routing depends on the CU count and the native fp8
// flavour (MI300 decodes e4m3fnuz; MI355 and NVIDIA the OCP e4m3fn). Host twins run for a
// *modelled* device; on a GPU the present device is read from the runtime.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.hpp"

namespace pa {

struct Device {
  std::string name = "mi300x";
  std::string arch = "gfx942";
  int32_t cu_count = 304;
  DType native_fp8 = DType::fp8_e4m3fnuz;
  int32_t warp_size = 64;
};
Device device_mi300x();
Device device_mi355x();
Device device_h100();
/// Every known device model, in a fixed order.
std::vector<Device> device_models();
/// A device model whose native fp8 flavour reads a cache of this dtype (MI355X for e4m3fn and
/// e5m2, else MI300X), for running a case on the model that can decode it.
Device device_reading(DType kv_dtype);
/// Known device models by name ("mi300x", "mi355x", "h100"); nullopt when unknown.
std::optional<Device> device_model(std::string_view name);
/// "mi300x, mi355x, h100": for error messages.
std::string device_model_names();

}  // namespace pa
