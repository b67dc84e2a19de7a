#pragma once
// A small, strict command-line parser: every flag is declared with its help line, so `--help` is
// generated from the same table that parsing uses, and an unknown flag or a missing value is an
// InputError naming the flag (exit code 2).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pa::tools {

struct Flag {
  std::string name;     // without dashes: "suite"
  std::string metavar;  // "" = a switch without a value
  std::string help;
  bool repeatable = false;
};

class Args {
 public:
  Args(std::string command, std::string summary, std::vector<Flag> flags, std::string positional = "",
       size_t max_positional = 0);
  /// Parses argv[begin..argc). Returns false when --help/-h was given (print help_text()).
  /// Throws InputError: "unknown flag --x for 'pacheck run'", "--seed needs a value", ...
  bool parse(int argc, char** argv, int begin);

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& dflt = "") const;
  const std::vector<std::string>& all(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }
  /// Flags given, in order, that are not declared (only when allow_extra() was called).
  const std::vector<std::pair<std::string, std::string>>& extra() const { return extra_; }
  /// Accept undeclared `--name value` pairs into extra() (replay's case-field flags).
  void allow_extra(std::string help) { allow_extra_ = true; extra_help_ = std::move(help); }
  std::string help_text() const;

 private:
  std::string command_, summary_, positional_help_, extra_help_;
  size_t max_positional_;
  std::vector<Flag> flags_;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
  std::vector<std::pair<std::string, std::string>> extra_;
  bool allow_extra_ = false;
};

/// Strict integer / enum parsing with errors naming the flag and the value.
uint64_t parse_u64(const std::string& flag, const std::string& value);
int64_t parse_i64(const std::string& flag, const std::string& value);

}  // namespace pa::tools
