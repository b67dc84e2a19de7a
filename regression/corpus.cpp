#include "regression/corpus.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/json_input.hpp"
#include "core/source_dir.hpp"

#ifndef PACHECK_SOURCE_DIR
#define PACHECK_SOURCE_DIR "."
#endif

namespace pa {

namespace fs = std::filesystem;

std::string corpus_dir() { return source_dir(PACHECK_SOURCE_DIR) + "/regression/cases"; }
std::string captured_dir() { return source_dir(PACHECK_SOURCE_DIR) + "/regression/captured"; }

RegressionCase load_regression_case(const std::string& path) {
  const nlohmann::json j = read_json_file(path);
  auto fail = [&](const std::string& what) { throw InputError(path + ": " + what); };
  if (!j.is_object()) fail("expected a JSON object");
  RegressionCase r;
  r.file = path;
  try {
    r.name = j.value("name", fs::path(path).stem().string());
    r.kind = j.value("kind", std::string("incident"));
    r.description = j.value("description", std::string());
    const std::string dev = j.value("device", std::string("mi300x"));
    auto d = device_model(dev);
    if (!d) fail("device=" + dev + ": unknown device model (" + device_model_names() + ")");
    r.device = *d;
    if (!j.contains("case")) fail("missing field 'case'");
    r.c = case_from_json(j.at("case"));
    if (r.c.name.empty()) r.c.name = r.name;
    if (j.contains("expect")) {
      const auto& e = j.at("expect");
      if (!e.is_object() || !e.contains("path")) fail("expect: needs {\"path\": name or null}");
      if (!e.at("path").is_null()) {
        r.expect_path = e.at("path").get<std::string>();
        if (r.expect_path->empty()) fail("expect.path: empty kernel name");
      }
      r.refusal_contains = e.value("refusal_contains", std::string());
    }
    r.must_pass = j.value("must_pass", std::vector<std::string>());
    for (const auto& p : r.must_pass)
      if (p.empty()) fail("must_pass: empty kernel name");
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("bad field: ") + e.what());
  } catch (const InputError& e) {
    const std::string msg = e.what();
    if (msg.rfind(path, 0) == 0) throw;
    fail(msg);
  }
  const auto errs = validate(r.c);
  if (!errs.empty()) {
    std::string msg = "invalid case:";
    for (const auto& m : errs) msg += "\n  " + m;
    fail(msg);
  }
  return r;
}

std::vector<RegressionCase> load_corpus(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw InputError(dir + ": regression directory not found");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  std::vector<RegressionCase> out;
  for (const auto& f : files) out.push_back(load_regression_case(f));
  return out;
}

std::string capture_case(const std::string& dir, const Case& c, const std::string& description,
                         const Device& dev, const std::vector<std::string>& must_pass) {
  fs::create_directories(dir);
  nlohmann::json j;
  j["name"] = slug(c);
  j["kind"] = "captured";
  j["description"] = description;
  j["device"] = dev.name;
  j["must_pass"] = must_pass;
  j["case"] = to_json(c);
  const std::string target = dir + "/" + slug(c) + ".json";
  const std::string tmp = target + ".tmp";
  {
    std::ofstream f(tmp);
    if (!f) throw InputError(tmp + ": cannot write captured case");
    f << j.dump(2) << "\n";
  }
  fs::rename(tmp, target);
  return target;
}

}  // namespace pa
