#include "tools/case_sources.hpp"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/json_input.hpp"

namespace pa::tools {

namespace {

using nlohmann::json;

Case one_case(const json& j, const std::string& where) {
  try {
    // A regression corpus file wraps the case with its expectation; its name labels the case.
    if (j.is_object() && j.contains("case") && j.at("case").is_object()) {
      Case c = case_from_json(j.at("case"));
      if (c.name.empty() && j.contains("name") && j.at("name").is_string()) c.name = j.at("name").get<std::string>();
      check_valid(c);
      return c;
    }
    Case c = case_from_json(j);
    check_valid(c);
    return c;
  } catch (const InputError& e) {
    throw InputError(where + ": " + e.what());
  }
}

}  // namespace

std::vector<Case> parse_cases(const std::string& text, const std::string& what) {
  const json j = parse_json(text, what);
  std::vector<Case> out;
  if (j.is_array()) {
    if (j.empty()) throw InputError(what + ": an empty array holds no case");
    for (size_t i = 0; i < j.size(); ++i) out.push_back(one_case(j[i], what + ": [" + std::to_string(i) + "]"));
  } else {
    out.push_back(one_case(j, what));
  }
  return out;
}

std::vector<Case> load_case_file(const std::string& path) {
  return parse_cases(read_file(path), path);
}

std::vector<Case> load_case_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw InputError("--regression " + dir + ": not a directory");
  std::vector<std::string> files;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); ++it)
    if (it->is_regular_file() && it->path().extension() == ".json") files.push_back(it->path().string());
  std::sort(files.begin(), files.end());
  std::vector<Case> out;
  for (const std::string& f : files)
    for (Case& c : load_case_file(f)) out.push_back(std::move(c));
  return out;
}

Case one_case(const std::string& v, const std::string& flag) {
  const size_t first = v.find_first_not_of(" \t\n");
  const bool text = first != std::string::npos && v[first] == '{';
  const std::vector<Case> cs = text ? parse_cases(v, flag) : load_case_file(v);
  if (cs.size() != 1) throw InputError(flag + " " + v + ": holds " + std::to_string(cs.size()) + " cases; one is expected");
  return cs.front();
}

}  // namespace pa::tools
