#pragma once
// A kernel served by a worker process (docs/worker-protocol.md): its declaration comes from the
// worker's hello, every launch goes through shared memory, and a worker that crashes, aborts or
// hangs becomes that launch's Fail (metric crash / timeout) while the run goes on with a fresh
// worker.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/kernel.hpp"
#include "worker/process.hpp"

namespace pa::worker {

struct IsolationOptions {
  std::string self_exe;           // this pacheck, re-executed as `pacheck worker`
  std::string python = "python3"; // the interpreter of Python adapters
  std::string adapters_dir;       // where pacheck_worker.py lives
  double timeout_s = 60;          // --kernel-timeout
};

class IsolatedKernel : public Kernel {
 public:
  /// Which optional entry points the kernel has (the hello's has_supports / has_workspace), and
  /// whether the worker opens pacheck's device buffers itself (the hello's device_buffers).
  struct Declares {
    bool supports = false, workspace = false, device_buffers = false;
  };
  IsolatedKernel(KernelInfo info, Declares declares, std::shared_ptr<Process> process);
  std::optional<std::string> decline_reason(const Case& c, const Device& dev) const override;
  int64_t workspace_bytes(const Case& c) const override;
  /// A device-memory kernel whose worker opens device buffers takes the call's device views too:
  /// the inputs then go from device to device, never through host memory.
  bool takes(Memory views) const override;
  KernelOutput run(const KernelCall& call, const Device& dev) const override;
  /// The plan step runs in the worker, which holds the plan until it is dropped here.
  PlanPtr plan(const KernelCall& call, const Device& dev, KernelOutput* refused) const override;
  KernelOutput run_unplanned(const KernelCall& call, const Device& dev) const override;

 private:
  KernelOutput launch(const KernelCall& call, bool unplanned) const;
  int64_t workspace_locked(const pacheck_problem& p) const;  // @pre the process mutex is held
  bool on_device() const;                                     // launches share device buffers
  // The launch over shared device buffers; `problem` is the request's problem, `extra` its plan
  // fields. @pre mutex held
  KernelOutput run_on_device(const KernelCall& call, const nlohmann::json& problem, const nlohmann::json& extra) const;
  // The plan fields of a run request: the worker's plan id, or "unplanned"; a Fail when the plan
  // was made by a worker that has since ended. @pre mutex held
  std::optional<KernelOutput> add_plan(const KernelCall& call, bool unplanned, nlohmann::json& req) const;
  Declares declares_;
  std::shared_ptr<Process> process_;
  // A supports() that crashed or hung, by problem: its launch reports that instead of running.
  mutable std::map<std::string, std::string> supports_failure_, supports_metric_;
};

/// Starts one worker for `spec` and returns the kernels it serves:
///   "py:PATH/adapter.py"  a Python adapter (adapters/pacheck_worker.py)
///   "PATH.so[:NAME]"      a C plug-in, served by `pacheck worker`
///   "builtin:host|gpu"    pacheck's own kernels, isolated (--isolate=always)
/// Throws InputError naming the spec when the worker cannot start or declares garbage.
std::vector<KernelPtr> isolated_kernels(const std::string& spec, const IsolationOptions& o);

}  // namespace pa::worker
