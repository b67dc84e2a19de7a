#pragma once
// The one testbed every suite goes through (ggml's test-backend-ops habit): for a case, build the
// inputs from its seed, compute the reference, ask the dispatcher, run each requested kernel and
// judge it with judge(). The CLI, the regression corpus, the property suite, the goldens and the
// twin tests all judge through judge(), so "passed" means the same thing everywhere.
#include <optional>
#include <string>
#include <vector>

#include "core/case.hpp"
#include "core/metrics.hpp"
#include "dispatch/select.hpp"
#include "kernels/kernel.hpp"
#include "reference/attention.hpp"

namespace pa {

struct RunOptions {
  std::vector<KernelPtr> kernels;  // the kernels under test (built-in or loaded)
  Device device;                   // the device model the dispatcher routes for
  bool dispatcher = true;          // also run the dispatcher's choice as a record named "auto"
  Routing routing = aiter_routing();
  /// Where a case's inputs are generated and its oracle runs: Memory::host (make_inputs, pack and
  /// the CPU oracle) or Memory::device (make_device_inputs and the GPU oracle, the same input
  /// bytes; for kernels that all take device views). inputs_memory() picks it.
  Memory inputs = Memory::host;
  /// A kernel with a plan step reuses the plan it made for the previous case of the thread on the
  /// next (testbed/call_contract.hpp); a replay names that plan's case here instead.
  bool reuse_plans = true;
  std::optional<Case> plan_from;
};

/// Memory::device when a GPU is usable for inputs and every kernel takes device views, else
/// Memory::host; `why` says which and why.
Memory inputs_memory(const std::vector<KernelPtr>& kernels, std::string* why = nullptr);

struct PathRecord {
  std::string path;                // the kernel's name, or "auto" (the dispatcher's choice)
  std::optional<std::string> ran;  // the kernel that actually ran ("auto" -> the chosen one)
  std::string backend;             // "host" or "gpu": where the kernel's memory is
  Status status = Status::Ok;
  std::string metric;              // for Fail: the metric that decided it
  std::string message;             // one line: reason for NotSupported/Skipped, verdict otherwise
  Metrics metrics;
  LseMetrics lse;                  // when the kernel declares LSE
  Tolerance tolerance;
  double elapsed_ms = 0;           // kernel time (GPU events) or host wall time
  double wall_ms = 0;              // the whole step: run + judge
  double run_ms = 0;               // of which the launch through its crossing (buffers, guards, copies)
  double contract_ms = 0;          // of which the checks of the call around it (plans, graph replay)
  std::string replay_flags;        // what this path's replay line adds to the case's (--plan-from)
};

struct CaseRecord {
  Case c;
  std::string vars;                // vars(c)
  std::string slug;                // slug(c)
  uint64_t input_hash = 0;
  Decision decision;
  std::vector<PathRecord> paths;
  std::string replay;              // one command line that reproduces this case
  double reference_ms = 0;
  double inputs_ms = 0;            // make_inputs + pack (or make_device_inputs)
  std::string oracle = "none";     // where the oracle ran: "cpu", "gpu", or "none" (no kernel ran)
  /// For a GPU-oracle case that was cross-checked (run_case's cross_check): oracle_disagreement
  /// of the GPU oracle against the CPU one; -1 when not cross-checked.
  double oracle_disagreement = -1;
};

/// "host" for host-memory kernels, "gpu" for device-memory ones.
const char* backend_of(const Kernel& k);

/// The one judge: turns what kernel `k` produced for case `c` into a record -- refusals,
/// launch errors and guard violations first, then the accuracy verdict against `ref` with the
/// tolerance derived from the kernel's declared numerics. A kernel that refuses a case its
/// declaration admits fails with metric "capability".
PathRecord judge(const Kernel& k, const KernelOutput& out, const Case& c, const ReferenceResult& ref);

/// Runs `k` on the call when its declaration admits the case on `dev` (NotSupported naming the
/// reason otherwise, without a launch), then judges it.
PathRecord run_and_judge(const Kernel& k, const Case& c, const KernelCall& call, const ReferenceResult& ref,
                         const Device& dev);

/// Runs one case. Never throws for a bad case: an invalid case yields records with status Fail
/// and the validation message (callers that must reject input validate first). With inputs on the
/// device and `cross_check`, the case is also generated on the host and judged by the CPU oracle
/// too: the record holds the two oracles' disagreement and the input hash, and a disagreement
/// beyond kOracleAgreement fails every path of the case with metric "oracle".
CaseRecord run_case(const Case& c, const RunOptions& o, bool cross_check = false);
/// The same for a case validated at the edge (a file, a flag, a generator): not validated again.
CaseRecord run_case(const ValidCase& c, const RunOptions& o, bool cross_check = false);

/// Host memory the harness needs for a case (inputs, packed cache, oracle, one kernel's outputs),
/// an estimate from above; and what the machine has free (MemAvailable), or -1 when unknown.
int64_t host_bytes_needed(const Case& c);
int64_t host_memory_available();
/// "" when the case fits the host; else a sentence naming the bytes it needs and the limit.
std::string host_memory_refusal(const Case& c);
/// The same for the device path (inputs made on the GPU): device memory for the logical and
/// physical inputs, the GPU oracle's scratch and one kernel's guarded copies, against what the
/// GPU has free.
int64_t device_bytes_needed(const Case& c);
std::string device_memory_refusal(const Case& c);

/// The replay line for a case: `pacheck replay --case '<json>'` (+ " --paths K" when given).
std::string replay_line(const Case& c, const std::string& kernel = "");

}  // namespace pa
