#pragma once
// Reporters share one interface (google/benchmark's habit): the run loop hands each finished case
// to every reporter; the console reporter prints lines and progress, the JSON reporter streams the
// records to the report file.
#include <chrono>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "reports/report.hpp"

namespace pa::report {

class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void begin(const Context& context, int64_t total_cases) = 0;
  /// All records of one case (one per path, plus "auto").
  virtual void on_case(const std::vector<Record>& records) = 0;
  virtual void end(const Summary& summary) = 0;
};

struct ConsoleOptions {
  bool quiet = false;  // only failures and the summary
  bool tty = false;    // progress as one updating line; otherwise plain lines every ~10% or 5 s
  bool detail = false; // every record's metrics and tolerance, not only the failing ones' message
                       // (`pacheck replay`: one case, looked at closely)
};

/// Per-case lines ("status per path, chosen path"; failures with message and replay line),
/// progress, and the final summary ending in exactly "N passed, M failed".
class ConsoleReporter : public Reporter {
 public:
  ConsoleReporter(std::ostream& out, ConsoleOptions options);
  void begin(const Context& context, int64_t total_cases) override;
  void on_case(const std::vector<Record>& records) override;
  void end(const Summary& summary) override;

 private:
  void progress(bool force);
  void detail(const std::vector<Record>& records);
  std::ostream& out_;
  ConsoleOptions opt_;
  int64_t total_ = 0, done_ = 0, failed_cases_ = 0;
  std::chrono::steady_clock::time_point start_, last_progress_;
  int64_t last_decile_ = 0;
  bool progress_shown_ = false;
};

/// Streams records through a ReportWriter and writes the final report at end().
class JsonReporter : public Reporter {
 public:
  explicit JsonReporter(std::string path, bool follow_symlink = false)
      : path_(std::move(path)), follow_symlink_(follow_symlink) {}
  void begin(const Context& context, int64_t total_cases) override;
  void on_case(const std::vector<Record>& records) override;
  void end(const Summary& summary) override;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool follow_symlink_;
  std::unique_ptr<ReportWriter> writer_;
};

/// "  3 cases, 9 records: 6 Ok, 0 Fail, 3 NotSupported, 0 Skipped (1.2 s)".
std::string summary_line(const Summary& s);
/// "ragged family: ..." counts of the ragged family's cases (Summary::families), or "" when the run has none.
std::string families_line(const Summary& s);

}  // namespace pa::report
