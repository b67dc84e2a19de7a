#pragma once
// Rounding to a 16-bit compute/out type, shared by host twins and kernels: the value a kernel
// holds after storing x as T (and what an MFMA/WMMA sees when P is fed to it as T).
#include "core/dtype.hpp"

namespace pa {

template <DType T>
PA_HOST_DEVICE inline float round_to(float x) {
  return codec::Codec<T>::decode(codec::Codec<T>::encode(x));
}
PA_HOST_DEVICE inline float round_to(DType t, float x) {
  return codec::decode(t, codec::encode(t, x));
}

}  // namespace pa
