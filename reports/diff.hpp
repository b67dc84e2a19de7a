#pragma once
// Differences between two reports, keyed by (case slug, path, backend): what a nightly job gates on.
#include <ostream>
#include <string>
#include <vector>

#include "reports/report.hpp"

namespace pa::report {

struct DiffThresholds {
  // An accuracy metric (max_err_norm, rel_rms) regresses when it grew by more than metric_ratio
  // and is above metric_floor: a growth from 1e-7 to 1e-6 is rounding noise, not a bug.
  double metric_ratio = 2.0;
  double metric_floor = 1e-3;
  // A path's time regresses when it grew by more than timing_ratio and is above timing_floor_ms
  // (sub-millisecond host timings jitter by more than 1.5x).
  double timing_ratio = 1.5;
  double timing_floor_ms = 1.0;
  // Correctness records carry timings for the record, not as a gate: a busy machine makes a clean
  // run look slower (seen on a 2-core CI box). Timing regressions are judged on bench records,
  // with a noise threshold from their repetitions; timing=on gates correctness records too.
  bool timing = false;
  // Bench records regress when the median grew beyond 3 interquartile spreads and this fraction.
  double bench_floor = 0.05;
};

enum class DiffKind {
  newly_failing,     // Fail now, not Fail before                      (regression)
  lost_support,      // Ok before, NotSupported now                    (regression)
  metric_regression, // accuracy metric beyond the thresholds          (regression)
  decision_changed,  // the dispatcher picks another path              (regression)
  timing_regression, // path time beyond the thresholds                (regression)
  fixed,             // Fail before, not Fail now
  status_changed,    // any other status change (e.g. Skipped -> Ok)
  added,             // only in the new report
  removed,           // only in the base report
};
const char* to_string(DiffKind k);
bool is_regression(DiffKind k);

struct DiffEntry {
  DiffKind kind;
  std::string key;     // "slug path backend"
  std::string detail;  // what changed, with numbers
  std::string replay;  // to reproduce (new report's, else base's)
};

struct DiffResult {
  std::vector<DiffEntry> entries;
  int regressions() const;
};

DiffResult diff(const Report& base, const Report& next, const DiffThresholds& t = {});

/// Human-readable listing grouped by kind, ending in "N regressions" (or "no regressions").
void print_diff(std::ostream& out, const DiffResult& d);

/// Sets one threshold from "key=value" (metric_ratio, metric_floor, timing_ratio, timing_floor_ms,
/// timing=on|off). Throws InputError naming the key or value on a bad setting.
void set_threshold(DiffThresholds& t, const std::string& key_value);

}  // namespace pa::report
