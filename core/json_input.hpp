#pragma once
// The one way pacheck reads JSON it did not write in this process: case files, corpus files,
// goldens, reports and `.partial` files all come through here, so every reader gets the same
// limits and the same messages. nlohmann's parser recurses once per nesting level and converts
// numbers with plain casts, so a hostile file could overflow the stack, and a float such as 1e19
// read into an integer is undefined behaviour; the limits below are checked before it parses,
// and json_integer() converts numbers only when the value fits.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace pa {

/// Limits on any JSON input (docs/cli.md, "Input limits"). Far above what pacheck itself writes
/// (a report nests 5 levels; its largest strings are kernel messages), far below what costs
/// gigabytes of memory or a stack overflow to parse.
inline constexpr size_t kMaxInputBytes = size_t(256) << 20;  // a file, or a case given as text
inline constexpr int kMaxJsonDepth = 256;                    // nested arrays and objects
inline constexpr size_t kMaxJsonString = size_t(1) << 20;    // one string (a key or a value)

/// Parses `text`; `what` (a file name, a flag; may be empty) starts every message. Throws InputError when the
/// text exceeds a limit, is not valid JSON, or holds a number beyond the range of a double (the
/// message names the key it belongs to).
nlohmann::json parse_json(std::string_view text, const std::string& what);
/// As parse_json, but text that is not valid JSON returns nullopt (limits still throw): for
/// readers that try one form and then another.
std::optional<nlohmann::json> try_parse_json(std::string_view text, const std::string& what);
/// read_file() and parse_json() of a whole file.
nlohmann::json read_json_file(const std::string& path);

/// The JSON value as an integer of type T when it is one and fits: an integer in T's range, or a
/// float with no fractional part in that range. nullopt for anything else (a string, 64.7, -1
/// for an unsigned T, 1e10 for an int32_t).
template <class T>
std::optional<T> json_integer(const nlohmann::json& v) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>, "integers only");
  using L = std::numeric_limits<T>;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(L::max())) return std::nullopt;
    return T(u);
  }
  if (v.is_number_integer()) {
    const int64_t s = v.get<int64_t>();
    if (s < 0 && (!L::is_signed || s < int64_t(L::min()))) return std::nullopt;
    if (s > 0 && uint64_t(s) > uint64_t(L::max())) return std::nullopt;
    return T(s);
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    // L::digits value bits: T's max is 2^digits - 1, so 2^digits is the first double too large.
    if (!std::isfinite(d) || d != std::floor(d) || d < double(L::min()) || d >= std::ldexp(1.0, L::digits))
      return std::nullopt;
    return T(d);
  }
  return std::nullopt;
}

/// "[-2147483648, 2147483647]" for int32_t: the range a message names.
template <class T>
std::string integer_range() {
  return "[" + std::to_string(std::numeric_limits<T>::min()) + ", " + std::to_string(std::numeric_limits<T>::max()) + "]";
}

}  // namespace pa
