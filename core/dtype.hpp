#pragma once
// Element types and their codecs: bf16, fp16, fp8 e4m3fn (OCP; MI355 and NVIDIA), fp8 e4m3fnuz
// (MI300), fp8 e5m2 (vLLM's fp8_e5m2 KV cache), int8. Encoding is round-to-nearest-even. 16-bit
// formats follow IEEE (overflow -> Inf); 8-bit formats saturate to their largest finite value (the
// KV-cache quantization convention: code = sat(x / scale)). Every codec is PA_HOST_DEVICE: packer,
// host twins and kernels share it.
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/host_device.hpp"

namespace pa {

// The numeric values are an ABI: the C entry point maps them 1:1, so a new type is appended and no
// existing value ever changes.
enum class DType : uint8_t {
  bf16 = 0,
  fp16 = 1,
  fp8_e4m3fn = 2,
  fp8_e4m3fnuz = 3,
  int8 = 4,
  fp32 = 5,
  fp8_e5m2 = 6,
};
/// Number of DType values (they are dense, 0 .. kDTypeCount - 1).
inline constexpr int kDTypeCount = 7;

PA_HOST_DEVICE constexpr int dtype_bytes(DType t) {
  return t == DType::fp32 ? 4 : (t == DType::bf16 || t == DType::fp16) ? 2 : 1;
}
PA_HOST_DEVICE constexpr bool is_fp8(DType t) {
  return t == DType::fp8_e4m3fn || t == DType::fp8_e4m3fnuz || t == DType::fp8_e5m2;
}
PA_HOST_DEVICE constexpr bool is_8bit(DType t) { return dtype_bytes(t) == 1; }
// The two e4m3 flavours differ only in bias and specials: bytes of one decoded as the other are
// off by a factor of 2, which is why a device's native flavour must match (e5m2 is no flavour
// of e4m3: is_fp8 but not is_e4m3).
PA_HOST_DEVICE constexpr bool is_e4m3(DType t) {
  return t == DType::fp8_e4m3fn || t == DType::fp8_e4m3fnuz;
}

const char* to_string(DType t);
std::optional<DType> parse_dtype(std::string_view s);

namespace codec {

// Unit roundoff (half an ulp at 1.0) of a format: the relative error of one rounding.
PA_HOST_DEVICE constexpr double unit_roundoff(DType t) {
  switch (t) {
    case DType::bf16: return 1.0 / 256;     // 8 significant bits
    case DType::fp16: return 1.0 / 2048;    // 11 significant bits
    case DType::fp8_e4m3fn:
    case DType::fp8_e4m3fnuz: return 1.0 / 16;  // 4 significant bits
    case DType::fp8_e5m2: return 1.0 / 8;   // 3 significant bits
    case DType::int8: return 0.5 / 127;     // half a step of a symmetric amax/127 scale
    case DType::fp32: return 1.0 / 16777216;
  }
  return 0;
}

// Largest finite magnitude a code can hold (the quantization "format max").
PA_HOST_DEVICE constexpr float max_finite(DType t) {
  switch (t) {
    case DType::bf16: return 3.38953139e38f;
    case DType::fp16: return 65504.0f;
    case DType::fp8_e4m3fn: return 448.0f;
    case DType::fp8_e4m3fnuz: return 240.0f;
    case DType::int8: return 127.0f;
    case DType::fp32: return 3.40282347e38f;
    case DType::fp8_e5m2: return 57344.0f;  // 1.75 * 2^15 (0x7B); 0x7C is Inf
  }
  return 0;
}

// Spacing of the codes next to zero: the smallest positive subnormal (int8: one integer step).
// Below the smallest normal a rounding errs by up to half of it, absolutely, not by u relatively.
PA_HOST_DEVICE constexpr double smallest_step(DType t) {
  switch (t) {
    case DType::bf16: return 0x1.0p-133;
    case DType::fp16: return 0x1.0p-24;
    case DType::fp8_e4m3fn: return 0x1.0p-9;
    case DType::fp8_e4m3fnuz: return 0x1.0p-10;
    case DType::int8: return 1.0;
    case DType::fp32: return 0x1.0p-149;
    case DType::fp8_e5m2: return 0x1.0p-16;
  }
  return 0;
}

// ---- bf16 -----------------------------------------------------------------------------------
PA_HOST_DEVICE inline float bf16_to_float(uint16_t c) { return bit_cast<float>(uint32_t(c) << 16); }
PA_HOST_DEVICE inline uint16_t float_to_bf16(float x) {
  uint32_t u = bit_cast<uint32_t>(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((u >> 16) | 0x0040u);  // quiet NaN, sign kept
  u += 0x7FFFu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return uint16_t(u >> 16);
}

// ---- fp16 -----------------------------------------------------------------------------------
PA_HOST_DEVICE inline float fp16_to_float(uint16_t c) {
  const uint32_t sign = uint32_t(c & 0x8000u) << 16;
  const uint32_t e = (c >> 10) & 0x1Fu;
  const uint32_t m = c & 0x3FFu;
  if (e == 0x1F) return bit_cast<float>(sign | 0x7F800000u | (m << 13));
  if (e == 0) {  // zero or subnormal: m * 2^-24, exact in float
    const float v = float(m) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  return bit_cast<float>(sign | ((e + 112u) << 23) | (m << 13));
}
PA_HOST_DEVICE inline uint16_t float_to_fp16(float x) {
  const uint32_t u = bit_cast<uint32_t>(x);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return uint16_t(sign | 0x7E00u | ((a >> 13) & 0x1FFu));  // NaN stays NaN
  if (a >= 0x477FF000u) return uint16_t(sign | 0x7C00u);  // rounds past 65504 -> Inf
  if (a < 0x38800000u) {  // below 2^-14: subnormal half. Scale to units of 2^-24 and round RNE.
    const float v = bit_cast<float>(a) * 16777216.0f;  // exact (power-of-two scale)
    uint32_t q = uint32_t(v);
    const float frac = v - float(q);
    if (frac > 0.5f || (frac == 0.5f && (q & 1u))) ++q;
    return uint16_t(sign | q);  // q == 0x400 is the smallest normal, which is the right code
  }
  uint32_t r = a + 0xFFFu + ((a >> 13) & 1u);  // RNE on the 13 dropped bits
  return uint16_t(sign | ((r >> 13) - (112u << 10)));
}

// ---- fp8 e4m3 (both flavours) ---------------------------------------------------------------
// e4m3fn: bias 7, no Inf, NaN = S.1111.111, max 448 (0x7E).
// e4m3fnuz: bias 8, no Inf, no -0, single NaN 0x80, max 240 (0x7F).
template <bool kFnuz>
struct E4M3 {
  static constexpr int kBias = kFnuz ? 8 : 7;
  static constexpr uint8_t kMaxCode = kFnuz ? 0x7F : 0x7E;
  static constexpr float kMax = kFnuz ? 240.0f : 448.0f;

  PA_HOST_DEVICE static bool is_nan(uint8_t c) { return kFnuz ? c == 0x80 : (c & 0x7F) == 0x7F; }

  PA_HOST_DEVICE static float decode(uint8_t c) {
    if (is_nan(c)) return bit_cast<float>(0x7FC00000u);
    const int e = (c >> 3) & 0xF;
    const int m = c & 0x7;
    // value = (e ? 8 + m : m) * 2^(max(e,1) - bias - 3), built exactly from bits.
    const int p = (e ? e : 1) - kBias - 3;
    const float scale = bit_cast<float>(uint32_t(p + 127) << 23);
    const float v = float(e ? 8 + m : m) * scale;
    return (c & 0x80) ? -v : v;
  }

  PA_HOST_DEVICE static uint8_t encode(float x) {
    const uint32_t u = bit_cast<uint32_t>(x);
    const uint8_t sign = uint8_t((u >> 24) & 0x80u);
    const uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return kFnuz ? uint8_t(0x80) : uint8_t(sign | 0x7F);
    const float max_value = kMax;  // a local copy: nvcc cannot take kMax's address in device code
    if (a >= bit_cast<uint32_t>(max_value)) return uint8_t(sign | kMaxCode);  // saturate (Inf too)
    uint8_t mag;
    const int e = int(a >> 23) - 127;  // float's unbiased exponent
    if (e >= 1 - kBias) {
      // Normal target: keep 3 mantissa bits, RNE on the 20 dropped ones; a carry moves into the
      // exponent field, which is exactly right.
      const uint32_t r = (a + 0x7FFFFu + ((a >> 20) & 1u)) >> 20;  // float exp(8) | mant(3)
      const uint32_t code = r - (uint32_t(127 - kBias) << 3);
      mag = code > kMaxCode ? kMaxCode : uint8_t(code);
    } else {
      // Subnormal target: units of 2^(1-bias-3); 8 units is the smallest normal code 0x08.
      const float v = bit_cast<float>(a) * bit_cast<float>(uint32_t(127 + kBias + 2) << 23);
      uint32_t q = uint32_t(v);
      const float frac = v - float(q);
      if (frac > 0.5f || (frac == 0.5f && (q & 1u))) ++q;
      mag = uint8_t(q);
    }
    if (kFnuz && mag == 0) return 0;  // e4m3fnuz has no -0 (0x80 is its NaN)
    return uint8_t(sign | mag);
  }
};
using E4M3FN = E4M3<false>;
using E4M3FNUZ = E4M3<true>;

// ---- fp8 e5m2 -------------------------------------------------------------------------------
// The top byte of an IEEE fp16: bias 15, 2 mantissa bits, subnormals, Inf = S.11111.00, NaN =
// S.11111.{01,10,11}, max finite 57344 (0x7B). Encoding saturates like the other 8-bit formats
// (finite overflow and +-Inf -> +-57344, as vLLM's satfinite conversion does): a KV code never
// holds Inf although the format could. Truncating an fp16 code is not a correct encoder (it
// rounds toward zero and double-rounds), so RNE is done here on the float's 21 dropped bits.
struct E5M2 {
  static constexpr int kBias = 15;
  static constexpr uint8_t kMaxCode = 0x7B;
  static constexpr float kMax = 57344.0f;

  PA_HOST_DEVICE static bool is_nan(uint8_t c) { return (c & 0x7F) > 0x7C; }
  PA_HOST_DEVICE static bool is_inf(uint8_t c) { return (c & 0x7F) == 0x7C; }

  PA_HOST_DEVICE static float decode(uint8_t c) {
    if (is_nan(c)) return bit_cast<float>(0x7FC00000u);
    if (is_inf(c)) return bit_cast<float>((c & 0x80) ? 0xFF800000u : 0x7F800000u);
    const int e = (c >> 2) & 0x1F;
    const int m = c & 0x3;
    // value = (e ? 4 + m : m) * 2^(max(e,1) - bias - 2), built exactly from bits.
    const int p = (e ? e : 1) - kBias - 2;
    const float scale = bit_cast<float>(uint32_t(p + 127) << 23);
    const float v = float(e ? 4 + m : m) * scale;
    return (c & 0x80) ? -v : v;
  }

  PA_HOST_DEVICE static uint8_t encode(float x) {
    const uint32_t u = bit_cast<uint32_t>(x);
    const uint8_t sign = uint8_t((u >> 24) & 0x80u);
    const uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return uint8_t(sign | 0x7F);  // NaN stays NaN, sign kept
    const float max_value = kMax;  // a local copy: nvcc cannot take kMax's address in device code
    if (a >= bit_cast<uint32_t>(max_value)) return uint8_t(sign | kMaxCode);  // saturate (Inf too)
    uint8_t mag;
    const int e = int(a >> 23) - 127;  // float's unbiased exponent
    if (e >= 1 - kBias) {
      // Normal target: keep 2 mantissa bits, RNE on the 21 dropped ones; a carry moves into the
      // exponent field, which is exactly right.
      const uint32_t r = (a + 0xFFFFFu + ((a >> 21) & 1u)) >> 21;  // float exp(8) | mant(2)
      const uint32_t code = r - (uint32_t(127 - kBias) << 2);
      mag = code > kMaxCode ? kMaxCode : uint8_t(code);
    } else {
      // Subnormal target: units of 2^(1-bias-2) = 2^-16; 4 units is the smallest normal 0x04.
      const float v = bit_cast<float>(a) * bit_cast<float>(uint32_t(127 + kBias + 1) << 23);
      uint32_t q = uint32_t(v);
      const float frac = v - float(q);
      if (frac > 0.5f || (frac == 0.5f && (q & 1u))) ++q;
      mag = uint8_t(q);
    }
    return uint8_t(sign | mag);
  }
};

// ---- int8 (symmetric, saturating to +-127) ----------------------------------------------------
PA_HOST_DEVICE inline float int8_to_float(uint8_t c) { return float(int8_t(c)); }
PA_HOST_DEVICE inline uint8_t float_to_int8(float x) {
  if (!(x == x)) return 0;  // NaN has no int8 code; 0 is the least harmful
  if (x >= 127.0f) return 127;
  if (x <= -127.0f) return uint8_t(int8_t(-127));
  const float ax = x < 0 ? -x : x;
  int q = int(ax);
  const float frac = ax - float(q);
  if (frac > 0.5f || (frac == 0.5f && (q & 1))) ++q;
  return uint8_t(int8_t(x < 0 ? -q : q));
}

// ---- one codec per storage type, for templated kernels and host twins -------------------------
template <DType T> struct Codec;
template <> struct Codec<DType::bf16> {
  using Storage = uint16_t;
  PA_HOST_DEVICE static float decode(Storage c) { return bf16_to_float(c); }
  PA_HOST_DEVICE static Storage encode(float x) { return float_to_bf16(x); }
};
template <> struct Codec<DType::fp16> {
  using Storage = uint16_t;
  PA_HOST_DEVICE static float decode(Storage c) { return fp16_to_float(c); }
  PA_HOST_DEVICE static Storage encode(float x) { return float_to_fp16(x); }
};
template <> struct Codec<DType::fp8_e4m3fn> {
  using Storage = uint8_t;
  PA_HOST_DEVICE static float decode(Storage c) { return E4M3FN::decode(c); }
  PA_HOST_DEVICE static Storage encode(float x) { return E4M3FN::encode(x); }
};
template <> struct Codec<DType::fp8_e4m3fnuz> {
  using Storage = uint8_t;
  PA_HOST_DEVICE static float decode(Storage c) { return E4M3FNUZ::decode(c); }
  PA_HOST_DEVICE static Storage encode(float x) { return E4M3FNUZ::encode(x); }
};
template <> struct Codec<DType::fp8_e5m2> {
  using Storage = uint8_t;
  PA_HOST_DEVICE static float decode(Storage c) { return E5M2::decode(c); }
  PA_HOST_DEVICE static Storage encode(float x) { return E5M2::encode(x); }
};
template <> struct Codec<DType::int8> {
  using Storage = uint8_t;
  PA_HOST_DEVICE static float decode(Storage c) { return int8_to_float(c); }
  PA_HOST_DEVICE static Storage encode(float x) { return float_to_int8(x); }
};

// Run-time dispatch for host code (packers, reference input decoding). Codes are held widened.
PA_HOST_DEVICE inline float decode(DType t, uint32_t code) {
  switch (t) {
    case DType::bf16: return bf16_to_float(uint16_t(code));
    case DType::fp16: return fp16_to_float(uint16_t(code));
    case DType::fp8_e4m3fn: return E4M3FN::decode(uint8_t(code));
    case DType::fp8_e4m3fnuz: return E4M3FNUZ::decode(uint8_t(code));
    case DType::int8: return int8_to_float(uint8_t(code));
    case DType::fp32: return bit_cast<float>(code);
    case DType::fp8_e5m2: return E5M2::decode(uint8_t(code));
  }
  return 0;
}
PA_HOST_DEVICE inline uint32_t encode(DType t, float x) {
  switch (t) {
    case DType::bf16: return float_to_bf16(x);
    case DType::fp16: return float_to_fp16(x);
    case DType::fp8_e4m3fn: return E4M3FN::encode(x);
    case DType::fp8_e4m3fnuz: return E4M3FNUZ::encode(x);
    case DType::int8: return float_to_int8(x);
    case DType::fp32: return bit_cast<uint32_t>(x);
    case DType::fp8_e5m2: return E5M2::encode(x);
  }
  return 0;
}
// The code a poisoned (never-to-be-read) slot holds: a NaN where the format has one. int8 has
// none, so it gets -128, a code the symmetric quantizer never writes (its readers also meet NaN
// scales in per-token mode).
PA_HOST_DEVICE inline uint32_t poison_code(DType t) {
  switch (t) {
    case DType::bf16: return 0x7FC0u;
    case DType::fp16: return 0x7E00u;
    case DType::fp8_e4m3fn: return 0x7Fu;
    case DType::fp8_e4m3fnuz: return 0x80u;
    case DType::int8: return 0x80u;
    case DType::fp32: return 0x7FC00000u;
    case DType::fp8_e5m2: return 0x7Fu;
  }
  return 0;
}

}  // namespace codec
}  // namespace pa
