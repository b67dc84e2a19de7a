#include "worker/isolated_kernel.hpp"

#include <algorithm>
#include <cstring>

#include "kernels/crossing.hpp"

#include "worker/protocol.hpp"

namespace pa::worker {

namespace {

KernelOutput failed(const std::string& metric, const std::string& reason) {
  KernelOutput r;
  r.status = Status::Fail;
  r.metric = metric;
  r.reason = reason;
  return r;
}

// The Fail of a run request the worker did not answer, or answered "could not serve"; nullopt
// for an answer to read.
std::optional<KernelOutput> unanswered(const std::string& kernel, const std::optional<nlohmann::json>& resp,
                                       const Failure& f) {
  if (!resp) return failed(f.metric, kernel + ": " + f.message);
  if (!resp->value("ok", false))
    return failed("kernel_error", kernel + ": the worker could not serve the launch: " + resp->value("error", std::string()));
  return std::nullopt;
}

// A plan held by a worker: its id there, and the start of the worker that made it (a restarted
// worker holds none of its predecessor's plans). Dropping it releases it in the worker.
class WorkerPlan : public KernelPlan {
 public:
  WorkerPlan(const pacheck_problem& planned, std::shared_ptr<Process> process, int64_t id)
      : KernelPlan(planned), process_(std::move(process)), id_(id), start_(process_->starts()) {}
  ~WorkerPlan() override {
    const std::lock_guard<std::mutex> lock(process_->mutex());
    if (process_->starts() != start_) return;
    Failure f;
    (void)process_->request({{"type", "release"}, {"plan", id_}}, &f);  // best effort: a dead worker freed it
  }
  int64_t id() const { return id_; }
  bool alive() const { return process_->starts() == start_; }
  const Process* process() const { return process_.get(); }

 private:
  std::shared_ptr<Process> process_;
  int64_t id_;
  int start_;
};

nlohmann::json batch_json(const PlanBatch& b) {
  const auto vec = [](const View<int32_t>& v) { return std::vector<int32_t>(v.data, v.data + v.size); };
  return {{"cu_seqlens_q", vec(b.cu_seqlens_q)}, {"context_lens", vec(b.context_lens)},
          {"kv_indptr", vec(b.kv_indptr)}, {"kv_last_page_len", vec(b.kv_last_page_len)}};
}

}  // namespace

PlanPtr IsolatedKernel::plan(const KernelCall& call, const Device& dev, KernelOutput* refused) const {
  if (!info().capability.plan) return Kernel::plan(call, dev, refused);
  const std::lock_guard<std::mutex> lock(process_->mutex());
  Failure f;
  const auto resp = process_->request({{"type", "plan"}, {"kernel", name()}, {"problem", problem_to_json(call.problem)},
                                       {"batch", batch_json(call.batch)}},
                                      &f);
  if (auto fail = unanswered(name(), resp, f)) {
    *refused = *fail;
    return nullptr;
  }
  const int st = resp->value("status", int(PACHECK_ERROR));
  if (st == PACHECK_OK && resp->contains("plan"))
    return std::make_shared<WorkerPlan>(call.problem, process_, resp->at("plan").get<int64_t>());
  refused->status = st == PACHECK_NOT_SUPPORTED ? Status::NotSupported : Status::Fail;
  refused->metric = st == PACHECK_NOT_SUPPORTED ? "" : "kernel_error";
  refused->reason = "plan returned " + std::to_string(st) + ": " + resp->value("error", std::string());
  return nullptr;
}

std::optional<KernelOutput> IsolatedKernel::add_plan(const KernelCall& call, bool unplanned, nlohmann::json& req) const {
  if (unplanned) req["unplanned"] = true;
  if (!call.plan || unplanned) return std::nullopt;
  const auto* wp = dynamic_cast<const WorkerPlan*>(call.plan.get());
  if (!wp || wp->process() != process_.get())
    return failed("harness", name() + ": a plan of another kernel or process was handed to this one (pacheck's bug)");
  if (!wp->alive())
    return failed("crash", name() + ": the worker that made the plan has ended (an earlier crash), so the plan is gone");
  req["plan"] = wp->id();
  return std::nullopt;
}

IsolatedKernel::IsolatedKernel(KernelInfo info, Declares declares, std::shared_ptr<Process> process)
    : Kernel(std::move(info)), declares_(declares), process_(std::move(process)) {}

std::optional<std::string> IsolatedKernel::decline_reason(const Case& c, const Device& dev) const {
  const std::lock_guard<std::mutex> lock(process_->mutex());
  if (auto r = Kernel::decline_reason(c, dev)) return r;
  if (!declares_.supports) return std::nullopt;
  const nlohmann::json problem = problem_to_json(problem_of(c));
  Failure f;
  const auto resp = process_->request({{"type", "supports"}, {"kernel", name()}, {"problem", problem}}, &f);
  // A worker that dies or hangs answering "do you support this" is a broken kernel: the question
  // is answered "yes" so that the case is run, and the launch of this problem reports the failure
  // of supports() instead of launching (run() below).
  if (!resp) {
    supports_failure_[problem.dump()] = "supports() " + f.message;
    supports_metric_[problem.dump()] = f.metric;
    return std::nullopt;
  }
  if (!resp->value("ok", false)) return std::nullopt;
  if (resp->value("supports", true)) return std::nullopt;
  return resp->value("why", std::string("supports() declined without a reason"));
}

int64_t IsolatedKernel::workspace_bytes(const Case& c) const {
  const std::lock_guard<std::mutex> lock(process_->mutex());
  return workspace_locked(problem_of(c));
}

int64_t IsolatedKernel::workspace_locked(const pacheck_problem& p) const {
  if (!declares_.workspace) return 0;
  Failure f;
  const auto resp = process_->request({{"type", "workspace"}, {"kernel", name()}, {"problem", problem_to_json(p)}}, &f);
  return resp && resp->value("ok", false) ? resp->value("bytes", int64_t(0)) : 0;
}

bool IsolatedKernel::on_device() const {
  return declares_.device_buffers && info().memory == Memory::device && gpu_available(nullptr);
}

bool IsolatedKernel::takes(Memory views) const { return views == Memory::host || on_device(); }

KernelOutput IsolatedKernel::run_on_device(const KernelCall& call, const nlohmann::json& problem,
                                           const nlohmann::json& extra) const {
  const pacheck_problem& p = call.problem;
  std::vector<uint8_t> out_codes(size_t(out_bytes(p)));
  std::vector<float> lse(size_t(lse_bytes(p) / sizeof(float)));
  std::optional<KernelOutput> failure;
  bool wrote_lse = true;
  // The worker opens the guarded device buffers by their IPC handles, runs, synchronises and
  // answers; the guards, the poison and the copy back stay on this side (kernels/crossing.hpp).
  const Crossed x = cross_device_shared(
      call, uint64_t(std::max<int64_t>(0, workspace_locked(p))),
      [&](const SharedBuffers& shared) {
        nlohmann::json buffers = nlohmann::json::object();
        for_each_buf([&](Buf b) {
          const SharedBuffer& s = shared[size_t(b)];
          buffers[to_string(b)] = {s.handle, s.offset, s.bytes, s.allocation};
        });
        Failure f;
        nlohmann::json req = {{"type", "run"}, {"kernel", name()}, {"problem", problem},
                              {"memory", "device"}, {"device_buffers", buffers}};
        req.update(extra);
        const auto resp = process_->request(req, &f);
        Crossed c;
        c.status = PACHECK_ERROR;  // anything but an answer ends the crossing here
        failure = unanswered(name(), resp, f);
        if (!failure) {
          c = crossed_from_json(*resp);
          wrote_lse = resp->value("wrote_lse", true);
        }
        return c;
      },
      out_codes.data(), lse.data());
  if (failure) return *failure;
  if (x.sticky) process_->end();  // the worker ends itself too; the next case gets a fresh one
  KernelOutput r = outcome(x);
  if (r.status == Status::Ok) take_outputs(p, out_codes.data(), p.want_lse && wrote_lse ? lse.data() : nullptr, r);
  return r;
}

KernelOutput IsolatedKernel::run(const KernelCall& call, const Device&) const { return launch(call, false); }
KernelOutput IsolatedKernel::run_unplanned(const KernelCall& call, const Device&) const { return launch(call, true); }

KernelOutput IsolatedKernel::launch(const KernelCall& call, bool unplanned) const {
  const std::lock_guard<std::mutex> lock(process_->mutex());
  const pacheck_problem& p = call.problem;
  const nlohmann::json problem = problem_to_json(p);
  if (auto it = supports_failure_.find(problem.dump()); it != supports_failure_.end()) {
    const std::string why = it->second, metric = supports_metric_[it->first];
    supports_failure_.erase(it);
    return failed(metric, name() + ": " + why);
  }
  nlohmann::json extra = nlohmann::json::object();  // the plan fields of the run request
  if (auto fail = add_plan(call, unplanned, extra)) return *fail;
  if (on_device()) return run_on_device(call, problem, extra);
  // Every buffer in the shared memory, laid out by the one crossing: the inputs copied in, the
  // outputs poisoned between guards that this side checks.
  const LaunchBuffers lb = launch_buffers(call, uint64_t(std::max<int64_t>(0, workspace_locked(p))));
  uint8_t* mem = nullptr;
  try {
    mem = process_->shared(HostSpace::bytes_needed(lb, true));
  } catch (const std::exception& e) {
    KernelOutput r;
    r.status = Status::Skipped;  // the harness's problem, not the kernel's
    r.reason = e.what();
    return r;
  }
  const HostSpace space(mem, lb, true);
  nlohmann::json buffers = nlohmann::json::object();
  for_each_buf([&](Buf b) { buffers[to_string(b)] = {lb.size(b) ? space.offset(b) : 0, lb.size(b)}; });
  nlohmann::json req = {{"type", "run"}, {"kernel", name()}, {"problem", problem},
                        {"capacity", process_->capacity()}, {"buffers", buffers}};
  req.update(extra);
  Failure f;
  const auto resp = process_->request(req, &f);
  if (auto fail = unanswered(name(), resp, f)) return *fail;
  const Crossed x = crossed_from_json(*resp);
  if (x.sticky) process_->end();  // the worker ends itself too; the next case gets a fresh one
  KernelOutput r = outcome(x);
  if (r.status == Status::Ok) {
    // The worker's own checks (a device launch inside it) first, then the memory file's guards
    // and inputs, checked here.
    Crossed mine;
    mine.elapsed_ms = x.elapsed_ms;
    mine.overrun = space.overrun();
    mine.written = space.written();
    if (!mine.overrun.empty() || !mine.written.empty()) return outcome(mine);
  }
  if (r.status == Status::Ok) {
    const bool lse = p.want_lse && resp->value("wrote_lse", true);
    take_outputs(p, space.at(Buf::out), lse ? static_cast<const float*>(space.at(Buf::lse)) : nullptr, r);
  }
  return r;
}

std::vector<KernelPtr> isolated_kernels(const std::string& spec, const IsolationOptions& o) {
  std::vector<std::string> argv;
  std::string only;
  if (spec.rfind("py:", 0) == 0) {
    argv = {o.python, o.adapters_dir + "/pacheck_worker.py", "--adapter", spec.substr(3)};
  } else {
    std::string lib = spec;
    if (const size_t colon = spec.rfind(':'); colon != std::string::npos && spec.find(".so") < colon &&
                                              spec.rfind("builtin:", 0) != 0) {
      lib = spec.substr(0, colon);
      only = spec.substr(colon + 1);
    }
    argv = {o.self_exe, "worker", "--kernel", lib};
  }
  auto process = std::make_shared<Process>(argv, o.timeout_s);
  const nlohmann::json& hello = process->hello();
  std::vector<KernelPtr> out;
  std::string names;
  for (const auto& k : hello.value("kernels", nlohmann::json::array())) {
    KernelInfo info;
    info.name = k.value("name", std::string());
    const std::string where = spec + " kernel '" + info.name + "'";
    if (info.name.empty()) throw InputError(spec + ": the worker declared a kernel without a name");
    info.version = k.value("version", std::string());
    info.provenance = k.value("provenance", std::string());
    info.source = spec;
    info.memory = k.value("memory", std::string("host")) == "device" ? Memory::device : Memory::host;
    if (!k.contains("capability")) throw InputError(where + ": no capability declared");
    info.capability = capability_from_json(k.at("capability"), where);
    info.numerics = numerics_from_json(k.value("numerics", nlohmann::json::object()), where);
    names += (names.empty() ? "" : ", ") + info.name;
    if (only.empty() || info.name == only)
      out.push_back(std::make_shared<IsolatedKernel>(
          std::move(info),
          IsolatedKernel::Declares{k.value("has_supports", false), k.value("has_workspace", false),
                                   hello.value("device_buffers", false)},
          process));
  }
  if (out.empty())
    throw InputError("--kernel " + spec + ": " + (names.empty() ? "the worker serves no kernel" : "no kernel '" + only + "' (it has " + names + ")"));
  return out;
}

}  // namespace pa::worker
