// Exhaustive codec tests. Every expected value is computed here from the format's bit fields
// (sign, exponent, mantissa) with std::ldexp in double, never by calling the codec under test, so
// a codec bug cannot hide behind itself.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "core/dtype.hpp"

namespace pa {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---- independent reference decoders ------------------------------------------------------------

// Generic sign/exponent/mantissa decoder: `ebits` exponent bits, `mbits` mantissa bits, `bias`.
// `ieee` formats reserve the top exponent for Inf/NaN.
double ref_float_bits(uint32_t c, int ebits, int mbits, int bias, bool ieee) {
  const uint32_t sign = (c >> (ebits + mbits)) & 1u;
  const uint32_t e = (c >> mbits) & ((1u << ebits) - 1);
  const uint32_t m = c & ((1u << mbits) - 1);
  double v;
  if (ieee && e == (1u << ebits) - 1) {
    v = m ? kNaN : std::numeric_limits<double>::infinity();
  } else if (e == 0) {
    v = std::ldexp(double(m), 1 - bias - mbits);  // subnormal: 0.m * 2^(1-bias)
  } else {
    v = std::ldexp(double((1u << mbits) + m), int(e) - bias - mbits);  // 1.m * 2^(e-bias)
  }
  return sign ? -v : v;
}
double ref_bf16(uint32_t c) { return ref_float_bits(c, 8, 7, 127, true); }
double ref_fp16(uint32_t c) { return ref_float_bits(c, 5, 10, 15, true); }
double ref_e4m3fn(uint32_t c) {
  if ((c & 0x7F) == 0x7F) return kNaN;  // S.1111.111 is NaN; no Inf
  return ref_float_bits(c, 4, 3, 7, false);
}
double ref_e4m3fnuz(uint32_t c) {
  if (c == 0x80) return kNaN;  // the single NaN; there is no -0
  return ref_float_bits(c, 4, 3, 8, false);
}
// e5m2 is IEEE-like (bias 15, 2 mantissa bits): top exponent = Inf (m = 0) or NaN (m != 0).
double ref_e5m2(uint32_t c) { return ref_float_bits(c, 5, 2, 15, true); }
double ref_int8(uint32_t c) { return c < 128 ? double(c) : double(int(c) - 256); }

double ref_decode(DType t, uint32_t c) {
  switch (t) {
    case DType::bf16: return ref_bf16(c);
    case DType::fp16: return ref_fp16(c);
    case DType::fp8_e4m3fn: return ref_e4m3fn(c);
    case DType::fp8_e4m3fnuz: return ref_e4m3fnuz(c);
    case DType::int8: return ref_int8(c);
    case DType::fp8_e5m2: return ref_e5m2(c);
    default: return kNaN;
  }
}
uint32_t num_codes(DType t) { return dtype_bytes(t) == 1 ? 256u : 65536u; }
uint32_t sign_bit(DType t) { return dtype_bytes(t) == 1 ? 0x80u : 0x8000u; }

// Exact equality including the sign of zero; NaN matches NaN.
::testing::AssertionResult same_value(double expected, float got, uint32_t code) {
  if (std::isnan(expected) && std::isnan(got)) return ::testing::AssertionSuccess();
  if (expected == double(got) && std::signbit(expected) == std::signbit(got))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "code 0x" << std::hex << code << std::dec
                                       << ": expected " << expected << " got " << got;
}

void expect_decode_exhaustive(DType t) {
  int bad = 0;
  for (uint32_t c = 0; c < num_codes(t) && bad < 10; ++c) {
    const auto r = same_value(ref_decode(t, c), codec::decode(t, c), c);
    if (!r) ++bad;
    EXPECT_TRUE(r);
  }
}

// encode(decode(c)) == c for every code whose value is not NaN. An 8-bit format's Inf codes are
// the exception: encoding saturates (the KV quantization convention), checked in DTypeSaturation.
void expect_round_trip(DType t) {
  int bad = 0;
  for (uint32_t c = 0; c < num_codes(t) && bad < 10; ++c) {
    const double v = ref_decode(t, c);
    if (std::isnan(v) || (is_8bit(t) && std::isinf(v))) continue;
    const uint32_t back = codec::encode(t, float(v));
    if (back != c) ++bad;
    EXPECT_EQ(back, c) << to_string(t) << " value " << v;
  }
}

// Magnitude codes 0..top in increasing value order (checked), for the rounding tests.
std::vector<uint32_t> positive_finite_codes(DType t) {
  std::vector<uint32_t> codes;
  for (uint32_t c = 0; c < sign_bit(t); ++c) {
    const double v = ref_decode(t, c);
    if (std::isnan(v) || std::isinf(v)) continue;
    codes.push_back(c);
  }
  return codes;
}

// The code of -|value of magnitude code m|, by the format's rules (not by the codec).
uint32_t negated(DType t, uint32_t m) {
  if (t == DType::int8) return uint32_t(uint8_t(int8_t(-int(m))));
  if (t == DType::fp8_e4m3fnuz && m == 0) return 0;  // no -0 in fnuz
  return m | sign_bit(t);
}

// Round-to-nearest-even over every pair of adjacent finite codes: the exact midpoint goes to the
// even code, the floats just below/above it go to the nearer code; the same on the negative side.
void expect_rne_exhaustive(DType t) {
  const auto codes = positive_finite_codes(t);
  int bad = 0;
  for (size_t i = 0; i + 1 < codes.size() && bad < 10; ++i) {
    const uint32_t lo = codes[i], hi = codes[i + 1];
    const double a = ref_decode(t, lo), b = ref_decode(t, hi);
    ASSERT_LT(a, b) << "codes not monotonic at 0x" << std::hex << lo;
    const double mid = (a + b) / 2;
    const float fmid = float(mid);
    ASSERT_EQ(double(fmid), mid) << "midpoint not representable in float";
    const uint32_t even = (lo & 1u) == 0 ? lo : hi;
    const float below = std::nextafter(fmid, 0.0f);
    const float above = std::nextafter(fmid, std::numeric_limits<float>::infinity());
    const uint32_t got_mid = codec::encode(t, fmid), got_below = codec::encode(t, below),
                   got_above = codec::encode(t, above);
    const uint32_t got_nmid = codec::encode(t, -fmid), got_nbelow = codec::encode(t, -below),
                   got_nabove = codec::encode(t, -above);
    const bool ok = got_mid == even && got_below == lo && got_above == hi &&
                    got_nmid == negated(t, even) && got_nbelow == negated(t, lo) &&
                    got_nabove == negated(t, hi);
    if (!ok) ++bad;
    EXPECT_TRUE(ok) << to_string(t) << " pair 0x" << std::hex << lo << "/0x" << hi << std::dec
                    << " (" << a << ", " << b << "): mid->0x" << std::hex << got_mid
                    << " below->0x" << got_below << " above->0x" << got_above << " -mid->0x"
                    << got_nmid << " -below->0x" << got_nbelow << " -above->0x" << got_nabove;
  }
}

const DType kAll[] = {DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz, DType::int8,
                      DType::fp8_e5m2};

// ---- decode, exhaustive -------------------------------------------------------------------------

// Every code of every dtype (256 for the 8-bit ones, 65536 for bf16 and fp16).
class EveryDType : public ::testing::TestWithParam<DType> {};
TEST_P(EveryDType, DecodesEveryCode) { expect_decode_exhaustive(GetParam()); }

TEST(DTypeDecode, E4M3FnSpecialCodes) {
  EXPECT_TRUE(std::isnan(codec::E4M3FN::decode(0x7F)));
  EXPECT_TRUE(std::isnan(codec::E4M3FN::decode(0xFF)));
  EXPECT_EQ(codec::E4M3FN::decode(0x7E), 448.0f);
  EXPECT_EQ(codec::E4M3FN::decode(0xFE), -448.0f);
  EXPECT_TRUE(std::signbit(codec::E4M3FN::decode(0x80)));  // has -0
  EXPECT_EQ(codec::E4M3FN::decode(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  int nans = 0;
  for (int c = 0; c < 256; ++c) nans += std::isnan(codec::E4M3FN::decode(uint8_t(c)));
  EXPECT_EQ(nans, 2);
}

TEST(DTypeDecode, E4M3FnuzSpecialCodes) {
  EXPECT_TRUE(std::isnan(codec::E4M3FNUZ::decode(0x80)));
  EXPECT_EQ(codec::E4M3FNUZ::decode(0x7F), 240.0f);
  EXPECT_EQ(codec::E4M3FNUZ::decode(0xFF), -240.0f);
  EXPECT_EQ(codec::E4M3FNUZ::decode(0x01), std::ldexp(1.0f, -10));
  int nans = 0, neg_zero = 0;
  for (int c = 0; c < 256; ++c) {
    const float v = codec::E4M3FNUZ::decode(uint8_t(c));
    nans += std::isnan(v);
    neg_zero += (v == 0 && std::signbit(v));
  }
  EXPECT_EQ(nans, 1);
  EXPECT_EQ(neg_zero, 0);
}

TEST(DTypeDecode, E5M2SpecialCodes) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(codec::E5M2::decode(0x7C), inf);
  EXPECT_EQ(codec::E5M2::decode(0xFC), -inf);
  for (uint8_t c : {0x7D, 0x7E, 0x7F, 0xFD, 0xFE, 0xFF}) EXPECT_TRUE(std::isnan(codec::E5M2::decode(c))) << int(c);
  EXPECT_EQ(codec::E5M2::decode(0x7B), 57344.0f);
  EXPECT_EQ(codec::E5M2::decode(0xFB), -57344.0f);
  EXPECT_EQ(codec::E5M2::decode(0x01), std::ldexp(1.0f, -16));  // smallest subnormal
  EXPECT_EQ(codec::E5M2::decode(0x04), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(codec::E5M2::decode(0x3C), 1.0f);
  EXPECT_TRUE(std::signbit(codec::E5M2::decode(0x80)));  // has -0
  int nans = 0, infs = 0;
  for (int c = 0; c < 256; ++c) {
    const float v = codec::E5M2::decode(uint8_t(c));
    nans += std::isnan(v);
    infs += std::isinf(v);
  }
  EXPECT_EQ(nans, 6);
  EXPECT_EQ(infs, 2);
}

// e5m2 is the top byte of an fp16 (whose codec is checked exhaustively above against bit fields):
// every code, NaNs and Infs included, decodes to the fp16 with the low byte zero.
TEST(DTypeDecode, E5M2IsTheTopByteOfFp16) {
  for (uint32_t c = 0; c < 256; ++c) {
    const float a = codec::E5M2::decode(uint8_t(c)), b = codec::fp16_to_float(uint16_t(c << 8));
    if (std::isnan(b)) {
      EXPECT_TRUE(std::isnan(a)) << c;
    } else {
      EXPECT_EQ(bit_cast<uint32_t>(a), bit_cast<uint32_t>(b)) << c;
    }
  }
}

TEST(DTypeDecode, SixteenBitSpecials) {
  EXPECT_EQ(codec::fp16_to_float(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(codec::fp16_to_float(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(codec::fp16_to_float(0x7E00)));
  EXPECT_EQ(codec::fp16_to_float(0x7BFF), 65504.0f);
  EXPECT_EQ(codec::fp16_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(codec::bf16_to_float(0x7F80), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(codec::bf16_to_float(0x7FC0)));
  EXPECT_EQ(codec::bf16_to_float(0x0001), std::ldexp(1.0f, -133));
}

TEST(DTypeDecode, MaxFiniteMatchesLargestCode) {
  for (DType t : kAll) {
    double mx = 0;
    for (uint32_t c = 0; c < num_codes(t); ++c) {
      const double v = ref_decode(t, c);
      if (std::isfinite(v)) mx = std::max(mx, v);
    }
    EXPECT_EQ(double(codec::max_finite(t)), mx) << to_string(t);
  }
}

TEST(DTypeDecode, SmallestStepIsTheSmallestPositiveCode) {
  for (DType t : kAll) {
    double mn = std::numeric_limits<double>::infinity();
    for (uint32_t c = 0; c < num_codes(t); ++c) {
      const double v = ref_decode(t, c);
      if (v > 0) mn = std::min(mn, v);
    }
    EXPECT_EQ(codec::smallest_step(t), mn) << to_string(t);
  }
  EXPECT_EQ(codec::smallest_step(DType::fp32), double(std::numeric_limits<float>::denorm_min()));
}

TEST(DTypeDecode, PoisonCodeIsNaNWhereFormatHasOne) {
  for (DType t : {DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz, DType::fp8_e5m2})
    EXPECT_TRUE(std::isnan(ref_decode(t, codec::poison_code(t)))) << to_string(t);
  // int8 has no NaN: its poison is -128, a code the symmetric quantizer never writes.
  EXPECT_EQ(ref_int8(codec::poison_code(DType::int8)), -128.0);
  for (int i = -1000; i <= 1000; ++i)
    EXPECT_NE(codec::encode(DType::int8, float(i) * 0.25f), codec::poison_code(DType::int8));
}

// ---- round trip -----------------------------------------------------------------------------------

TEST(DTypeRoundTrip, E4M3FnEveryNonNaNCode) { expect_round_trip(DType::fp8_e4m3fn); }
TEST(DTypeRoundTrip, E4M3FnuzEveryNonNaNCode) { expect_round_trip(DType::fp8_e4m3fnuz); }
TEST(DTypeRoundTrip, E5M2EveryFiniteCode) { expect_round_trip(DType::fp8_e5m2); }
TEST(DTypeRoundTrip, Int8EveryCodeButMinus128) {
  for (uint32_t c = 0; c < 256; ++c) {
    if (c == 0x80) continue;  // -128 saturates to -127 by design (symmetric range)
    EXPECT_EQ(codec::encode(DType::int8, float(ref_int8(c))), c);
  }
  EXPECT_EQ(codec::encode(DType::int8, -128.0f), 0x81u);
}
TEST(DTypeRoundTrip, Bf16EveryNonNaNPattern) { expect_round_trip(DType::bf16); }
TEST(DTypeRoundTrip, Fp16EveryNonNaNPattern) { expect_round_trip(DType::fp16); }

TEST(DTypeRoundTrip, BothZerosKeptWhereTheFormatHasThem) {
  EXPECT_EQ(codec::encode(DType::fp8_e4m3fn, -0.0f), 0x80u);
  EXPECT_EQ(codec::encode(DType::bf16, -0.0f), 0x8000u);
  EXPECT_EQ(codec::encode(DType::fp16, -0.0f), 0x8000u);
  EXPECT_EQ(codec::encode(DType::fp8_e4m3fnuz, -0.0f), 0x00u);
  EXPECT_EQ(codec::encode(DType::fp8_e5m2, -0.0f), 0x80u);
  EXPECT_EQ(codec::encode(DType::fp8_e5m2, 0.0f), 0x00u);
}

// ---- round to nearest even -------------------------------------------------------------------

TEST_P(EveryDType, RoundsEveryAdjacentPairToNearestEven) { expect_rne_exhaustive(GetParam()); }
INSTANTIATE_TEST_SUITE_P(Codecs, EveryDType, ::testing::ValuesIn(kAll),
                         [](const ::testing::TestParamInfo<DType>& i) { return std::string(to_string(i.param)); });

TEST(DTypeRounding, Int8TiesToEven) {
  const struct { float x; int q; } cases[] = {
      {0.5f, 0},   {1.5f, 2},    {2.5f, 2},    {3.5f, 4},      {126.5f, 126}, {-0.5f, 0},
      {-1.5f, -2}, {-2.5f, -2},  {-3.5f, -4},  {-126.5f, -126}, {0.49f, 0},   {0.51f, 1},
      {-0.51f, -1}, {125.5f, 126}};
  for (const auto& k : cases)
    EXPECT_EQ(int8_t(codec::encode(DType::int8, k.x)), k.q) << "x=" << k.x;
}

// ---- saturation, overflow, NaN ------------------------------------------------------------------

TEST(DTypeSaturation, E4M3FnSaturatesAt448) {
  const float inf = std::numeric_limits<float>::infinity();
  for (float x : {448.0f, 449.0f, 464.0f, 479.9f, 480.0f, 500.0f, 1e6f, 3e38f, inf}) {
    EXPECT_EQ(codec::encode(DType::fp8_e4m3fn, x), 0x7Eu) << x;
    EXPECT_EQ(codec::encode(DType::fp8_e4m3fn, -x), 0xFEu) << -x;
  }
}
TEST(DTypeSaturation, E4M3FnuzSaturatesAt240) {
  const float inf = std::numeric_limits<float>::infinity();
  for (float x : {240.0f, 241.0f, 247.9f, 248.0f, 255.0f, 1e9f, 3e38f, inf}) {
    EXPECT_EQ(codec::encode(DType::fp8_e4m3fnuz, x), 0x7Fu) << x;
    EXPECT_EQ(codec::encode(DType::fp8_e4m3fnuz, -x), 0xFFu) << -x;
  }
}
// Beyond 57344 e5m2 saturates, even past the midpoint 61440 to the next binade (where an IEEE
// encoder would round to Inf) and for Inf itself: the Inf codes are never written.
TEST(DTypeSaturation, E5M2SaturatesAt57344) {
  const float inf = std::numeric_limits<float>::infinity();
  for (float x : {57344.0f, 57345.0f, std::nextafter(61440.0f, 0.0f), 61440.0f, 65536.0f, 1e6f,
                  3e38f, std::numeric_limits<float>::max(), inf}) {
    EXPECT_EQ(codec::encode(DType::fp8_e5m2, x), 0x7Bu) << x;
    EXPECT_EQ(codec::encode(DType::fp8_e5m2, -x), 0xFBu) << -x;
  }
  // The Inf codes decode to Inf but do not round-trip: encoding them saturates.
  EXPECT_EQ(codec::encode(DType::fp8_e5m2, float(ref_e5m2(0x7C))), 0x7Bu);
  EXPECT_EQ(codec::encode(DType::fp8_e5m2, float(ref_e5m2(0xFC))), 0xFBu);
  // Just below max finite still rounds to nearest: between 49152 (0x7A) and 57344 the midpoint
  // 53248 ties to the even code 0x7A.
  EXPECT_EQ(codec::encode(DType::fp8_e5m2, 53248.0f), 0x7Au);
  EXPECT_EQ(codec::encode(DType::fp8_e5m2, std::nextafter(53248.0f, inf)), 0x7Bu);
}
TEST(DTypeSaturation, Int8SaturatesAt127) {
  const float inf = std::numeric_limits<float>::infinity();
  for (float x : {127.0f, 127.4f, 127.5f, 128.0f, 200.0f, 1e30f, inf}) {
    EXPECT_EQ(int8_t(codec::encode(DType::int8, x)), 127) << x;
    EXPECT_EQ(int8_t(codec::encode(DType::int8, -x)), -127) << -x;
  }
}
TEST(DTypeSaturation, Fp16OverflowsToInf) {
  // 65520 is the midpoint between 65504 and 2^16: ties to even -> Inf.
  EXPECT_EQ(codec::encode(DType::fp16, 65520.0f), 0x7C00u);
  EXPECT_EQ(codec::encode(DType::fp16, -65520.0f), 0xFC00u);
  EXPECT_EQ(codec::encode(DType::fp16, std::nextafter(65520.0f, 0.0f)), 0x7BFFu);
  EXPECT_EQ(codec::encode(DType::fp16, 1e10f), 0x7C00u);
  EXPECT_EQ(codec::encode(DType::fp16, std::numeric_limits<float>::infinity()), 0x7C00u);
}
TEST(DTypeSaturation, Bf16OverflowsToInf) {
  // Midpoint between bf16's max (2 - 2^-7) * 2^127 and 2^128 is (2 - 2^-8) * 2^127.
  const float mid = float(std::ldexp(2.0 - std::ldexp(1.0, -8), 127));
  EXPECT_EQ(codec::encode(DType::bf16, mid), 0x7F80u);
  EXPECT_EQ(codec::encode(DType::bf16, std::nextafter(mid, 0.0f)), 0x7F7Fu);
  EXPECT_EQ(codec::encode(DType::bf16, -std::numeric_limits<float>::max()), 0xFF80u);
}
TEST(DTypeNaN, E4M3FnKeepsSign) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(codec::encode(DType::fp8_e4m3fn, nan), 0x7Fu);
  EXPECT_EQ(codec::encode(DType::fp8_e4m3fn, -nan), 0xFFu);
}
TEST(DTypeNaN, E5M2KeepsSign) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(codec::encode(DType::fp8_e5m2, nan), 0x7Fu);
  EXPECT_EQ(codec::encode(DType::fp8_e5m2, -nan), 0xFFu);
  // A float NaN whose payload lives only in the low bits must not become Inf or a number.
  EXPECT_TRUE(std::isnan(ref_e5m2(codec::encode(DType::fp8_e5m2, bit_cast<float>(0x7F800001u)))));
}
TEST(DTypeNaN, E4M3FnuzSingleNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(codec::encode(DType::fp8_e4m3fnuz, nan), 0x80u);
  EXPECT_EQ(codec::encode(DType::fp8_e4m3fnuz, -nan), 0x80u);
}
TEST(DTypeNaN, SixteenBitStayNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (DType t : {DType::bf16, DType::fp16}) {
    EXPECT_TRUE(std::isnan(ref_decode(t, codec::encode(t, nan)))) << to_string(t);
    EXPECT_TRUE(std::isnan(ref_decode(t, codec::encode(t, -nan)))) << to_string(t);
  }
  // A signalling NaN whose payload lives only in the low bits must not become Inf.
  const float snan = bit_cast<float>(0x7F800001u);
  EXPECT_TRUE(std::isnan(ref_bf16(codec::encode(DType::bf16, snan))));
  EXPECT_TRUE(std::isnan(ref_fp16(codec::encode(DType::fp16, snan))));
}
TEST(DTypeNaN, Int8NaNIsZero) {
  EXPECT_EQ(codec::encode(DType::int8, std::numeric_limits<float>::quiet_NaN()), 0u);
}
TEST(DTypeNaN, E4M3FnuzNeverNaNForNegativeZeroOrTiny) {
  const float min_sub = std::ldexp(1.0f, -10);
  for (float x : {-0.0f, -1e-30f, -std::numeric_limits<float>::denorm_min(),
                  -std::numeric_limits<float>::min(), -min_sub * 0.25f, -min_sub * 0.5f}) {
    EXPECT_EQ(codec::encode(DType::fp8_e4m3fnuz, x), 0x00u) << x;
  }
  EXPECT_EQ(codec::encode(DType::fp8_e4m3fnuz, -min_sub * 0.75f), 0x81u);
  for (uint32_t bits = 0x80000000u; bits < 0x80000000u + (1u << 23) * 118; bits += 4099) {
    EXPECT_NE(codec::encode(DType::fp8_e4m3fnuz, bit_cast<float>(bits)), 0x80u);
  }
}

// ---- compile-time codec and run-time dispatch agree -------------------------------------------

template <DType T>
void expect_codec_agrees() {
  using C = codec::Codec<T>;
  for (uint32_t c = 0; c < num_codes(T); ++c) {
    const float a = C::decode(typename C::Storage(c));
    const float b = codec::decode(T, c);
    ASSERT_EQ(bit_cast<uint32_t>(a), bit_cast<uint32_t>(b)) << to_string(T) << " code " << c;
    // Encode agreement on the decoded value, on a value between codes and on its negation.
    const float probes[] = {a, a * 1.0625f + 0.001f, -a * 0.97f};
    for (float x : probes) ASSERT_EQ(uint32_t(C::encode(x)), codec::encode(T, x)) << x;
  }
}
TEST(DTypeCodec, TemplateAgreesWithRuntimeBf16) { expect_codec_agrees<DType::bf16>(); }
TEST(DTypeCodec, TemplateAgreesWithRuntimeFp16) { expect_codec_agrees<DType::fp16>(); }
TEST(DTypeCodec, TemplateAgreesWithRuntimeE4M3Fn) { expect_codec_agrees<DType::fp8_e4m3fn>(); }
TEST(DTypeCodec, TemplateAgreesWithRuntimeE4M3Fnuz) { expect_codec_agrees<DType::fp8_e4m3fnuz>(); }
TEST(DTypeCodec, TemplateAgreesWithRuntimeE5M2) { expect_codec_agrees<DType::fp8_e5m2>(); }
TEST(DTypeCodec, TemplateAgreesWithRuntimeInt8) { expect_codec_agrees<DType::int8>(); }

TEST(DTypeCodec, Fp32IsBitIdentity) {
  for (uint32_t bits : {0u, 0x3F800000u, 0x80000000u, 0x7F800000u, 0x7FC00001u, 0x00000001u}) {
    EXPECT_EQ(codec::encode(DType::fp32, bit_cast<float>(bits)), bits);
    EXPECT_EQ(bit_cast<uint32_t>(codec::decode(DType::fp32, bits)), bits);
  }
}

// ---- names, sizes, unit roundoff ------------------------------------------------------------------

TEST(DTypeNames, ParseInvertsToString) {
  for (DType t : {DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz, DType::int8,
                  DType::fp32, DType::fp8_e5m2}) {
    const auto p = parse_dtype(to_string(t));
    ASSERT_TRUE(p.has_value()) << to_string(t);
    EXPECT_EQ(*p, t);
  }
  EXPECT_STREQ(to_string(DType::fp8_e5m2), "fp8_e5m2");
  EXPECT_FALSE(parse_dtype("fp8").has_value());
  EXPECT_FALSE(parse_dtype("fp8_e5m2fnuz").has_value());
  EXPECT_FALSE(parse_dtype("").has_value());
}

// The C ABI maps these values 1:1: a new type is appended, an existing value never moves.
TEST(DTypeNames, NumericIdsAreStable) {
  static_assert(int(DType::bf16) == 0 && int(DType::fp16) == 1 && int(DType::fp8_e4m3fn) == 2 &&
                    int(DType::fp8_e4m3fnuz) == 3 && int(DType::int8) == 4 && int(DType::fp32) == 5 &&
                    int(DType::fp8_e5m2) == 6 && kDTypeCount == 7,
                "DType values are an ABI");
  for (int i = 0; i < kDTypeCount; ++i) EXPECT_EQ(int(*parse_dtype(to_string(DType(i)))), i);
}

TEST(DTypeNames, BytesAndPredicates) {
  EXPECT_EQ(dtype_bytes(DType::bf16), 2);
  EXPECT_EQ(dtype_bytes(DType::fp16), 2);
  EXPECT_EQ(dtype_bytes(DType::fp8_e4m3fn), 1);
  EXPECT_EQ(dtype_bytes(DType::fp8_e4m3fnuz), 1);
  EXPECT_EQ(dtype_bytes(DType::int8), 1);
  EXPECT_EQ(dtype_bytes(DType::fp32), 4);
  EXPECT_EQ(dtype_bytes(DType::fp8_e5m2), 1);
  EXPECT_TRUE(is_fp8(DType::fp8_e4m3fnuz));
  EXPECT_TRUE(is_fp8(DType::fp8_e5m2));
  EXPECT_TRUE(is_8bit(DType::fp8_e5m2));
  EXPECT_TRUE(is_e4m3(DType::fp8_e4m3fn));
  EXPECT_TRUE(is_e4m3(DType::fp8_e4m3fnuz));
  EXPECT_FALSE(is_e4m3(DType::fp8_e5m2));
  EXPECT_FALSE(is_e4m3(DType::int8));
  EXPECT_FALSE(is_fp8(DType::int8));
  EXPECT_TRUE(is_8bit(DType::int8));
  EXPECT_FALSE(is_8bit(DType::bf16));
}

// The unit roundoff bounds the relative error of one rounding of a normal value: checked on every
// normal code's neighbourhood (the midpoint is the worst case and errs by exactly u * |lo|/|mid|).
TEST(DTypeNames, UnitRoundoffBoundsFloatRounding) {
  for (DType t : {DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz, DType::fp8_e5m2}) {
    const double u = codec::unit_roundoff(t);
    double worst = 0;
    const auto codes = positive_finite_codes(t);
    for (size_t i = 0; i + 1 < codes.size(); ++i) {
      const double a = ref_decode(t, codes[i]), b = ref_decode(t, codes[i + 1]);
      const int bias = t == DType::bf16 ? 127 : (t == DType::fp16 || t == DType::fp8_e5m2) ? 15
                       : t == DType::fp8_e4m3fn ? 7 : 8;
      if (a < std::ldexp(1.0, 1 - bias)) continue;  // subnormals have a larger relative spacing
      worst = std::max(worst, (b - a) / 2 / a);
    }
    EXPECT_DOUBLE_EQ(worst, u) << to_string(t);
  }
}

}  // namespace
}  // namespace pa
