#pragma once
// The command line, on CLI11: every subcommand declares its flags as a table of Flag, from which
// CLI11 parses and generates `--help`. An unknown flag, a missing value or a flag given twice is
// an InputError carrying CLI11's message, which names the flag (exit code 2).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace pa::tools {

struct Flag {
  std::string name;     // without dashes: "suite"; a one-letter name is also spelled "-o"
  std::string metavar;  // "" = a switch without a value
  std::string help;
  bool repeatable = false;
  std::string group = "flags";  // the heading it is listed under in --help
  std::string letter = "";      // a one-letter spelling, "j" for -j
};

class Args {
 public:
  Args(std::string command, std::string summary, std::vector<Flag> flags, std::string positional = "",
       size_t max_positional = 0);
  ~Args();
  /// Parses argv[begin..argc). Returns false when --help/-h was given (print help_text()).
  /// Throws InputError with CLI11's message: "The following argument was not expected: --x", ...
  bool parse(int argc, char** argv, int begin);

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& dflt = "") const;
  const std::vector<std::string>& all(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }
  std::string help_text() const;

 private:
  std::unique_ptr<CLI::App> app_;
  std::vector<Flag> flags_;
  size_t max_positional_;
  std::map<std::string, std::vector<std::string>> values_;
  std::map<std::string, std::vector<std::string>> raw_;  // CLI11's targets of repeatable flags
  std::map<std::string, std::string> single_;            // ... and of the others
  std::map<std::string, CLI::Option*> options_;
  std::map<std::string, int64_t> switches_;              // switch counts, by flag name
  std::vector<std::string> positional_;
};

/// Strict integer parsing with errors naming the flag and the value.
uint64_t parse_u64(const std::string& flag, const std::string& value);
int64_t parse_i64(const std::string& flag, const std::string& value);

}  // namespace pa::tools
