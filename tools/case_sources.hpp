#pragma once
// Where cases come from besides the built-in suites: case files and the regression corpus.
#include <string>
#include <vector>

#include "core/case.hpp"

namespace pa::tools {

/// One case or an array of cases (core/case.hpp JSON), or a regression corpus file
/// ({"name", ..., "case": {...}}). Bad JSON, unknown fields and invalid cases throw InputError
/// naming the file, the entry and the field.
std::vector<Case> load_case_file(const std::string& path);
/// The same for JSON text given on the command line (`--case '{...}'`); `what` names it in errors.
std::vector<Case> parse_cases(const std::string& text, const std::string& what);
/// Every *.json under `dir` (recursively, sorted by path).
std::vector<Case> load_case_dir(const std::string& dir);

/// The value of a --case flag that takes one case: JSON text (starting with '{') or a file holding
/// exactly one case. Throws InputError naming the flag otherwise.
Case one_case(const std::string& value, const std::string& flag);

}  // namespace pa::tools
