#include "core/json_input.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "core/case.hpp"

namespace pa {

namespace {

std::string bytes_text(size_t n) { return std::to_string(n) + " bytes"; }

// One pass over the text before nlohmann sees it: nesting depth, string lengths and numbers a
// double cannot hold (nlohmann reports those without a position; here the key is known).
void check_shape(std::string_view t, const std::string& where) {
  const std::string pre = where.empty() ? "" : where + ": ";  // the caller may add the file's name itself
  if (t.size() > kMaxInputBytes)
    throw InputError(pre + bytes_text(t.size()) + " of JSON; the limit is " + bytes_text(kMaxInputBytes));
  int depth = 0;
  std::string_view last_string, key;
  for (size_t i = 0; i < t.size(); ++i) {
    const char ch = t[i];
    if (ch == '"') {
      size_t j = i + 1;
      while (j < t.size() && t[j] != '"') j += t[j] == '\\' ? 2 : 1;
      const size_t len = std::min(j, t.size()) - (i + 1);
      if (len > kMaxJsonString)
        throw InputError(pre + "a string of " + bytes_text(len) + " at byte " + std::to_string(i) +
                         "; the limit is " + bytes_text(kMaxJsonString) + " per string");
      last_string = t.substr(i + 1, len);
      i = j;
    } else if (ch == ':') {
      key = last_string;
    } else if (ch == '[' || ch == '{') {
      if (++depth > kMaxJsonDepth)
        throw InputError(pre + "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels (at byte " +
                         std::to_string(i) + ")");
    } else if (ch == ']' || ch == '}') {
      depth = std::max(0, depth - 1);
    } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
      size_t j = i;
      while (j < t.size() && (std::isdigit(static_cast<unsigned char>(t[j])) || t[j] == '-' || t[j] == '+' ||
                              t[j] == '.' || t[j] == 'e' || t[j] == 'E'))
        ++j;
      const std::string num(t.substr(i, j - i));
      errno = 0;
      const double d = std::strtod(num.c_str(), nullptr);
      if (errno == ERANGE && std::isinf(d))
        throw InputError(pre + (key.empty() ? std::string("a value") : "field '" + std::string(key) + "'") +
                         ": number " + (num.size() > 40 ? num.substr(0, 40) + "..." : num) +
                         " is beyond the range of a double");
      i = j - 1;
    }
  }
}

}  // namespace

std::optional<nlohmann::json> try_parse_json(std::string_view text, const std::string& what) {
  check_shape(text, what);
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

nlohmann::json parse_json(std::string_view text, const std::string& what) {
  check_shape(text, what);
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    throw InputError(what + ": not valid JSON: " + e.what());
  }
}

nlohmann::json read_json_file(const std::string& path) { return parse_json(read_file(path), path); }

}  // namespace pa
