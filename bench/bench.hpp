#pragma once
// `pacheck bench`: where a kernel sits against the memory roofline. Each point (a real model's
// head config at one concurrency and context, in a kv dtype) is first checked against the oracle
// -- a wrong kernel is reported wrong, not fast -- then every kernel is timed (median of the
// repetitions, cold L2) beside a streaming-read kernel over as many bytes as the point's KV,
// measured in the same run. The bytes model and the dispatcher's regret are recorded per point.
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "bench/timing.hpp"
#include "dispatch/select.hpp"
#include "kernels/kernel.hpp"
#include "reports/report.hpp"

namespace pa::bench {

struct Point {
  std::string model;  // the head config's name (core/models.hpp) or the case's name
  Case c;
};

/// Bytes the step must move at least: the KV a query can see (a sliding window bounds it), with
/// per-token scales, plus Q, the output, the LSE and the block-table entries read.
int64_t bytes_needed(const Case& c);

struct SweepOptions {
  std::vector<int32_t> concurrency = {1, 4, 16, 64, 256, 512};
  std::vector<int32_t> contexts = {1024, 8192, 32768};
  std::vector<std::string> models;   // empty = every model config
  int64_t max_tokens = 4 << 20;      // points with more KV tokens (S x context) are left out
};
/// "models": the real model head configs x concurrency x context, in bf16 and the device's fp8;
/// "quick": three small points for the host twins (CI). Unknown names throw InputError.
std::vector<Point> sweep(const std::string& name, const Device& dev, const SweepOptions& o);

struct Options {
  TimingOptions timing;
  bool check = true;             // judge each (kernel, config) once before timing it
  int64_t max_host_bytes = int64_t(2) << 30;  // host-side inputs for kernels that need them
};

struct KernelPoint {
  std::string kernel;
  Status status = Status::Ok;     // NotSupported (declined), Fail (wrong or launch error), Skipped
  std::string message;
  double median_ms = 0, spread_ms = 0, min_ms = 0;  // spread: interquartile range of the samples
  int repetitions = 0;
  std::string timing;             // "gpu" (device events) or "host" (wall clock)
};

struct PointResult {
  Point point;
  int64_t bytes = 0;
  double stream_gbs = 0;          // the streaming-read roofline of this run (0: host timings)
  std::vector<KernelPoint> kernels;
  std::string chosen, fastest;    // the dispatcher's pick ("" = refused or no routing), the fastest Ok
                                  // kernel among those the dispatcher routes to
  double regret = 0;              // time(chosen) / time(fastest) - 1; NaN when not measurable
};

/// Runs every point on every kernel. `progress` (may be empty) is called after each point.
std::vector<PointResult> run(const std::vector<Point>& points, const std::vector<KernelPtr>& kernels,
                             const Device& dev, const Options& o,
                             const std::function<void(const PointResult&, size_t, size_t)>& progress = {});

/// The report's bench records (one per kernel and point).
std::vector<report::BenchRecord> records(const std::vector<PointResult>& results);

/// A plain-text table: per point, each kernel's median, bandwidth, fraction of the streaming read,
/// and the dispatcher's regret.
void print_table(std::ostream& os, const std::vector<PointResult>& results);

}  // namespace pa::bench
