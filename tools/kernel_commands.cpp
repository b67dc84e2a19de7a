// `pacheck worker`, `pacheck mutate` and `pacheck report`: the commands that serve, probe and
// present kernels beyond running suites.
#include <iostream>

#include "mutate/mutate.hpp"
#include "regression/corpus.hpp"
#include "reports/html/html_report.hpp"
#include "reports/merge.hpp"
#include "tools/args.hpp"
#include "tools/commands.hpp"
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
         {{"o", "FILE", "the HTML file to write (default report.html)"}}, "REPORT.json...", 1000);
  if (!a.parse(argc, argv, begin)) {
    std::cout << a.help_text();
    return kExitOk;
  }
  if (a.positional().empty()) throw InputError("report needs at least one REPORT.json (see --help)");
  const std::string out = a.get("o", "report.html");
  const int rc = report::write_html_report(a.positional(), out);
  std::cout << "report: " << out << "\n";
  return rc;
}

int cmd_merge(int argc, char** argv, int begin) {
  Args a("pacheck merge",
         "Joins the reports of a sharded run (`pacheck run --shard i/n`) into one: records sorted by\n"
         "their case index, which equals the unsharded run's report record for record (timings apart);\n"
         "`pacheck diff` and `pacheck report` read the result like any report. Reports of different\n"
         "runs (suite, seed, commit, backend) or overlapping shards are an input error (exit 2).",
         {{"o", "FILE", "the merged report to write (default merged.json)"}}, "SHARD.json...", 100000);
  if (!a.parse(argc, argv, begin)) {
    std::cout << a.help_text();
    return kExitOk;
  }
  if (a.positional().empty()) throw InputError("merge needs the shard reports (see --help)");
  std::vector<report::Report> shards;
  for (const std::string& f : a.positional()) shards.push_back(report::load_report(f));
  const report::Report merged = report::merge_reports(shards, a.positional());
  const std::string out = a.get("o", "merged.json");
  report::write_report(merged, out);
  std::cout << "merged " << shards.size() << " reports: " << merged.summary.cases << " cases, " << merged.summary.records
            << " records (" << merged.summary.ok << " Ok, " << merged.summary.fail << " Fail, "
            << merged.summary.not_supported << " NotSupported, " << merged.summary.skipped << " Skipped) -> " << out << "\n";
  return merged.summary.fail ? kExitFail : kExitOk;
}

}  // namespace pa::tools
