#include "fuzz/targets.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "core/case.hpp"
#include "core/json_input.hpp"
#include "reports/diff.hpp"
#include "reports/report.hpp"
#include "worker/protocol.hpp"

namespace pa::fuzz {

namespace {

// A property that does not hold is a finding: abort, so libFuzzer saves the input.
void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz property failed: %s\n", what);
  std::abort();
}

void one_case(const nlohmann::json& j) {
  try {
    // A corpus file wraps the case with its expectation.
    const nlohmann::json& cj = j.is_object() && j.contains("case") ? j.at("case") : j;
    const Case c = case_from_json(cj);
    if (!validate(c).empty()) return;
    const std::string v = vars(c);
    (void)slug(c);
    (void)c.pool_blocks();
    (void)c.page_stride();
    const Case back = case_from_json(nlohmann::json::parse(to_json(c).dump()));
    require(vars(back) == v && back.name == c.name, "a valid case round-trips through JSON");
  } catch (const InputError&) {
  }
}

}  // namespace

void case_reader(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const nlohmann::json j = parse_json(text, "fuzz");
    if (!j.is_array()) return one_case(j);
    for (const nlohmann::json& e : j) one_case(e);  // a case file may hold an array of cases
  } catch (const InputError&) {
  }
}

void report_reader(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const report::Report rep = report::parse_report_text(text);
    const nlohmann::json once = report::to_json(rep);
    const report::Report back = report::parse_report_text(once.dump());
    require(report::to_json(back) == once, "an accepted report round-trips through JSON");
    require(report::diff(rep, rep).regressions() == 0, "a report has no regression against itself");
  } catch (const InputError&) {
  }
}

void worker_protocol(const uint8_t* data, size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  try {
    const nlohmann::json j = parse_json(line, "worker line");
    if (!j.is_object()) return;
    if (j.contains("problem")) (void)worker::problem_from_json(j.at("problem"));
    if (j.contains("capability")) (void)worker::capability_from_json(j.at("capability"), "fuzz");
    if (j.contains("numerics")) (void)worker::numerics_from_json(j.at("numerics"), "fuzz");
    if (j.contains("kernels") && j.at("kernels").is_array())
      for (const nlohmann::json& k : j.at("kernels")) {
        if (!k.is_object()) continue;
        if (k.contains("capability")) (void)worker::capability_from_json(k.at("capability"), "fuzz");
        if (k.contains("numerics")) (void)worker::numerics_from_json(k.at("numerics"), "fuzz");
      }
  } catch (const InputError&) {
  }
}

}  // namespace pa::fuzz
