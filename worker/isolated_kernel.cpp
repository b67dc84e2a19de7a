#include "worker/isolated_kernel.hpp"

#include <cstring>

#include "worker/protocol.hpp"

namespace pa::worker {

namespace {

constexpr size_t kAlign = 64;
constexpr size_t kGuardBytes = 256;
constexpr uint8_t kCanary = 0xA5;

size_t aligned(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

KernelOutput failed(const std::string& metric, const std::string& reason) {
  KernelOutput r;
  r.status = Status::Fail;
  r.metric = metric;
  r.reason = reason;
  return r;
}

}  // namespace

IsolatedKernel::IsolatedKernel(KernelInfo info, bool has_supports, std::shared_ptr<Process> process)
    : Kernel(std::move(info)), has_supports_(has_supports), process_(std::move(process)) {}

std::optional<std::string> IsolatedKernel::decline_reason(const Case& c, const Device& dev) const {
  const std::lock_guard<std::mutex> lock(process_->mutex());
  if (auto r = Kernel::decline_reason(c, dev)) return r;
  if (!has_supports_) return std::nullopt;
  Failure f;
  const auto resp = process_->request({{"type", "supports"}, {"kernel", name()}, {"problem", problem_to_json(problem_of(c))}}, &f);
  // A worker that dies answering "do you support this" is a broken kernel; the launch that
  // follows reports it as a crash, so the question is answered "yes" here.
  if (!resp || !resp->value("ok", false)) return std::nullopt;
  if (resp->value("supports", true)) return std::nullopt;
  return resp->value("why", std::string("supports() declined without a reason"));
}

int64_t IsolatedKernel::workspace_bytes(const Case& c) const {
  const std::lock_guard<std::mutex> lock(process_->mutex());
  Failure f;
  const auto resp = process_->request({{"type", "workspace"}, {"kernel", name()}, {"problem", problem_to_json(problem_of(c))}}, &f);
  return resp && resp->value("ok", false) ? resp->value("bytes", int64_t(0)) : 0;
}

KernelOutput IsolatedKernel::run(const KernelCall& call, const Device&) const {
  const std::lock_guard<std::mutex> lock(process_->mutex());
  const pacheck_problem& p = call.problem;
  const int64_t rows = int64_t(p.num_seqs) * p.q_len * p.num_q_heads;
  const size_t out_bytes = size_t(rows * p.head_size) * size_t(dtype_bytes(DType(p.q_dtype)));
  const size_t lse_bytes = p.want_lse ? size_t(rows) * 4 : 0;
  struct Slot {
    const char* name;
    const void* data;
    size_t bytes;
  };
  const Slot inputs[] = {
      {"q", call.q.data, call.q.size * 2},
      {"k_cache", call.k_cache.data, call.k_cache.size},
      {"v_cache", call.v_cache.data, call.v_cache.size},
      {"k_scales", call.k_scales.data, call.k_scales.size * 4},
      {"v_scales", call.v_scales.data, call.v_scales.size * 4},
      {"block_tables", call.block_tables.data, call.block_tables.size * 4},
      {"context_lens", call.context_lens.data, call.context_lens.size * 4},
      {"alibi_slopes", call.alibi_slopes.data, call.alibi_slopes.size * 4},
      {"sinks", call.sinks.data, call.sinks.size * 4},
  };
  size_t total = 0;
  for (const Slot& s : inputs) total += aligned(s.bytes);
  total += aligned(out_bytes + kGuardBytes) + aligned(lse_bytes + kGuardBytes);
  uint8_t* mem = nullptr;
  try {
    mem = process_->shared(total);
  } catch (const std::exception& e) {
    KernelOutput r;
    r.status = Status::Skipped;  // the harness's problem, not the kernel's
    r.reason = e.what();
    return r;
  }
  nlohmann::json buffers = nlohmann::json::object();
  size_t at = 0;
  for (const Slot& s : inputs) {
    if (s.bytes) std::memcpy(mem + at, s.data, s.bytes);
    buffers[s.name] = {s.bytes ? at : 0, s.bytes};
    at += aligned(s.bytes);
  }
  const size_t out_at = at, lse_at = at + aligned(out_bytes + kGuardBytes);
  std::memset(mem + out_at, 0xFF, out_bytes);  // NaN: an element the kernel forgets to write fails
  std::memset(mem + out_at + out_bytes, kCanary, kGuardBytes);
  std::memset(mem + lse_at, 0xFF, lse_bytes);
  std::memset(mem + lse_at + lse_bytes, kCanary, kGuardBytes);
  buffers["out"] = {out_at, out_bytes};
  buffers["lse"] = {lse_bytes ? lse_at : 0, lse_bytes};
  Failure f;
  const auto resp = process_->request({{"type", "run"}, {"kernel", name()}, {"problem", problem_to_json(p)},
                                       {"capacity", process_->capacity()}, {"buffers", buffers}},
                                      &f);
  if (!resp) return failed(f.metric, name() + ": " + f.message);
  if (!resp->value("ok", false))
    return failed("kernel_error", name() + ": the worker could not serve the launch: " + resp->value("error", std::string()));
  KernelOutput r;
  r.elapsed_ms = resp->value("elapsed_ms", 0.0);
  const std::string status = resp->value("status", std::string("error"));
  if (status == "not_supported") {
    r.status = Status::NotSupported;
    r.reason = resp->value("error", std::string("(no reason)"));
    return r;
  }
  if (status != "ok") return failed("kernel_error", resp->value("error", std::string("(no error text)")));
  for (size_t i = 0; i < kGuardBytes; ++i)
    if (mem[out_at + out_bytes + i] != kCanary || (lse_bytes && mem[lse_at + lse_bytes + i] != kCanary))
      return failed("guard", "the kernel wrote past its '" + std::string(mem[out_at + out_bytes + i] != kCanary ? "out" : "lse") +
                                 "' buffer");
  const DType qt = DType(p.q_dtype);
  r.out.resize(size_t(rows * p.head_size));
  for (size_t i = 0; i < r.out.size(); ++i) {
    uint16_t code = 0;
    std::memcpy(&code, mem + out_at + i * size_t(dtype_bytes(qt)), size_t(dtype_bytes(qt)));
    r.out[i] = codec::decode(qt, code);
  }
  if (lse_bytes && resp->value("wrote_lse", true)) {
    r.lse.resize(size_t(rows));
    std::memcpy(r.lse.data(), mem + lse_at, lse_bytes);
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
      out.push_back(std::make_shared<IsolatedKernel>(std::move(info), k.value("has_supports", false), process));
  }
  if (out.empty())
    throw InputError("--kernel " + spec + ": " + (names.empty() ? "the worker serves no kernel" : "no kernel '" + only + "' (it has " + names + ")"));
  return out;
}

}  // namespace pa::worker
