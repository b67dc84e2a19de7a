// `pacheck worker`, `pacheck mutate` and `pacheck report`: the commands that serve, probe and
// present kernels beyond running suites.
#include <csignal>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "bench/bench.hpp"
#include "core/device_pool.hpp"
#include "core/prng.hpp"
#include "mutate/mutate.hpp"
#include "property/check.hpp"
#include "regression/corpus.hpp"
#include "reports/html/html_report.hpp"
#include "reports/merge.hpp"
#include "tools/args.hpp"
#include "tools/case_sources.hpp"
#include "tools/commands.hpp"
#include "tools/suites.hpp"
#include "reports/reporter.hpp"
#include "worker/server.hpp"

namespace pa::tools {

int cmd_worker(int argc, char** argv, int begin) {
  Args a("pacheck worker",
         "Serves kernels to a parent pacheck over the worker protocol (docs/worker-protocol.md) on fds\n"
         "3 (shared memory), 4 (requests) and 5 (responses). Started by pacheck itself for --kernel\n"
         "plug-ins (see --isolate); not meant to be run by hand.",
         {{"kernel", "SPEC", "PATH.so (every kernel it exports), builtin:host or builtin:gpu"}});
  if (!a.parse(argc, argv, begin)) {
    std::cout << a.help_text();
    return kExitOk;
  }
  const std::string spec = a.get("kernel");
  if (spec.empty()) throw InputError("worker needs --kernel");
  std::vector<KernelPtr> kernels;
  if (spec == "builtin:host" || spec == "builtin:gpu")
    kernels = builtin_kernels(spec == "builtin:host" ? Backend::host : Backend::gpu).all();
  else
    kernels = load_plugin(spec);
  return worker::serve(kernels);
}

namespace {
volatile std::sig_atomic_t g_check_stop = 0;
void on_check_signal(int sig) {
  g_check_stop = sig;
  std::signal(sig, SIG_DFL);  // a second Ctrl-C (or SIGTERM) kills at once
}
}  // namespace

int cmd_check(int argc, char** argv, int begin) {
  Args a("pacheck check",
         "Runs the property suite against registered kernels: generated cases drawn inside each kernel's\n"
         "declared capability must match the fp64 reference; page relocation, K*s with k_scale/s, the\n"
         "split size and GQA = MHA must not change the answer; poison must never leak; for kernels\n"
         "taking ragged batches, splitting or permuting a batch, computing an extend row as decode steps\n"
         "and zeroing the queries (the mean of the visible V rows) must agree; outside the capability a\n"
         "clean refusal is required; the dispatcher never picks a kernel that excludes the case. A failure is shrunk to a minimal case, saved under regression/captured/ and printed\n"
         "with a replay line. Exit 0: every applicable property holds; 1: one fails; 2: usage error.",
         with_target({{"cases", "N", "generated cases per property (default 100)"},
                      {"seed", "N", "seed of the whole check (default: fresh, printed)"},
                      {"properties", "LIST", "only these properties (default all): " + [] {
                         std::string s;
                         for (const std::string& n : prop::property_names()) s += (s.empty() ? "" : ",") + n;
                         return s;
                       }()},
                      {"no-capture", "", "do not save minimal failing cases under regression/captured/"},
                      {"case", "JSON|FILE", "check this one case instead of generated ones (a failed property's replay line)"},
                      {"shard", "i/n", "shard i of n: --cases/n cases per property, drawn from a seed of its own derived from "
                                       "--seed and i (n shards draw n different case sets; run each with the same --seed)"}}));
  if (!a.parse(argc, argv, begin)) {
    std::cout << a.help_text();
    return kExitOk;
  }
  const Target t = resolve_target(a);
  prop::CheckOptions o;
  if (a.has("case")) {
    o.only = one_case(a.get("case"), "--case");
    check_valid(*o.only);
    o.cases = 3;  // the case is fixed; a property's own draws (a split size) get a few tries
  }
  if (a.has("cases")) o.cases = int(parse_i64("cases", a.get("cases")));
  if (a.has("seed")) o.seed = parse_u64("seed", a.get("seed"));  // before the shard derives its own from it
  if (a.has("shard")) {
    if (!a.has("seed")) throw InputError("--shard needs --seed: the shards of one check share its seed");
    const auto [i, n] = report::parse_shard(a.get("shard"));
    o.cases = std::max(1, (o.cases + n - 1) / n);
    o.seed = mix64(o.seed ^ mix64(uint64_t(i) + 1));
    if (o.seed == 0) o.seed = 1;
    std::cout << "shard " << a.get("shard") << " of check seed " << a.get("seed") << ": " << o.cases
              << " cases per property, seed " << o.seed << "\n";
  }
  if (a.has("properties")) o.properties = split_list(a.get("properties"));
  o.device = t.device;
  o.every_device_model = !a.has("device") && t.backend == Backend::host;
  o.capture = !a.has("no-capture");
  o.limits = gen::limits_from_env();
  // Ctrl-C or SIGTERM (a CI time limit) stops the check after the property in flight: what ran is
  // printed and the exit is 130. A second signal kills at once.
  g_check_stop = 0;
  std::signal(SIGINT, on_check_signal);
  std::signal(SIGTERM, on_check_signal);
  o.stop = [] { return g_check_stop != 0; };
  bool passed = true;
  size_t done = 0;
  for (const KernelPtr& k : t.registry.all()) {
    if (g_check_stop) break;
    const auto spec = t.specs.find(k->name());
    o.kernel_spec = spec == t.specs.end() ? "" : "--kernel " + spec->second;
    const prop::CheckReport rep = prop::check_kernel(k, t.registry.all(), o);
    prop::print_check_report(std::cout, rep);
    std::cout.flush();  // a long check cut off by a time limit keeps the kernels it finished
    passed = passed && rep.passed();
    done += rep.interrupted ? 0 : 1;
  }
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (g_check_stop) {
    std::cout << "check interrupted by signal " << int(g_check_stop) << ": " << done << " of " << t.registry.all().size()
              << " kernels checked completely" << (passed ? "" : "; a property failed") << "\n";
    return kExitInterrupted;
  }
  return passed ? kExitOk : kExitFail;
}

namespace {
// `bench --harness`: the suite through run_case, timed by part. Parts are summed over cases, so
// with -j they add up to more than the wall time; their shares say where the work goes.
int bench_harness(const std::string& name, const Target& t, const Args& a) {
  const std::vector<Case> cases = suite(name, kDefaultSuiteSeed, t.device.native_fp8);
  std::vector<size_t> indices(cases.size());
  for (size_t i = 0; i < cases.size(); ++i) indices[i] = i;
  std::string where;
  const RunOptions o = run_options(a, t, &where);
  const int jobs = default_jobs(a, o);
  double inputs = 0, oracle = 0, kernels = 0, crossed = 0, contract = 0, judged = 0, disagreement = 0;
  const DevicePoolStats pool0 = device_pool_stats();
  int64_t checked = 0;
  const auto t0 = std::chrono::steady_clock::now();
  run_in_order(cases, indices, o, std::max(1, jobs), [&](size_t, const CaseRecord& rec) {
    inputs += rec.inputs_ms;
    oracle += rec.reference_ms;
    if (rec.oracle_disagreement >= 0) {
      ++checked;
      disagreement = std::max(disagreement, rec.oracle_disagreement);
    }
    for (const PathRecord& p : rec.paths) {
      if (p.path == "auto") continue;  // the dispatcher's record repeats the chosen kernel's
      kernels += p.elapsed_ms;
      crossed += p.run_ms;
      contract += p.contract_ms;
      judged += p.wall_ms;
    }
  }, [] { return false; });
  const double wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const double work = inputs + oracle + judged;
  std::printf("harness: suite %s, %zu cases, -j %d, %s backend, %s\n", name.c_str(), cases.size(), std::max(1, jobs),
              to_string(t.backend), t.device.name.c_str());
  std::printf("  inputs and oracle on the %s (%s)\n", o.inputs == Memory::device ? "GPU" : "host", where.c_str());
  if (checked) std::printf("  GPU oracle vs CPU oracle on %lld cases: max disagreement %.2g\n", (long long)checked, disagreement);
  std::printf("  %.1f cases/s (%.2f s wall)\n", 1000.0 * double(cases.size()) / wall, wall / 1000);
  const auto row = [&](const char* part, double ms) {
    std::printf("  %-34s %10.1f ms  %5.1f %%\n", part, ms, 100.0 * ms / std::max(work, 1e-9));
  };
  row("inputs (generate + pack)", inputs);
  row("fp64 oracle", oracle);
  row("kernels under test", kernels);
  row("their crossings (buffers, guards)", crossed - kernels);
  row("judging", judged - crossed - contract);
  row("call contract (plans, graphs)", contract);
  const DevicePoolStats pool = device_pool_stats();
  if (o.inputs == Memory::device || pool.allocated > pool0.allocated)
    std::printf("  device pool: %lld blocks reused, %lld new (%.2f GiB), %lld freed\n",
                (long long)(pool.reused - pool0.reused), (long long)(pool.allocated - pool0.allocated),
                double(pool.allocated_bytes - pool0.allocated_bytes) / double(1 << 30), (long long)(pool.freed - pool0.freed));
  return kExitOk;
}
}  // namespace

int cmd_bench(int argc, char** argv, int begin) {
  Args a("pacheck bench",
         "Times registered kernels where decode attention lives: against the memory roofline. Each point\n"
         "is checked against the fp64 oracle first (a wrong kernel is reported wrong, not fast), then\n"
         "timed with device events after warm-up over input sets rotated past the L2 (median of the\n"
         "repetitions, with the interquartile spread), beside a streaming-read kernel over as many bytes\n"
         "as the point needs, measured in the same run. Records bandwidth, its fraction of the stream,\n"
         "and the dispatcher's regret (time of its pick over the fastest kernel). --quick: three small\n"
         "points for the host twins (CI); their numbers are host timings, never compared to GPU ones.",
         with_target({{"sweep", "NAME", "models (default: model head configs x concurrency x context), quick, or mla (a DeepSeek-V3-sized MLA decode, 128 heads, 4k and 32k, S 1-256)"},
                      {"quick", "", "the three-point host sweep (same as --sweep quick)"},
                      kInputsFlag,
                      {"case", "FILE", "time the cases of a JSON file instead of a sweep", true},
                      {"models", "LIST", "only these model configs (core/models.hpp names)"},
                      {"concurrency", "LIST", "sequences per point (default 1,4,16,64,256,512)"},
                      {"contexts", "LIST", "context lengths (default 1024,8192,32768)"},
                      {"max-tokens", "N", "leave out points with more KV tokens than N (default 4194304)"},
                      {"reps", "N", "timed launches per kernel and point (default 20, at least 20)"},
                      {"no-check", "", "skip the correctness check before timing"},
                      {"report", "FILE", "JSON report to write (default pacheck-bench.json)"},
                      {"harness", "SUITE", "time the harness instead of the kernels: run SUITE (smoke|ci|nightly) and print "
                                           "cases/s and where the wall time goes (inputs, oracle, kernels, the rest)"},
                      {"jobs", "N", "with --harness: cases at once, as `pacheck run -j` (same default)", false, "flags", "j"}}));
  if (!a.parse(argc, argv, begin)) {
    std::cout << a.help_text();
    return kExitOk;
  }
  const Target t = resolve_target(a);
  if (a.has("harness")) return bench_harness(a.get("harness"), t, a);
  bench::SweepOptions so;
  const auto ints = [](const std::string& flag, const std::string& list) {
    std::vector<int32_t> v;
    for (const std::string& x : split_list(list)) v.push_back(int32_t(parse_i64(flag, x)));
    return v;
  };
  if (a.has("models")) so.models = split_list(a.get("models"));
  if (a.has("concurrency")) so.concurrency = ints("concurrency", a.get("concurrency"));
  if (a.has("contexts")) so.contexts = ints("contexts", a.get("contexts"));
  if (a.has("max-tokens")) so.max_tokens = parse_i64("max-tokens", a.get("max-tokens"));
  std::vector<bench::Point> points;
  std::string source;
  for (const std::string& f : a.all("case")) {
    for (const Case& c : load_case_file(f)) points.push_back({c.name.empty() ? "case" : c.name, c});
    source += (source.empty() ? "case:" : "+case:") + f;
  }
  if (points.empty()) {
    source = a.has("quick") ? "quick" : a.get("sweep", "models");
    points = bench::sweep(source, t.device, so);
  }
  bench::Options o;
  if (a.has("reps")) o.timing.repetitions = int(parse_i64("reps", a.get("reps")));
  if (o.timing.repetitions < 20) throw InputError("--reps " + a.get("reps") + ": at least 20 timed launches per point");
  o.check = !a.has("no-check");
  const auto results = bench::run(points, t.registry.all(), t.device, o,
                                  [](const bench::PointResult& r, size_t n, size_t total) {
                                    std::cerr << "bench " << n << "/" << total << " " << r.point.model << " S="
                                              << r.point.c.num_seqs << " ctx=" << r.point.c.max_context() << "\n";
                                  });
  bench::print_table(std::cout, results);
  report::Report rep;
  rep.context.pacheck_version = report::pacheck_version();
  rep.context.git_commit = report::git_commit();
  rep.context.compiler = report::compiler_id();
  rep.context.device = t.device;
  rep.context.backend = to_string(t.backend);
  rep.context.backend_reason = t.backend_reason;
  rep.context.runtime_version = gpu_runtime_version();
  rep.context.driver_version = gpu_driver_version();
  rep.context.gpu_compiler = gpu_compiler_version();
  rep.context.suite = "bench:" + source;
  for (const KernelPtr& k : t.registry.all()) rep.context.paths.push_back(k->name());
  rep.context.started_utc = report::utc_now();
  rep.bench = bench::records(results);
  rep.summary = report::summarize(rep.cases);
  const std::string out = a.get("report", "pacheck-bench.json");
  report::write_report(rep, out);
  std::cout << "report: " << out << " (" << rep.bench.size() << " bench records)\n";
  bool wrong = false;
  for (const auto& r : results)
    for (const auto& k : r.kernels) wrong = wrong || k.status == Status::Fail;
  return wrong ? kExitFail : kExitOk;
}

int cmd_mutate(int argc, char** argv, int begin) {
  Args a("pacheck mutate",
         "pacheck's catch rate on your kernel: each contract mutant (a wrong page stride, V layout, fp8\n"
         "flavour, scale indexing, a dropped scale, soft-cap, window or sinks, the GQA mapping, one slot\n"
         "read past the end, a routing table entry, an output off by a few percent) is planted by a\n"
         "wrapper around the kernel, and the incident corpus plus cases generated inside the kernel's\n"
         "declaration run until the first finding. Prints, per mutant, the first case and metric that\n"
         "caught it. Exit 0: every mutant that applies was caught; 1: one survived or the unmutated\n"
         "kernels are not clean; 2: usage or input error.",
         with_target({{"cases", "N", "generated cases per kernel (default 100)"},
                      {"seed", "N", "seed of the generated cases (default 1)"},
                      {"mutants", "LIST", "only these mutants (default: the whole catalogue)"},
                      {"regression", "DIR", "corpus directory (default regression/cases of this checkout)"}}));
  if (!a.parse(argc, argv, begin)) {
    std::cout << a.help_text();
    return kExitOk;
  }
  const Target t = resolve_target(a);
  MutationOptions o;
  if (a.has("cases")) o.generated_cases = int(parse_i64("cases", a.get("cases")));
  if (a.has("seed")) o.seed = parse_u64("seed", a.get("seed"));
  if (a.has("mutants"))
    for (const std::string& m : split_list(a.get("mutants"))) {
      const auto id = parse_contract_mutant(m);
      if (!id) {
        std::string known;
        for (const auto& info : contract_mutants()) known += (known.empty() ? "" : ", ") + std::string(info.name);
        throw InputError("--mutants: unknown mutant '" + m + "' (" + known + ")");
      }
      o.mutants.push_back(*id);
    }
  o.on_result = [](const MutantResult& r) {
    std::cerr << (r.caught ? "caught   " : "SURVIVED ") << r.name << " in " << r.kernel << "\n";
  };
  const std::vector<RegressionCase> corpus = load_corpus(a.get("regression", corpus_dir()));
  const MutationReport rep = mutation_score(t.registry.all(), corpus, o);
  print_mutation_report(std::cout, rep);
  return rep.clean && rep.caught() == rep.total() ? kExitOk : kExitFail;
}

int cmd_report(int argc, char** argv, int begin) {
  Args a("pacheck report",
         "Renders one or more JSON reports (oldest first: several make a nightly history) into one\n"
         "self-contained HTML page: the summary, a pass matrix of kernel x feature, every failure with\n"
         "its replay line, error against tolerance per kernel, bench plots and the per-kernel trend.\n"
         "Chart.js is inlined from Debian's libjs-chart.js; the page makes no network access.",
         {{"o", "FILE", "the HTML file to write (default report.html)"}, {"follow-symlinks", "", "write through a symbolic link at the output path (refused otherwise)"}}, "REPORT.json...", 1000);
  if (!a.parse(argc, argv, begin)) {
    std::cout << a.help_text();
    return kExitOk;
  }
  if (a.positional().empty()) throw InputError("report needs at least one REPORT.json (see --help)");
  const std::string out = a.get("o", "report.html");
  const int rc = report::write_html_report(a.positional(), out, report::default_html_assets(), a.has("follow-symlinks"));
  std::cout << "report: " << out << "\n";
  return rc;
}

int cmd_merge(int argc, char** argv, int begin) {
  Args a("pacheck merge",
         "Joins the reports of a sharded run (`pacheck run --shard i/n`) into one: records sorted by\n"
         "their case index, which equals the unsharded run's report record for record (timings apart);\n"
         "`pacheck diff` and `pacheck report` read the result like any report. Reports of different\n"
         "runs (suite, seed, commit, backend), overlapping or missing shards, and an incomplete shard\n"
         "(a .partial file, an interrupted run) or one with no record are an input error (exit 2).",
         {{"o", "FILE", "the merged report to write (default merged.json)"},
          {"allow-partial", "", "merge incomplete or empty shards too (the result says complete: false)"},
          {"follow-symlinks", "", "write through a symbolic link at the output path (refused otherwise)"}}, "SHARD.json...", 100000);
  if (!a.parse(argc, argv, begin)) {
    std::cout << a.help_text();
    return kExitOk;
  }
  if (a.positional().empty()) throw InputError("merge needs the shard reports (see --help)");
  std::vector<report::Report> shards;
  for (const std::string& f : a.positional()) {
    shards.push_back(report::load_report(f));
    const std::string why = report::unusable_as_whole(shards.back(), f);
    if (!why.empty() && !a.has("allow-partial")) throw InputError(why);
  }
  const report::Report merged = report::merge_reports(shards, a.positional());
  const std::string out = a.get("o", "merged.json");
  report::write_report(merged, out, a.has("follow-symlinks"));
  std::cout << "merged " << shards.size() << " reports: " << merged.summary.cases << " cases, " << merged.summary.records
            << " records (" << merged.summary.ok << " Ok, " << merged.summary.fail << " Fail, "
            << merged.summary.not_supported << " NotSupported, " << merged.summary.skipped << " Skipped) -> " << out << "\n";
  return merged.summary.fail ? kExitFail : kExitOk;
}

}  // namespace pa::tools
