// `pacheck run` and `pacheck replay`: cases -> testbed -> reporters.
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "mutate/mutate.hpp"
#include "reports/merge.hpp"
#include "reports/reporter.hpp"
#include "testbed/records.hpp"
#include "tools/args.hpp"
#include "tools/case_sources.hpp"
#include "tools/commands.hpp"
#include "tools/suites.hpp"
#include "core/source_dir.hpp"
#include "inputs/inputs.hpp"
#include "reference/attention.hpp"
#include "worker/isolated_kernel.hpp"

namespace pa::tools {

namespace {

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_sigint(int sig) {
  g_interrupted = 1;
  std::signal(sig, SIG_DFL);  // a second Ctrl-C (or SIGTERM) kills at once
}



// The context block of a run or a replay: what ran, where, from which commit.
report::Context run_context(const Args& a, const Target& t, const RunOptions& o, uint64_t seed, const std::string& source,
                            const std::string& inputs_reason) {
  report::Context ctx;
  ctx.shard = a.has("shard") ? a.get("shard") : "";
  ctx.pacheck_version = report::pacheck_version();
  ctx.git_commit = report::git_commit();
  ctx.compiler = report::compiler_id();
  ctx.device = t.device;
  ctx.backend = to_string(t.backend);
  ctx.backend_reason = t.backend_reason;
  ctx.runtime_version = gpu_runtime_version();
  ctx.driver_version = gpu_driver_version();
  ctx.gpu_compiler = gpu_compiler_version();
  ctx.seed = seed;
  ctx.suite = source;
  for (const KernelPtr& k : o.kernels) {
    ctx.paths.push_back(k->name());
    ctx.kernels.push_back(kernel_record(*k));
  }
  ctx.inputs = o.inputs == Memory::device ? "device" : "host";
  ctx.inputs_reason = inputs_reason;
  ctx.started_utc = report::utc_now();

  return ctx;
}

}  // namespace

Target resolve_target(const Args& a) {
  Target t;
  const std::string b = a.get("backend", "auto");
  std::string why;
  if (b == "auto") {
    if (gpu_available(&why)) {
      t.backend = Backend::gpu;
      t.backend_reason = "auto: a GPU is present";
    } else {
      t.backend = Backend::host;
      t.backend_reason = "auto: no GPU (" + why + "), using the host twins";
    }
  } else if (auto pb = parse_backend(b)) {
    t.backend = *pb;
    t.backend_reason = "--backend " + b;
    if (*pb == Backend::gpu && !gpu_available(&why)) t.backend_reason += " (unavailable: " + why + ")";
  } else {
    throw InputError("--backend " + b + ": expected auto, host or gpu");
  }
  if (a.has("device")) {
    const auto d = device_model(a.get("device"));
    if (!d) throw InputError("--device " + a.get("device") + ": expected " + device_model_names());
    t.device = *d;
  } else if (t.backend == Backend::gpu && gpu_available()) {
    t.device = gpu_device();
  } else {
    t.device = device_mi300x();
  }
  // The kernels under test: every --kernel (plug-ins), else the built-in kernels of the backend;
  // --paths picks built-ins by name (alongside plug-ins when both are given).
  const std::string isolate = a.get("isolate", "external");
  if (isolate != "always" && isolate != "external" && isolate != "never")
    throw InputError("--isolate " + isolate + ": expected always, external or never");
  worker::IsolationOptions iso;
  iso.self_exe = self_exe();
  iso.python = std::getenv("PACHECK_PYTHON") && *std::getenv("PACHECK_PYTHON") ? std::getenv("PACHECK_PYTHON") : "python3";
  iso.adapters_dir = source_dir(PACHECK_SOURCE_DIR) + "/adapters";
  iso.timeout_s = a.has("kernel-timeout") ? parse_seconds("kernel-timeout", a.get("kernel-timeout")) : 60.0;
  // In process nothing can stop a launch that hangs: a timeout that would be ignored is refused.
  if (a.has("kernel-timeout") && isolate == "never")
    throw InputError("--kernel-timeout " + a.get("kernel-timeout") + " needs a worker to stop a launch; it cannot "
                     "apply with --isolate never (use --isolate external)");
  Registry builtin = builtin_kernels(t.backend);
  if (isolate == "always") {  // pacheck's own kernels in a worker too
    Registry isolated;
    for (KernelPtr& k : worker::isolated_kernels(std::string("builtin:") + to_string(t.backend), iso)) isolated.add(k);
    builtin = std::move(isolated);
  }
  for (const std::string& spec : a.all("kernel")) {
    const bool py = spec.rfind("py:", 0) == 0;
    const std::vector<KernelPtr> loaded =
        py || isolate != "never" ? worker::isolated_kernels(spec, iso) : load_plugin(spec);
    for (const KernelPtr& k : loaded) {
      // Records, replay lines and merged shards are keyed by kernel name: a plug-in may not take a
      // built-in kernel's name (it would stand in for it silently) nor the dispatcher's "auto".
      if (k->name() == "auto" || builtin.find(k->name()))
        throw InputError("--kernel " + spec + ": kernel '" + k->name() + "' takes the name of " +
                         (k->name() == "auto" ? std::string("the dispatcher's records") : "a built-in kernel") +
                         "; give it another name");
      t.registry.add(k);
      t.specs[k->name()] = py || spec.find(':') != std::string::npos ? spec : spec + ":" + k->name();
    }
  }
  if (a.has("paths")) {
    for (const std::string& name : split_list(a.get("paths"))) {
      if (t.registry.find(name)) continue;
      KernelPtr k = builtin.find(name);
      if (!k)
        throw InputError("--paths " + a.get("paths") + ": unknown kernel '" + name + "' (built-in on " +
                         to_string(t.backend) + ": " + builtin.names() + ")");
      t.registry.add(k);
    }
  } else if (a.all("kernel").empty()) {
    for (const KernelPtr& k : builtin.all()) t.registry.add(k);
  }
  if (t.registry.all().empty()) throw InputError("no kernel to run: the " + std::string(to_string(t.backend)) +
                                                 " backend has no built-in kernels here; give --kernel or --backend host");
  return t;
}

const std::vector<Flag> kTargetFlags = {
    {"kernel", "SPEC", "a kernel to test: PATH.so[:NAME] (C plug-in) or py:PATH/adapter.py (Python); repeatable", true},
    {"isolate", "MODE", "always|external|never: which kernels run in a worker process (default external: plug-ins\n"
                        "                              and adapters; a crash or hang is then a Fail of that case, not of the run)"},
    {"kernel-timeout", "S", "seconds a worker may take for one launch before it is killed (default 60)"},
    {"paths", "LIST", "comma-separated built-in kernels to run: v1,hip,asm,unified,unified_split,mla,mla_split (default: all, unless --kernel)"},
    {"backend", "B", "built-in kernels: auto|host|gpu (default auto: gpu when one is present, else the host twins)"},
    {"device", "D", "device model the dispatcher routes for: mi300x|mi355x|h100 (default: the GPU, else mi300x)"},
    {"no-dispatch", "", "do not add the dispatcher's choice as an \"auto\" record"},
};

const Flag kInputsFlag = {"inputs", "WHERE",
                          "auto|host|device: where inputs are generated and the fp64 oracle runs (default auto: device\n"
                          "                              when a GPU is present and every kernel reads device memory; the same bytes)"};

std::vector<Flag> with_target(std::vector<Flag> f) {
  f.insert(f.end(), kTargetFlags.begin(), kTargetFlags.end());
  return f;
}

RunOptions run_options(const Args& a, const Target& t, std::string* inputs_reason) {
  RunOptions o;
  o.kernels = t.registry.all();
  o.device = t.device;
  o.dispatcher = !a.has("no-dispatch");
  const std::string where = a.get("inputs", "auto");
  std::string why;
  const Memory possible = inputs_memory(o.kernels, &why);
  if (where == "auto") {
    o.inputs = possible;
    why = "auto: " + why;
  } else if (where == "host") {
    o.inputs = Memory::host;
    why = "--inputs host";
  } else if (where == "device") {
    if (possible != Memory::device) throw InputError("--inputs device: not possible here: " + why);
    o.inputs = Memory::device;
    why = "--inputs device";
  } else {
    throw InputError("--inputs " + where + ": expected auto, host or device");
  }
  if (inputs_reason) *inputs_reason = why;
  return o;
}

int default_jobs(const Args& a, const RunOptions& o) {
  if (a.has("jobs")) {
    const uint64_t j = parse_u64("jobs", a.get("jobs"));
    if (j < 1) throw InputError("--jobs 0: expected at least 1");
    return int(std::min<uint64_t>(j, 1024));
  }
  return o.inputs == Memory::device ? std::min(kDefaultDeviceJobs, default_threads()) : 1;
}

std::string self_exe() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw std::runtime_error("cannot find this program (/proc/self/exe) to start a worker");
  buf[n] = 0;
  return buf;
}

double parse_seconds(const std::string& flag, const std::string& value) {
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  if (end == value.c_str() || *end || !(v > 0)) throw InputError("--" + flag + " " + value + ": expected a positive number of seconds");
  return v;
}

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    out.push_back(list.substr(start, comma - start));
    if (out.back().empty()) throw InputError("'" + list + "': empty entry in a comma-separated list");
    start = comma + 1;
  }
  return out;
}

std::string Target::replay_flags(const std::string& kernel) const {
  const auto it = specs.find(kernel);
  if (it != specs.end()) return " --kernel " + it->second;
  return " --paths " + kernel + " --backend " + to_string(backend);
}


namespace {
// The cases of `run -j`: workers take indices in order and put records; the reporting thread gets
// them back in index order. A worker's exception is kept and rethrown by rethrow().
class CaseQueue {
 public:
  explicit CaseQueue(size_t n) : slots_(n) {}
  size_t take() { return next_.fetch_add(1); }
  template <class F>
  void put(size_t n, F&& run) {
    std::optional<CaseRecord> rec;
    try {
      rec = run();
    } catch (...) {
      const std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
      stopped_ = true;
    }
    const std::lock_guard<std::mutex> lock(mu_);
    slots_[n] = std::move(rec);
    ready_.notify_all();
  }
  /// Case n's record; nullopt when no worker will produce it (`stop()` turned true, or a
  /// worker failed).
  std::optional<CaseRecord> get(size_t n, const std::function<bool()>& stop) {
    std::unique_lock<std::mutex> lock(mu_);
    while (!slots_[n] && !stopped_ && !stop())  // polls stop(): a signal handler cannot notify
      ready_.wait_for(lock, std::chrono::milliseconds(200));
    std::optional<CaseRecord> r = std::move(slots_[n]);
    slots_[n].reset();
    return r;
  }
  void stop() {
    const std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    next_.store(slots_.size());
  }
  void rethrow() {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::vector<std::optional<CaseRecord>> slots_;
  std::atomic<size_t> next_{0};
  std::mutex mu_;
  std::condition_variable ready_;
  std::exception_ptr error_;
  bool stopped_ = false;
};
}  // namespace

void run_in_order(const std::vector<Case>& cases, const std::vector<size_t>& indices, const RunOptions& o, int jobs,
                  const std::function<void(size_t, const CaseRecord&)>& emit, const std::function<bool()>& stop) {
  // The GPU oracle is cross-checked against the CPU one on every kOracleCheckEvery-th case of the
  // run that is not too large (by index, so shards check the same cases as the whole run).
  const auto check = [&](size_t i) {
    const Case& c = cases[i];
    return i % kOracleCheckEvery == 0 && c.total_tokens() * c.num_kv_heads * c.head_size <= kOracleCheckMaxElements;
  };
  const auto run = [&](size_t n) { return run_case(cases[indices[n]], o, check(indices[n])); };
  if (jobs <= 1) {
    for (size_t n = 0; n < indices.size() && !stop(); ++n) emit(n, run(n));
    return;
  }
  // Cases run on `jobs` threads, each case's own generation and oracle on its share of the
  // cores (the bytes never depend on thread counts); records are emitted in case order.
  const int share = std::max(1, default_threads() / jobs);
  set_input_threads(share);
  set_reference_threads(share);
  CaseQueue q(indices.size());
  std::vector<std::thread> pool;
  for (int w = 0; w < jobs; ++w)
    pool.emplace_back([&] {
      for (size_t n; (n = q.take()) < indices.size() && !stop();) q.put(n, [&] { return run(n); });
    });
  for (size_t n = 0; n < indices.size(); ++n) {
    std::optional<CaseRecord> rec = q.get(n, stop);
    if (!rec) break;  // stopped before this case ran
    emit(n, *rec);
  }
  q.stop();
  for (auto& th : pool) th.join();
  set_input_threads(0);
  set_reference_threads(0);
  q.rethrow();
}

int cmd_run(int argc, char** argv, int begin) {
  Args a("pacheck run",
         "Runs cases on every requested path (and the dispatcher's choice), judges each against the fp64\n"
         "reference and writes a JSON report. Exit 0: all pass; 1: a Fail record; 2: usage or input\n"
         "error; 130: interrupted (the report is still written).",
         with_target({
             {"suite", "NAME", "built-in suite: smoke|ci|nightly (default smoke when no --case/--regression)"},
             {"case", "FILE", "a JSON case file (one case or an array)", true},
             {"regression", "DIR", "every *.json under DIR (regression corpus)", true},
             {"seed", "N", "re-seeds the suite (with --case/--regression: overrides each case's seed)"},
             {"report", "FILE", "JSON report to write (default pacheck-report.json); a previous one is removed first"},
             {"follow-symlinks", "", "write through a symbolic link at the output path (refused otherwise)"},
             {"quiet", "", "print only failures and the summary"},
             {"shard", "i/n", "run only cases with index % n == i (deterministic; `pacheck merge` joins the shards)"},
             kInputsFlag,
             {"jobs", "N", "run N cases at once, each on its share of the threads (default: 16, at most one per core, with\n"
                           "                              inputs on the GPU; else 1); the report's order and\n"
                           "every record's bytes are those of -j 1 (timings apart)", false, "flags", "j"},
         }));
  if (!a.parse(argc, argv, begin)) {
    std::cout << a.help_text();
    return kExitOk;
  }
  const Target t = resolve_target(a);
  std::string inputs_reason;
  const RunOptions o = run_options(a, t, &inputs_reason);
  const bool has_seed = a.has("seed");
  const uint64_t seed = has_seed ? parse_u64("seed", a.get("seed")) : kDefaultSuiteSeed;

  std::vector<Case> cases;
  std::string source;
  for (const std::string& f : a.all("case")) {
    for (Case& c : load_case_file(f)) cases.push_back(std::move(c));
    source += (source.empty() ? "" : "+") + std::string("case:") + f;
  }
  for (const std::string& d : a.all("regression")) {
    for (Case& c : load_case_dir(d)) cases.push_back(std::move(c));
    source += (source.empty() ? "" : "+") + std::string("regression:") + d;
  }
  if (has_seed && !source.empty())
    for (Case& c : cases) c.seed = seed;
  if (a.has("suite") || source.empty()) {
    const std::string name = a.get("suite", "smoke");
    for (Case& c : suite(name, seed, t.device.native_fp8)) cases.push_back(std::move(c));
    source = name + (source.empty() ? "" : "+" + source);
    // A suite is written for pacheck's own paths, so most of it lies outside a plug-in's
    // declaration. Each plug-in also gets cases drawn inside its own capability (generated_cases:
    // the property generator, every declared KV dtype first, boundary lengths at its partition).
    const int per_kernel = name == "smoke" ? 20 : name == "ci" ? 100 : 500;
    for (const auto& [kernel, spec] : t.specs)
      for (const RegressionCase& r : generated_cases(*t.registry.get(kernel), per_kernel, seed)) {
        Case c = r.c;
        c.name = name + "/" + kernel + "/" + std::to_string(cases.size());
        cases.push_back(std::move(c));
      }
  }

  // Sharding keeps each case's index in the whole run, so merged shards equal the unsharded run.
  std::vector<size_t> indices;
  std::pair<int, int> shard{0, 1};
  if (a.has("shard")) shard = report::parse_shard(a.get("shard"));
  for (size_t i = 0; i < cases.size(); ++i)
    if (int(i % size_t(shard.second)) == shard.first) indices.push_back(i);

  const report::Context ctx = run_context(a, t, o, seed, source, inputs_reason);

  report::ConsoleReporter console(std::cout, {a.has("quiet"), bool(::isatty(STDOUT_FILENO))});
  report::JsonReporter json(a.get("report", "pacheck-report.json"), a.has("follow-symlinks"));
  std::vector<report::Reporter*> reporters = {&json, &console};  // the file first: it can fail (exit 2)
  for (auto* r : reporters) r->begin(ctx, int64_t(indices.size()));

  g_interrupted = 0;
  std::signal(SIGINT, on_sigint);
  std::signal(SIGTERM, on_sigint);  // a CI time limit: the final report is still written
  const auto start = std::chrono::steady_clock::now();
  std::vector<report::Record> all;
  auto emit = [&](size_t n, const CaseRecord& rec) {
    std::vector<report::Record> recs = report_records(rec, int64_t(indices[n]));
    for (report::Record& r : recs)  // each record replays its own kernel
      if (!r.ran.empty()) r.replay += t.replay_flags(r.ran);
    all.insert(all.end(), recs.begin(), recs.end());
    for (auto* r : reporters) r->on_case(recs);
  };
  const int jobs = default_jobs(a, o);
  run_in_order(cases, indices, o, jobs, [&](size_t n, const CaseRecord& rec) { emit(n, rec); },
               [] { return g_interrupted != 0; });
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  report::Summary s = report::summarize(all);
  s.elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  s.interrupted = g_interrupted != 0;
  for (auto* r : reporters) r->end(s);
  if (o.inputs == Memory::device)
    std::printf("inputs and fp64 oracle on the GPU; the GPU oracle agreed with the CPU oracle to %.2g on the %lld "
                "cases cross-checked (limit %.0e)\n", s.oracle_max_disagreement, (long long)s.oracle_cross_checked,
                kOracleAgreement);
  std::cout << "report: " << json.path() << "\n";
  // An interrupted run is unfinished whatever it found so far: 130, so that a CI cancellation is
  // never read as a verdict (the report says which records failed).
  if (s.interrupted) return kExitInterrupted;
  return s.fail ? kExitFail : kExitOk;
}

int cmd_replay(int argc, char** argv, int begin) {
  std::vector<Flag> flags = with_target({
      {"case", "JSON|FILE", "the case as JSON text, or a file holding it"},
      {"report", "FILE", "take the case from this report (with --index or --slug)"},
      {"index", "N", "case index in the report (the records' case.index)"},
      {"slug", "S", "case slug in the report"},
      {"plan-from", "JSON|FILE", "a kernel with a plan step reuses a plan made for this case on the replayed one\n"
                                 "                              (a finding of metric plan names it in its replay line)"},
      kInputsFlag,
  });
  // Every field of the case is a flag too (--seed also overrides --case's or the report's seed).
  std::vector<std::string> field_flags;
  const Case defaults;
  for_each_field(defaults, [&](const CaseField& f, const auto&) {
    if (std::string(f.json) == "name") return;
    field_flags.push_back(f.json);
    flags.push_back({f.json, "V", f.help, false, "case fields (defaults: core/case.hpp)"});
  });
  Args a("pacheck replay",
         "Re-runs one case on every path (and the dispatcher's choice) and prints each path's metrics.\n"
         "The case comes from --case (JSON text or a file), from a report entry (--report with --index\n"
         "or --slug), or from case-field flags (--num_seqs 2 --context_lens 64,65 --kv_layout shuffled).\n"
         "Exit 0: all pass; 1: a Fail; 2: usage or input error.",
         flags);
  if (!a.parse(argc, argv, begin)) {
    std::cout << a.help_text();
    return kExitOk;
  }
  bool any_field = false;
  for (const std::string& f : field_flags) any_field |= f != "seed" && a.has(f);
  nlohmann::json j = nlohmann::json::object();
  Case c;
  if (a.has("case")) {
    c = one_case(a.get("case"), "--case");
  } else if (a.has("report")) {
    const report::Report rep = report::load_report(a.get("report"));
    const report::Record* found = nullptr;
    if (a.has("index") == a.has("slug")) throw InputError("--report needs exactly one of --index or --slug");
    const int64_t index = a.has("index") ? parse_i64("index", a.get("index")) : -1;
    for (const report::Record& r : rep.cases)
      if ((index >= 0 && r.case_index == index) || (a.has("slug") && r.slug == a.get("slug"))) {
        found = &r;
        break;
      }
    if (!found)
      throw InputError(a.get("report") + ": no case with " +
                       (a.has("index") ? "--index " + a.get("index") : "--slug " + a.get("slug")));
    c = parse_cases(found->case_json.dump(), a.get("report") + " case " + found->slug).front();
  } else if (any_field || a.has("seed")) {
    j = to_json(Case{});
    j.erase("context_lens");
    for (const std::string& key : field_flags) {
      if (!a.has(key)) continue;
      const std::string value = a.get(key);
      if (key == "context_lens") {
        j[key] = nlohmann::json::parse("[" + value + "]", nullptr, false);
        if (j[key].is_discarded()) throw InputError("--context_lens " + value + ": expected a list like 64,65");
        continue;
      }
      nlohmann::json v = nlohmann::json::parse(value, nullptr, false);
      j[key] = v.is_discarded() || v.is_string() ? nlohmann::json(value) : v;
    }
    if (!j.contains("context_lens")) j["context_lens"] = std::vector<int32_t>(size_t(j.value("num_seqs", 1)), 64);
    c = parse_cases(j.dump(), "case flags").front();
  } else {
    throw InputError("replay needs a case: --case, --report with --index/--slug, or case-field flags (see --help)");
  }
  if (a.has("seed")) c.seed = parse_u64("seed", a.get("seed"));
  const ValidCase vc = ValidCase::checked(c);  // the edge: a bad case is exit 2 naming each field
  const Target t = resolve_target(a);
  std::string inputs_reason;
  RunOptions o = run_options(a, t, &inputs_reason);
  if (a.has("plan-from")) o.plan_from = Case(ValidCase::checked(one_case(a.get("plan-from"), "--plan-from")));
  o.reuse_plans = false;  // one case: only --plan-from's plan is reused
  // Asked for explicitly, a case the host (or, for inputs made there, the GPU) cannot hold is an
  // input error, not a Skipped record.
  const std::string too_large = o.inputs == Memory::host ? host_memory_refusal(vc) : device_memory_refusal(vc);
  if (!too_large.empty()) throw InputError(too_large);
  const auto start = std::chrono::steady_clock::now();
  const CaseRecord rec = run_case(vc, o);
  // Through the reporters, like `run`, with every record's metrics shown.
  report::ConsoleReporter console(std::cout, {false, false, true});
  console.begin(run_context(a, t, o, c.seed, "replay", inputs_reason), 1);
  std::vector<report::Record> recs = report_records(rec, 0);
  for (report::Record& r : recs)
    if (!r.ran.empty()) r.replay += t.replay_flags(r.ran);
  console.on_case(recs);
  report::Summary s = report::summarize(recs);
  s.elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  console.end(s);
  return s.fail > 0 ? kExitFail : kExitOk;
}

}  // namespace pa::tools
