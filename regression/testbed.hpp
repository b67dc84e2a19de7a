#pragma once
// The one testbed every suite goes through (ggml's test-backend-ops habit): for a case, build the
// inputs from its seed, compute the reference, ask the dispatcher, run each requested path on the
// requested backend, and judge it with the metrics of core/metrics.hpp. The CLI, the regression
// runner, the property suite and the fixtures verifier all call run_case.
#include <optional>
#include <string>
#include <vector>

#include "core/case.hpp"
#include "core/metrics.hpp"
#include "dispatch/select.hpp"
#include "kernels/paths.hpp"

namespace pa {

struct RunOptions {
  Backend backend = Backend::host;
  std::vector<PathId> paths;   // empty = every path
  Device device;               // the device model the dispatcher routes for
  bool dispatcher = true;      // also run the dispatcher's choice as a record with path "auto"
};

struct PathRecord {
  std::string path;            // "v1", "hip", "asm", or "auto" (the dispatcher's choice)
  std::optional<PathId> ran;   // the path that actually ran ("auto" -> the chosen one)
  Backend backend = Backend::host;
  Status status = Status::Ok;
  std::string metric;          // for Fail: the metric that decided it
  std::string message;         // one line: reason for NotSupported/Skipped, verdict otherwise
  Metrics metrics;
  Tolerance tolerance;
  double elapsed_ms = 0;       // kernel time (GPU events) or host-twin wall time
  double wall_ms = 0;          // the whole step: run + compare
};

struct CaseRecord {
  Case c;
  std::string vars;            // vars(c)
  std::string slug;            // slug(c)
  uint64_t input_hash = 0;
  Decision decision;
  std::vector<PathRecord> paths;
  std::string replay;          // one command line that reproduces this case
  double reference_ms = 0;
  double inputs_ms = 0;        // make_inputs + pack
};

/// Runs one case. Never throws for a bad case: an invalid case yields records with status Fail
/// and the validation message (callers that must reject input validate first).
CaseRecord run_case(const Case& c, const RunOptions& o);

/// The replay line for a case: `pacheck replay --case '<json>'`.
std::string replay_line(const Case& c);

}  // namespace pa
