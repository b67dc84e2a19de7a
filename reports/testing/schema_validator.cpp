#include "reports/testing/schema_validator.hpp"

#include <cmath>

namespace pa::report {

namespace {

using nlohmann::json;

bool has_type(const json& v, const std::string& t) {
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "string") return v.is_string();
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  if (t == "number") return v.is_number();
  if (t == "integer")
    return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
  return false;
}

void check(const json& s, const json& v, const std::string& at, std::vector<std::string>& errs) {
  static const char* kKnown[] = {"type", "required", "properties", "items", "enum",
                                 "$schema", "$id", "title", "description"};
  for (auto it = s.begin(); it != s.end(); ++it) {
    bool known = false;
    for (const char* k : kKnown) known |= it.key() == k;
    if (!known) errs.push_back(at + ": schema keyword '" + it.key() + "' is not supported by this validator");
  }
  if (s.contains("type")) {
    const json& t = s["type"];
    bool ok = false;
    if (t.is_string()) ok = has_type(v, t.get<std::string>());
    else for (const json& x : t) ok |= has_type(v, x.get<std::string>());
    if (!ok) {
      errs.push_back(at + ": expected type " + t.dump() + ", got " + v.dump().substr(0, 80));
      return;  // the remaining keywords assume the type
    }
  }
  if (s.contains("enum")) {
    bool found = false;
    for (const json& e : s["enum"]) found |= e == v;
    if (!found) errs.push_back(at + ": " + v.dump() + " not in " + s["enum"].dump());
  }
  if (v.is_object()) {
    if (s.contains("required"))
      for (const json& k : s["required"])
        if (!v.contains(k.get<std::string>())) errs.push_back(at + ": missing required '" + k.get<std::string>() + "'");
    if (s.contains("properties"))
      for (auto it = s["properties"].begin(); it != s["properties"].end(); ++it)
        if (v.contains(it.key())) check(it.value(), v[it.key()], at + "/" + it.key(), errs);
  }
  if (v.is_array() && s.contains("items"))
    for (size_t i = 0; i < v.size(); ++i) check(s["items"], v[i], at + "/" + std::to_string(i), errs);
}

}  // namespace

std::vector<std::string> validate_schema(const json& schema, const json& doc) {
  std::vector<std::string> errs;
  check(schema, doc, "", errs);
  return errs;
}

}  // namespace pa::report
