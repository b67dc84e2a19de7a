#pragma once
// The regression corpus: one JSON file per real incident (docs/incidents.md), per real model head config
// (docs/kernels.md), and per failure captured by the property suite. Files live in regression/cases/
// (hand-written) and regression/captured/ (written by the property suite); the runner executes
// every one of them on every path and backend available.
//
// File format (regression/cases/*.json):
//   { "name": "...", "kind": "incident" | "model" | "captured", "description": "one paragraph",
//     "device": "mi300x",                        // the device model the expectation is for
//     "expect": { "path": "hip" }                // the dispatcher's decision, or
//     "expect": { "path": null, "refusal_contains": "e4m3fnuz" },
//     "must_pass": ["hip"],                      // paths that must run it and pass
//     "case": { ...Case JSON (core/case.hpp)... } }
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "core/case.hpp"
#include "core/device.hpp"

namespace pa {

struct RegressionCase {
  std::string file;                 // where it was loaded from (named in every error)
  std::string name, kind, description;
  Device device;
  std::optional<std::string> expect_path;  // the kernel the dispatcher must choose; nullopt: it must refuse
  std::string refusal_contains;       // for refusals: a word the error must name
  std::vector<std::string> must_pass;      // kernels that must run it and pass (when registered)
  Case c;
};

inline std::ostream& operator<<(std::ostream& os, const RegressionCase& r) { return os << r.file; }

/// Parses one corpus file. Missing, unreadable or malformed files throw InputError naming the
/// file and the field.
RegressionCase load_regression_case(const std::string& path);
/// Every *.json directly under `dir`, sorted by file name. A missing directory is an error; an
/// empty one returns nothing.
std::vector<RegressionCase> load_corpus(const std::string& dir);

/// Saves a failing case (e.g. shrunk by the property suite) as regression/captured/<slug>.json so
/// it is re-run forever. Returns the path written. Writing is atomic (temp file + rename).
std::string capture_case(const std::string& dir, const Case& c, const std::string& description,
                         const Device& dev, const std::vector<std::string>& must_pass);

/// The corpus directories of this checkout (regression/cases, regression/captured).
std::string corpus_dir();
std::string captured_dir();

}  // namespace pa
