#pragma once
// Compile-time specialisation switches (FlashInfer's DISPATCH_* habit): one run-time value picks
// one template instantiation; `default:` names the unsupported value and the caller.
#include "core/dtype.hpp"

// Binds constexpr DType KV to t and runs the body; an unsupported dtype runs `fail`.
#define PA_DISPATCH_KV_DTYPE(t, KV, fail, ...)                          \
  switch (t) {                                                         \
    case ::pa::DType::bf16: { constexpr ::pa::DType KV = ::pa::DType::bf16; __VA_ARGS__ } break;   \
    case ::pa::DType::fp16: { constexpr ::pa::DType KV = ::pa::DType::fp16; __VA_ARGS__ } break;   \
    case ::pa::DType::fp8_e4m3fn: { constexpr ::pa::DType KV = ::pa::DType::fp8_e4m3fn; __VA_ARGS__ } break; \
    case ::pa::DType::fp8_e4m3fnuz: { constexpr ::pa::DType KV = ::pa::DType::fp8_e4m3fnuz; __VA_ARGS__ } break; \
    case ::pa::DType::int8: { constexpr ::pa::DType KV = ::pa::DType::int8; __VA_ARGS__ } break;   \
    case ::pa::DType::fp8_e5m2: { constexpr ::pa::DType KV = ::pa::DType::fp8_e5m2; __VA_ARGS__ } break; \
    default: { fail; } break;                                          \
  }

#define PA_DISPATCH_Q_DTYPE(t, QT, fail, ...)                           \
  switch (t) {                                                         \
    case ::pa::DType::bf16: { constexpr ::pa::DType QT = ::pa::DType::bf16; __VA_ARGS__ } break;   \
    case ::pa::DType::fp16: { constexpr ::pa::DType QT = ::pa::DType::fp16; __VA_ARGS__ } break;   \
    default: { fail; } break;                                          \
  }
