#include "core/device.hpp"

namespace pa {

Device device_mi300x() { return {"mi300x", "gfx942", 304, DType::fp8_e4m3fnuz, 64}; }
Device device_mi355x() { return {"mi355x", "gfx950", 256, DType::fp8_e4m3fn, 64}; }
Device device_h100() { return {"h100", "sm_90", 132, DType::fp8_e4m3fn, 32}; }
std::vector<Device> device_models() { return {device_mi300x(), device_mi355x(), device_h100()}; }

Device device_reading(DType kv_dtype) {
  return kv_dtype == DType::fp8_e4m3fnuz ? device_mi300x()
         : is_fp8(kv_dtype)              ? device_mi355x()
                                         : device_mi300x();
}

std::optional<Device> device_model(std::string_view name) {
  for (const Device& d : device_models())
    if (name == d.name) return d;
  return std::nullopt;
}

std::string device_model_names() {
  std::string s;
  for (const Device& d : device_models()) s += (s.empty() ? "" : ", ") + d.name;
  return s;
}

}  // namespace pa
