#pragma once
// The JSON regression report (schema documented in reports/SCHEMA.md, machine-checkable in
// reports/report.schema.json). A report is a `context` block (what ran, where, from which commit),
// one record per case x path, and a summary. Records are plain data: the testbed's CaseRecord is
// converted into them by the caller, so this library depends only on core/.
//
// Two on-disk forms, both read by load_report():
//  * the final report: one JSON object, written to a temporary file and rename()d over the target,
//    so a reader never sees half a report;
//  * `<file>.partial`: JSON Lines written while the run goes (line 1 the context, then one record
//    per line, flushed as each case completes), so a crash leaves every finished record readable.
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/device.hpp"
#include "core/metrics.hpp"

namespace pa::report {

/// Bumped on any change a reader must know about (renamed/removed field, changed meaning).
/// Adding an optional field does not bump it.
inline constexpr int kSchemaVersion = 1;
/// Bumped when an optional field is added that tools act on; readers of any minor read all of them.
/// 1: `summary.complete`.
inline constexpr int kSchemaMinor = 1;


/// A kernel under test, as the context block names it (version and provenance of plug-ins).
struct KernelInfoRecord {
  std::string name, version, provenance, source, memory;
};

struct Context {
  int schema_version = kSchemaVersion;
  int schema_minor = kSchemaMinor;  // absent (0) in reports written before summary.complete
  std::string pacheck_version;  // project version from CMake
  std::string git_commit;       // `git rev-parse --short HEAD` at configure time, or "unknown"
  std::string compiler;         // e.g. "gcc 12.2.0"
  Device device;            // the device model the dispatcher routed for (core/device.hpp)
  std::string backend;          // "host" or "gpu"
  std::string backend_reason;   // why this backend (e.g. "auto: no GPU: built without GPU support")
  std::string runtime_version = "n/a", driver_version = "n/a";
  std::string gpu_compiler = "n/a";  // optional: the GPU compiler of pacheck's device code (the toolchain is a root cause)
  uint64_t seed = 0;
  std::string suite;            // "smoke", "ci", "nightly", "case:FILE", "regression:DIR"
  std::vector<std::string> paths;
  std::vector<KernelInfoRecord> kernels;  // optional: each kernel's version, provenance and source
  std::string shard;            // optional: "i/n" when the run was one shard of n ("" = whole run)
  std::string inputs = "host";  // optional: where inputs were generated and the oracle ran, "host" or "device"
  std::string inputs_reason;    // optional: why there
  std::string started_utc;      // ISO-8601, e.g. "2026-11-22T22:14:00Z"
};

struct Declined {
  std::string path, reason;
};

struct DecisionInfo {
  std::string chosen;           // empty = nothing supports the case (JSON null)
  std::string why;              // the rule that chose it
  std::vector<Declined> declined;
  int64_t workspace_bytes = 0;
  std::string error;            // Decision::error() when nothing supports the case
};

struct Timings {
  double inputs_ms = 0;     // make_inputs + pack
  double reference_ms = 0;  // reference_attention
  double path_ms = 0;       // kernel time (GPU events) or host-twin wall time
  double wall_ms = 0;       // the path's whole step (launch, copies, compare)
};

/// One case x path.
struct Record {
  int64_t case_index = 0;       // position of the case in the run
  std::string slug, vars, name;
  nlohmann::json case_json;     // the case itself (core/case.hpp JSON); replayable
  std::string input_hash;       // hex of input_hash(make_inputs(case)), "" when not generated
  std::string path;             // "v1", "hip", "asm" or "auto"
  std::string ran;              // the path that actually ran ("" when none)
  std::string backend;          // "host" or "gpu"
  DecisionInfo decision;
  Status status = Status::Ok;
  std::string metric;           // the metric that decided a Fail
  std::string message;
  Metrics metrics;
  LseMetrics lse;               // count 0 = not judged (the kernel declares no LSE)
  Tolerance tolerance;
  std::string replay;
  Timings timings;
  std::string oracle = "cpu";       // optional: where the oracle ran, "cpu", "gpu" or "none" (no kernel ran)
  double oracle_disagreement = -1;  // optional: GPU oracle vs CPU oracle on this case (-1: not cross-checked)

  /// The identity diff() keys records by: "slug path backend".
  std::string key() const { return slug + " " + path + " " + backend; }
};

struct Summary {
  int64_t cases = 0, records = 0;
  int64_t ok = 0, fail = 0, not_supported = 0, skipped = 0;
  double elapsed_ms = 0;
  bool interrupted = false;  // SIGINT stopped the run early
  bool complete = true;      // every case of the run has its records (false: interrupted, or cut off)
  int64_t oracle_cross_checked = 0;    // cases whose GPU oracle was cross-checked against the CPU one
  double oracle_max_disagreement = 0;  // the largest disagreement among them
  /// Cases of the ragged family, counted from the cases themselves: "ragged" (cases
  /// with per-sequence q_lens), "ragged q_len <class>" (ragged cases holding a sequence of that
  /// class: decode 1, mtp 2-4, mtp 5-8, mtp 9-16, extend 17+), "page_table <form>" (every case),
  /// "head_size_v" (Dv != D) and "empty_rows". Optional in JSON (summary.families): absent in
  /// reports written before it, which read as all zero.
  std::map<std::string, int64_t> families;
};

/// One benchmark measurement: one kernel on one decode shape. Optional and additive (schema
/// extension, no version bump): reports without a `bench` array read as before.
struct BenchRecord {
  std::string kernel;              // "v1", "hip", "asm"
  std::string model;               // the shape family, e.g. "llama3_70b_tp1"
  std::string kv_dtype;            // "bf16", "fp8_e4m3fn", ...
  int64_t num_seqs = 0;            // concurrency (decode batch)
  int64_t context = 0;             // tokens per sequence
  double median_ms = 0;            // median of the timed repetitions
  double spread_ms = 0;            // their spread (max - min), so noise is visible beside the median
  int64_t bytes = 0;               // bytes the step must move (KV pages + Q + out)
  double bandwidth_gbs = 0;        // bytes / median
  double fraction_of_stream = 0;   // bandwidth_gbs / the device's measured stream bandwidth
  double regret = std::numeric_limits<double>::quiet_NaN();  // chosen/fastest - 1; NaN = absent
  std::string chosen;              // the dispatcher's path for this shape ("" = refused)
  std::string fastest;             // the fastest kernel measured on this shape
  std::string timing;              // "gpu" (device events) or "host" (wall clock)
};

struct Report {
  Context context;
  std::vector<Record> cases;
  Summary summary;
  std::vector<BenchRecord> bench;  // empty when the run measured nothing
  bool complete = true;  // false when read from a .partial file or the summary says so
};

/// Why `r` must not stand for a whole run (merge, diff): it is incomplete or holds no record.
/// Empty when it may. `name` (the file) starts the message.
std::string unusable_as_whole(const Report& r, const std::string& name);

/// Counts per status and distinct case indices.
Summary summarize(const std::vector<Record>& records);

/// "pacheck <version> (<commit>)" and compiler strings compiled into this library.
std::string pacheck_version();
std::string git_commit();
std::string compiler_id();
/// Current time as "YYYY-MM-DDThh:mm:ssZ".
std::string utc_now();

nlohmann::json to_json(const Context& c);
nlohmann::json to_json(const Record& r);
nlohmann::json to_json(const Summary& s);
nlohmann::json to_json(const BenchRecord& b);
nlohmann::json to_json(const Report& r);
/// Parse back; throw InputError naming the field on a malformed document.
Context context_from_json(const nlohmann::json& j);
Record record_from_json(const nlohmann::json& j);
Summary summary_from_json(const nlohmann::json& j);
BenchRecord bench_record_from_json(const nlohmann::json& j);
Report report_from_json(const nlohmann::json& j);

/// Reads a final report or a `.partial` JSON Lines file (a truncated last line, the mark of a
/// crash mid-write, is dropped). Throws InputError naming the file and what is wrong.
Report load_report(const std::string& path);
/// load_report() of a file's text; messages do not name the file.
Report parse_report_text(const std::string& text);

/// Streams records to `<path>.partial` as they complete and writes the final report atomically.
class ReportWriter {
 public:
  /// Removes a previous report at `path` (so a run that dies leaves none standing), opens
  /// `<path>.partial` and writes the context line. Throws InputError, with the OS's reason, when it
  /// cannot, or when `path` is not a regular file (a link is followed only with follow_symlink).
  ReportWriter(std::string path, const Context& context, bool follow_symlink = false);
  ~ReportWriter();
  ReportWriter(const ReportWriter&) = delete;
  ReportWriter& operator=(const ReportWriter&) = delete;

  /// Appends one record line and flushes it to the OS (survives a crash of this process).
  void add(const Record& r);
  /// Appends one `{"bench": {...}}` line, flushed like add(); the final report lists them in `bench`.
  void add_bench(const BenchRecord& b);
  /// Writes the full report to a temporary file beside the target, renames it over the target
  /// and removes the .partial. Throws InputError when the file cannot be written.
  void finish(const Summary& summary);

  const std::string& path() const { return path_; }
  std::string partial_path() const { return path_ + ".partial"; }
  const std::vector<Record>& records() const { return records_; }

 private:
  std::string path_;
  bool follow_symlink_ = false;
  Context context_;
  std::vector<Record> records_;
  std::vector<BenchRecord> bench_;
  std::FILE* partial_ = nullptr;
};

}  // namespace pa::report
