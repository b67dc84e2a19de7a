#include "testbed/testbed.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>

#include <nlohmann/json.hpp>

#include "inputs/inputs.hpp"
#include "inputs/inputs_device.hpp"
#include "reference/attention_device.hpp"
#include "testbed/call_contract.hpp"

namespace pa {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// The identity of a case that may be too broken for vars()/slug() (e.g. block_size 0 divides by
// zero): its JSON text, hashed.
void identify(CaseRecord& rec, bool valid) {
  if (valid) {
    rec.vars = vars(rec.c);
    rec.slug = slug(rec.c);
    return;
  }
  const std::string text = to_json(rec.c).dump();
  char buf[40];
  std::snprintf(buf, sizeof buf, "invalid_%016llx", (unsigned long long)fnv1a(text));
  rec.slug = buf;
  rec.vars = "invalid " + text;
}

}  // namespace

namespace {
// The buffers of a case that both memory estimates count, in bytes.
struct CaseBytes {
  int64_t logical;   // K and V over logical tokens: codes and scales
  int64_t physical;  // the packed caches and their per-token scale slots
  int64_t rows;      // query rows (T * Hq)
  explicit CaseBytes(const Case& c) {
    const int64_t tokens = c.total_tokens();
    logical = tokens * c.num_kv_heads * (int64_t(c.head_size + c.dv()) * 2 + 8);
    physical = (key_layout(c).cosize(c.pool_blocks()) + value_layout(c).cosize(c.pool_blocks())) * dtype_bytes(c.kv_dtype) +
               2 * int64_t(c.pool_blocks()) * c.num_kv_heads * c.block_size * 4;
    rows = c.total_q() * c.num_q_heads;
  }
};
}  // namespace

int64_t host_bytes_needed(const Case& c) {
  const CaseBytes b(c);
  const int64_t kv_elems = c.total_tokens() * c.num_kv_heads * c.head_size;
  return b.logical + b.physical
         + b.rows * c.head_size * (2 + 4 + 8 + 8 + 4 + 4)    // q codes/floats, oracle out/uniform, kernel out
         + 2 * kv_elems * 8 / std::max<int64_t>(1, c.num_seqs);  // the oracle's fp64 K/V of one sequence
}

int64_t host_memory_available() {
  FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return -1;
  char line[256];
  int64_t kb = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "MemAvailable: %lld kB", reinterpret_cast<long long*>(&kb)) == 1) break;
  std::fclose(f);
  return kb < 0 ? -1 : kb * 1024;
}

std::string host_memory_refusal(const Case& c) {
  const int64_t need = host_bytes_needed(c), have = host_memory_available();
  if (have < 0 || need <= have) return "";
  return "the case needs about " + std::to_string(need) + " bytes of host memory for its inputs and the oracle; " +
         std::to_string(have) + " bytes are available (MemAvailable)";
}

int64_t device_bytes_needed(const Case& c) {
  const CaseBytes b(c);
  int64_t logits = 0;  // every (query row, key) pair of a sequence
  for (int32_t s = 0; s < c.num_seqs; ++s) logits += int64_t(c.context_lens[size_t(s)]) * c.q_len_of(s) * c.num_q_heads;
  return b.logical + 2 * b.physical                  // inputs, and one kernel's guarded copy of the caches
         + logits * 8 + logits * 8 / 4               // the GPU oracle's logits and partials
         + b.rows * c.head_size * (2 + 4 + 4 * 4);   // q, the kernel's output, split-K workspace
}

std::string device_memory_refusal(const Case& c) {
  // Asking the runtime for free memory costs as much as a small case's launch; a case needing
  // less than an eighth of what was free at the last answer is not asked about.
  static std::atomic<int64_t> last_free{-1};
  const int64_t need = device_bytes_needed(c), known = last_free.load(std::memory_order_relaxed);
  if (known > 0 && need <= known / 8) return "";
  const int64_t have = device_memory_available();
  last_free.store(have, std::memory_order_relaxed);
  if (have < 0 || need <= have) return "";
  return "the case needs about " + std::to_string(need) + " bytes of GPU memory for its inputs, the oracle and a "
         "kernel's buffers; " + std::to_string(have) + " bytes are free";
}

const char* backend_of(const Kernel& k) { return k.info().memory == Memory::host ? "host" : "gpu"; }

PathRecord judge(const Kernel& k, const KernelOutput& out, const Case& c, const ReferenceResult& ref) {
  PathRecord r;
  r.path = k.name();
  r.ran = out.instance.empty() ? k.name() : out.instance;  // beside the declared path: what served it
  r.backend = backend_of(k);
  r.elapsed_ms = out.elapsed_ms;
  switch (out.status) {
    case Status::Skipped:
      r.status = Status::Skipped;
      r.message = out.reason;
      return r;
    case Status::NotSupported:
      // Only reached after the declaration admitted the case: the kernel disagrees with itself,
      // the routing-bug class (a dispatcher trusting the table sends it cases it then refuses).
      r.status = Status::Fail;
      r.metric = "capability";
      r.message = "kernel refused a case its declaration supports: " + out.reason;
      return r;
    case Status::Fail:
      r.status = Status::Fail;
      r.metric = out.metric.empty() ? "kernel_error" : out.metric;
      r.message = out.reason;
      return r;
    case Status::Ok: break;
  }
  const ErrorModel em = k.error_model(c);  // the kernel's numerics on this case, derived once
  r.tolerance = tolerance_for(em, ref.stats);
  if (out.out.size() != ref.out.size()) {
    r.status = Status::Fail;
    r.metric = "shape";
    r.message = "output has " + std::to_string(out.out.size()) + " elements, expected " +
                std::to_string(ref.out.size()) + " [T, Hq, Dv]";
    return r;
  }
  r.metrics = compare(out.out, ref.out, r.tolerance, ref.uniform);
  const Verdict v = verdict(r.metrics, r.tolerance, output_shape(c));
  r.status = v.status;
  r.metric = v.metric;
  r.message = v.message;
  // The LSE is an output too: split-K engines and cascade attention consume it. Judged for every
  // kernel that declares it, with its own derived bound (core/metrics.cpp).
  if (k.info().capability.lse && !ref.lse.empty()) {
    if (out.lse.size() != ref.lse.size()) {
      r.status = Status::Fail;
      r.metric = "lse";
      r.message = "the kernel declares LSE but wrote " + std::to_string(out.lse.size()) + " rows, expected " +
                  std::to_string(ref.lse.size()) + " [T, Hq]";
      return r;
    }
    // Judged in the base the kernel declares (ABI lse_base): a log2-sum-exp is ln 2 times the
    // natural one, so a kernel returning base 2 while declaring natural fails metric lse.
    if (k.info().capability.lse_base2) {
      std::vector<float> natural(out.lse.size());
      for (size_t i = 0; i < natural.size(); ++i) natural[i] = float(double(out.lse[i]) * 0.69314718055994530942);
      r.lse = compare_lse(natural, ref.lse, em, ref.stats);
    } else {
      r.lse = compare_lse(out.lse, ref.lse, em, ref.stats);
    }
    const Verdict lv = verdict(r.lse, lse_shape(c));
    if (lv.status != Status::Ok && r.status == Status::Ok) {
      r.status = lv.status;
      r.metric = lv.metric;
      r.message = lv.message;
    }
  }
  return r;
}

namespace {
// The record of a kernel that declines the case: never launched.
PathRecord declined_record(const Kernel& k, const std::string& why) {
  PathRecord r;
  r.path = k.name();
  r.ran = k.name();
  r.backend = backend_of(k);
  r.status = Status::NotSupported;
  r.message = k.name() + ": " + why;
  return r;
}

// Runs and judges k, or records its refusal when `declined` (its decline_reason, asked once).
// Whether two runs wrote the same bytes (NaN payloads included).
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

PathRecord run_or_decline(const Kernel& k, const Case& c, const KernelCall& call, const ReferenceResult& ref,
                          const RunOptions& o, const std::optional<std::string>& declined) {
  const auto t0 = Clock::now();
  const Device& dev = o.device;
  if (declined) return declined_record(k, *declined);
  const KernelOutput out = k.run(call, dev);
  const double run_ms = ms_since(t0);
  PathRecord r = judge(k, out, c, ref);
  r.run_ms = run_ms;
  // The call around the launch: plans reused, graph replay (testbed/call_contract.hpp).
  if (out.status == Status::Ok) {
    const auto tc = Clock::now();
    blame_plan(k, c, call, ref, dev, r);
    check_call_contract(k, c, call, out, ref, o, r);
    r.contract_ms = ms_since(tc);
  }
  // A failing verdict is only worth a replay line if the kernel answers the same way twice: a
  // second launch on the same inputs says whether the replay can be trusted to fail again.
  if (r.status == Status::Fail && out.status == Status::Ok) {
    const KernelOutput again = k.run(call, dev);
    if (again.status != Status::Ok || !same_bits(again.out, out.out) || !same_bits(again.lse, out.lse))
      r.message += "; nondeterministic: a second launch on the same inputs gave a different output, so the "
                   "replay line may pass";
  }
  r.wall_ms = ms_since(t0);
  return r;
}
}  // namespace

PathRecord run_and_judge(const Kernel& k, const Case& c, const KernelCall& call, const ReferenceResult& ref,
                         const Device& dev) {
  // A property's case is judged on its own: no plan carried over from another draw, so a shrink
  // or a replay sees the same verdict.
  RunOptions o;
  o.device = dev;
  o.inputs = call.memory;
  o.reuse_plans = false;
  return run_or_decline(k, c, call, ref, o, k.decline_reason(c, dev));
}

std::string replay_line(const Case& c, const std::string& kernel) {
  std::string text = to_json(c).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // Single-quote for the shell; a quote inside (a case name) becomes '\''.
  std::string quoted;
  for (char ch : text) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return "pacheck replay --case '" + quoted + "'" + (kernel.empty() ? "" : " --paths " + kernel);
}

Memory inputs_memory(const std::vector<KernelPtr>& kernels, std::string* why) {
  std::string no_gpu;
  const auto say = [&](Memory m, const std::string& text) {
    if (why) *why = text;
    return m;
  };
  if (kernels.empty()) return say(Memory::host, "no kernels");
  for (const KernelPtr& k : kernels)
    if (!k->takes(Memory::device))
      return say(Memory::host, "kernel " + k->name() + " reads host memory");
  if (!device_inputs_available(&no_gpu)) return say(Memory::host, no_gpu);
  return say(Memory::device, "every kernel reads device memory");
}

namespace {
// Every path of the case fails with the same metric and message (an invalid case, a broken oracle,
// a throwing library).
void fail_all(CaseRecord& rec, const RunOptions& o, const std::string& metric, const std::string& message) {
  rec.paths.clear();
  for (const KernelPtr& k : o.kernels) {
    PathRecord r;
    r.path = k->name();
    r.backend = backend_of(*k);
    r.status = Status::Fail;
    r.metric = metric;
    r.message = message;
    rec.paths.push_back(r);
  }
  if (o.dispatcher) {
    PathRecord r;
    r.path = "auto";
    r.backend = o.kernels.empty() ? "host" : backend_of(*o.kernels.front());
    r.status = Status::Fail;
    r.metric = metric;
    r.message = message;
    rec.paths.push_back(r);
  }
}
}  // namespace

CaseRecord run_case(const Case& c, const RunOptions& o, bool cross_check) {
  // The edge of the testbed for a case nobody validated: an invalid one is recorded, not thrown.
  std::vector<std::string> errs;
  if (const std::optional<ValidCase> vc = ValidCase::of(c, &errs)) return run_case(*vc, o, cross_check);
  CaseRecord rec;
  rec.c = c;
  rec.replay = replay_line(c);
  identify(rec, false);
  rec.decision = select_path(o.device, c, o.kernels, std::nullopt, o.routing);  // the refusal, named
  fail_all(rec, o, "validation", "invalid case: " + join(errs, "; "));
  return rec;
}

CaseRecord run_case(const ValidCase& vc, const RunOptions& o, bool cross_check) {
  const Case& c = vc;
  CaseRecord rec;
  rec.c = c;
  rec.replay = replay_line(c);
  identify(rec, true);
  // Each kernel is asked once whether it takes the case; the dispatcher decides from the same
  // answers. Refusals need no inputs: a case no kernel takes costs no generation and no reference.
  Declines declined = ask_kernels(o.device, c, o.kernels);
  rec.decision = select_path(o.device, vc, o.kernels, declined, std::nullopt, o.routing);
  bool any_runs = false;
  for (const KernelPtr& k : o.kernels) any_runs |= !declined[k->name()];
  // A case the host (or, for inputs made there, the GPU) cannot hold is the harness's limit, not a
  // kernel's failure: Skipped, named.
  const std::string too_large = !any_runs ? ""
                                : o.inputs == Memory::host ? host_memory_refusal(c)
                                                           : device_memory_refusal(c);
  if (!any_runs || !too_large.empty()) {
    for (const KernelPtr& k : o.kernels) {
      PathRecord r = declined_record(*k, declined[k->name()].value_or(""));
      if (!declined[k->name()]) {
        r.status = Status::Skipped;
        r.message = too_large;
      }
      rec.paths.push_back(r);
    }
    if (o.dispatcher && !routable(o.kernels, o.routing).empty()) {
      PathRecord r;
      r.path = "auto";
      r.backend = backend_of(*routable(o.kernels, o.routing).front());
      r.status = rec.decision.path ? Status::Skipped : Status::NotSupported;
      r.message = rec.decision.path ? too_large : rec.decision.error();
      rec.paths.push_back(r);
    }
    return rec;
  }
  try {
    // The inputs and the oracle, on the host or on the device. The kernels read the call's views,
    // so whichever side made them must stay alive until the last kernel has run.
    std::optional<Inputs> in;
    std::optional<PhysicalKv> kv;
    std::optional<DeviceInputs> din;
    ReferenceResult ref;
    auto t = Clock::now();
    if (o.inputs == Memory::device) {
      din = make_device_inputs(vc);
      rec.inputs_ms = ms_since(t);
      t = Clock::now();
      ref = reference_attention_device(*din);
      rec.reference_ms = ms_since(t);
      rec.oracle = "gpu";
      if (cross_check && host_memory_refusal(c).empty()) {
        const Inputs host = make_inputs(c);
        rec.input_hash = input_hash(host);
        rec.oracle_disagreement = oracle_disagreement(ref, reference_attention(host));
      }
    } else {
      in = make_inputs(vc);
      kv = pack(*in);
      rec.input_hash = input_hash(*in);
      rec.inputs_ms = ms_since(t);
      t = Clock::now();
      ref = reference_attention(*in);
      rec.reference_ms = ms_since(t);
      rec.oracle = "cpu";
    }
    const KernelCall call = din ? make_call(*din) : make_call(*in, *kv);
    if (rec.oracle_disagreement > kOracleAgreement) {
      char what[160];
      std::snprintf(what, sizeof what, "the GPU oracle disagrees with the CPU oracle by %.3g (> %.0e): pacheck's bug, "
                    "not the kernel's; rerun with --inputs host", rec.oracle_disagreement, kOracleAgreement);
      fail_all(rec, o, "oracle", what);
      return rec;
    }

    std::map<std::string, PathRecord> done;
    for (const KernelPtr& k : o.kernels) {
      done[k->name()] = run_or_decline(*k, c, call, ref, o, declined[k->name()]);
      rec.paths.push_back(done[k->name()]);
    }
    if (o.dispatcher && !routable(o.kernels, o.routing).empty()) {
      PathRecord r;
      if (!rec.decision.path) {
        r.status = Status::NotSupported;
        r.message = rec.decision.error();
        r.backend = backend_of(*routable(o.kernels, o.routing).front());
      } else {
        const std::string& chosen = *rec.decision.path;
        r = done.at(chosen);
        r.message = "chose " + chosen + ": " + rec.decision.why + (r.message.empty() ? "" : "; " + r.message);
      }
      r.path = "auto";
      rec.paths.push_back(r);
    }
  } catch (const std::exception& e) {
    // A throwing library is a failure of this case, not of the whole run.
    fail_all(rec, o, "exception", std::string("exception: ") + e.what());
  }
  return rec;
}

}  // namespace pa
