// The device oracle without a GPU toolchain: it says so (reference_attention is what runs then).
#include <stdexcept>

#include "reference/attention_device.hpp"

namespace pa {

ReferenceResult reference_attention_device(const DeviceInputs&) {
  throw std::runtime_error("reference_attention_device: pacheck was built without a GPU toolchain");
}

}  // namespace pa
