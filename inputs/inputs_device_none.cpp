// make_device_inputs without a GPU toolchain: every entry point says so (the host path,
// make_inputs + pack, is what runs then).
#include <stdexcept>

#include "inputs/inputs_device.hpp"

namespace pa {

namespace {
[[noreturn]] void no_gpu(const char* what) {
  throw std::runtime_error(std::string(what) + ": pacheck was built without a GPU toolchain");
}
}  // namespace

DeviceBuffer::DeviceBuffer(size_t) { no_gpu("DeviceBuffer"); }
DeviceBuffer::~DeviceBuffer() = default;
DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  p_ = o.p_, n_ = o.n_;
  o.p_ = nullptr, o.n_ = 0;
  return *this;
}
void DeviceBuffer::upload(const void*, size_t) { no_gpu("DeviceBuffer::upload"); }
void DeviceBuffer::download(void*, size_t) const { no_gpu("DeviceBuffer::download"); }

bool device_inputs_available(std::string* why) {
  if (why) *why = "pacheck was built without a GPU toolchain";
  return false;
}
int64_t device_memory_available() { return -1; }
DeviceInputs make_device_inputs(const Case&) { no_gpu("make_device_inputs"); }
DeviceInputs make_device_inputs(const ValidCase&) { no_gpu("make_device_inputs"); }
DeviceInputs upload_inputs(const Inputs&) { no_gpu("upload_inputs"); }
Inputs download_inputs(const DeviceInputs&) { no_gpu("download_inputs"); }
PhysicalKv download_physical(const DeviceInputs&) { no_gpu("download_physical"); }

}  // namespace pa
