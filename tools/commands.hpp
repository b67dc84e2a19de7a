#pragma once
// The pacheck subcommands. Each takes the whole argv and the index of its first own argument and
// returns the process exit code: 0 all pass, 1 failures / regressions, 2 usage or input error,
// 130 interrupted (SIGINT) without failures.
#include <functional>
#include <map>
#include <vector>

#include "testbed/testbed.hpp"
#include "reports/report.hpp"

namespace pa::tools {

inline constexpr int kExitOk = 0, kExitFail = 1, kExitUsage = 2, kExitInterrupted = 130;

int cmd_run(int argc, char** argv, int begin);
int cmd_replay(int argc, char** argv, int begin);
int cmd_diff(int argc, char** argv, int begin);
int cmd_cases(int argc, char** argv, int begin);
int cmd_fixtures(int argc, char** argv, int begin);
int cmd_kernels(int argc, char** argv, int begin);
int cmd_worker(int argc, char** argv, int begin);
int cmd_mutate(int argc, char** argv, int begin);
int cmd_report(int argc, char** argv, int begin);
int cmd_merge(int argc, char** argv, int begin);
int cmd_check(int argc, char** argv, int begin);
int cmd_bench(int argc, char** argv, int begin);

class Args;
struct Flag;
/// Appends the shared kernel-selection flags (--kernel, --paths, --backend, --device, --no-dispatch).
std::vector<Flag> with_target(std::vector<Flag> f);
/// The kernels and device a command runs for (the shared --kernel/--paths/--backend/--device flags).
struct Target {
  Backend backend = Backend::host;
  std::string backend_reason;
  Device device;
  Registry registry;                          // the kernels under test
  std::map<std::string, std::string> specs;   // loaded kernel name -> "PATH.so:NAME"
  /// The flags that select `kernel` again in a replay line.
  std::string replay_flags(const std::string& kernel) const;
};
Target resolve_target(const Args& a);
/// The run options of the target flags (--no-dispatch, --inputs); `inputs_reason` says where the
/// inputs are made and why.
RunOptions run_options(const Args& a, const Target& t, std::string* inputs_reason = nullptr);
/// --inputs, for the commands that run cases through run_options (run, replay, bench --harness).
extern const Flag kInputsFlag;
/// run_in_order cross-checks the GPU oracle against the CPU one on cases whose index is a multiple
/// (a prime, so that shards share the checks instead of one shard taking them all) and whose K/V
/// has at most kOracleCheckMaxElements elements per tensor: a large case would take seconds on a
/// run -j worker's share of the CPU and hold up the whole run, and the GPU tests check the
/// oracle on long contexts (60k and 128k tokens) already.
inline constexpr size_t kOracleCheckEvery = 97;
inline constexpr int64_t kOracleCheckMaxElements = int64_t(1) << 22;
/// Cases at once when --jobs is not given: with inputs on the device a case needs little CPU, so
/// up to kDefaultDeviceJobs run at once (one per core at most); on the host each case's
/// generation and oracle already use every core, so one.
inline constexpr int kDefaultDeviceJobs = 16;  // H200, 16 cores: nightly 602 cases/s at 8, 748-764 at 16
int default_jobs(const Args& a, const RunOptions& o);
/// This program's path (to start `pacheck worker`).
std::string self_exe();
double parse_seconds(const std::string& flag, const std::string& value);
/// "a,b" -> {"a", "b"}; an empty entry is an InputError.
std::vector<std::string> split_list(const std::string& list);

/// Runs cases[indices[n]] for n = 0, 1, ... on `jobs` threads and hands each record to `emit` in
/// n order (the bytes are those of one thread); stops taking cases once `stop()` is true.
void run_in_order(const std::vector<Case>& cases, const std::vector<size_t>& indices, const RunOptions& o, int jobs,
                  const std::function<void(size_t, const CaseRecord&)>& emit, const std::function<bool()>& stop);


}  // namespace pa::tools
