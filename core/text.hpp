#pragma once
// Small text helpers every folder uses, in one place.
#include <cstdint>
#include <string>
#include <vector>

namespace pa {

/// "a, b, c" for join({"a","b","c"}, ", ").
inline std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

/// 64-bit FNV-1a of bytes, continuing from `h` (case keys, input hashes, golden hashes).
inline uint64_t fnv1a(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}
inline uint64_t fnv1a(const std::string& s, uint64_t h = 0xcbf29ce484222325ull) {
  return fnv1a(s.data(), s.size(), h);
}

/// The whole content of a file. Throws InputError naming the file when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace pa
