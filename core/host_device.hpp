#pragma once
// One macro decides whether a function is callable from host, device or both (CuTe's
// CUTE_HOST_DEVICE habit). Everything in core/ that a kernel needs is PA_HOST_DEVICE.
#if defined(__CUDACC__) || defined(__HIPCC__)
#define PA_HOST_DEVICE __host__ __device__
#define PA_DEVICE __device__
#define PA_GPU_COMPILER 1
#else
#define PA_HOST_DEVICE
#define PA_DEVICE
#define PA_GPU_COMPILER 0
#endif

#include <cstdint>
#include <cstring>

namespace pa {

// Bit-exact reinterpretation, valid on host and device (memcpy is supported in both).
template <class To, class From>
PA_HOST_DEVICE inline To bit_cast(const From& from) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast needs equal sizes");
  To to;
#if defined(__HIPCC__)
  __builtin_memcpy(&to, &from, sizeof(To));  // hipcc (ROCm 5.x) has no __device__ memcpy
#else
  memcpy(&to, &from, sizeof(To));
#endif
  return to;
}

}  // namespace pa
