// pacheck: the command-line program; its subcommands are listed in kCommands. Exit codes: 0 all pass,
// 1 failures or regressions, 2 usage or input error, 130 interrupted.
#include <algorithm>
#include <iostream>

#include <CLI/CLI.hpp>

#include "dispatch/select.hpp"
#include "reports/diff.hpp"
#include "tools/args.hpp"
#include "tools/case_sources.hpp"
#include "tools/commands.hpp"
#include "tools/suites.hpp"

namespace pa::tools {

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int, char**, int);
};

// The subcommands, in the order `pacheck --help` lists them.
const Command kCommands[] = {
    {"run", "run a suite, case files or the regression corpus on every path; write a JSON report", cmd_run},
    {"replay", "re-run one case (JSON, flags, or a report entry) and print each path's metrics", cmd_replay},
    {"diff", "compare two reports: newly failing, fixed, metric/timing regressions, routing changes", cmd_diff},
    {"cases", "list the built-in suites' cases, or describe one", cmd_cases},
    {"fixtures", "verify or regenerate the golden outputs of the canonical cases", cmd_fixtures},
    {"kernels", "list the registered kernels (built-in and --kernel plug-ins) with their declarations", cmd_kernels},
    {"check", "the property suite (generated cases, metamorphic relations, shrinking) on any kernel", cmd_check},
    {"mutate", "plant contract bugs around a kernel and report how many pacheck catches", cmd_mutate},
    {"bench", "time kernels against the memory roofline and the dispatcher's regret", cmd_bench},
    {"report", "render JSON reports into one self-contained HTML page", cmd_report},
    {"merge", "join the reports of a sharded run (run --shard i/n) into one", cmd_merge},
    {"worker", "serve kernels to a parent pacheck (started by pacheck itself)", cmd_worker},
};

}  // namespace

int cmd_diff(int argc, char** argv, int begin) {
  Args a("pacheck diff",
         "Compares two reports keyed by (case slug, path, backend). Regressions: newly failing records,\n"
         "Ok -> NotSupported, accuracy metrics grown beyond the threshold (max_err_norm or rel_rms > 2x\n"
         "and > 1e-3), changed dispatcher decisions; with --threshold timing=on also path time > 1.5x and > 1 ms. Also lists fixed,\n"
         "added and removed records. Exit 1 on any regression, 0 otherwise, 2 on unreadable input, on an\n"
         "incomplete report (a .partial file, an interrupted run), one with no record, or two reports of\n"
         "different suites (--allow-partial compares them anyway).",
         {{"threshold", "KEY=VALUE",
           "metric_ratio=2, metric_floor=1e-3, timing_ratio=1.5, timing_floor_ms=1, timing=off|on\n"
           "                              (timing=on also gates correctness records on their path time)", true},
          {"allow-partial", "", "compare incomplete or empty reports, or reports of different suites"}},
         "BASE.json NEW.json", 2);
  if (!a.parse(argc, argv, begin)) {
    std::cout << a.help_text();
    return kExitOk;
  }
  if (a.positional().size() != 2) throw InputError("diff needs two reports: BASE.json NEW.json (see --help)");
  report::DiffThresholds t;
  for (const std::string& kv : a.all("threshold")) report::set_threshold(t, kv);
  const report::Report base = report::load_report(a.positional()[0]);
  const report::Report next = report::load_report(a.positional()[1]);
  if (!a.has("allow-partial")) {
    // A diff of a cut-off run, of nothing, or of another suite says "no regressions" about records
    // it never saw: refused unless asked for.
    for (const auto& [rep, name] : {std::pair{&base, a.positional()[0]}, std::pair{&next, a.positional()[1]}}) {
      const std::string why = report::unusable_as_whole(*rep, name);
      if (!why.empty()) throw InputError(why);
    }
    if (base.context.suite != next.context.suite)
      throw InputError(a.positional()[1] + ": suite '" + next.context.suite + "' but " + a.positional()[0] +
                       " ran suite '" + base.context.suite + "': not the same cases (--allow-partial compares them anyway)");
  }
  const report::DiffResult d = report::diff(base, next, t);
  std::cout << "base " << a.positional()[0] << " (" << base.context.git_commit << ", " << base.context.device.name
            << ", " << base.cases.size() << " records" << (base.complete ? "" : ", partial") << ")\n"
            << "new  " << a.positional()[1] << " (" << next.context.git_commit << ", " << next.context.device.name
            << ", " << next.cases.size() << " records" << (next.complete ? "" : ", partial") << ")\n";
  report::print_diff(std::cout, d);
  return d.regressions() ? kExitFail : kExitOk;
}

int cmd_cases(int argc, char** argv, int begin) {
  Args a("pacheck cases",
         "Lists the cases of a built-in suite (index, slug, name, vars), or describes one: its JSON, the\n"
         "dispatcher's decision on every device model with each path's reason to decline, and its replay line.",
         {{"suite", "NAME", "smoke|ci|nightly (default smoke)"},
          {"regression", "DIR", "list the cases under DIR instead"},
          {"seed", "N", "suite seed"},
          {"describe", "WHICH", "describe one case: its index, slug or name"},
          {"json", "", "list the cases as one JSON array (index, slug, name, vars, case, replay) for other programs"},
          {"kernel", "PATH.so[:NAME]", "route among these plug-in kernels too (repeatable)", true},
          {"paths", "LIST", "built-in kernels to route among (default v1,hip,asm)"},
          {"backend", "B", "built-in kernels: auto|host|gpu (default auto)"},
          {"device", "D", "device model whose native fp8 flavour the suite uses: mi300x|mi355x|h100 (default mi300x)"}});
  if (!a.parse(argc, argv, begin)) {
    std::cout << a.help_text();
    return kExitOk;
  }
  const uint64_t seed = a.has("seed") ? parse_u64("seed", a.get("seed")) : kDefaultSuiteSeed;
  const auto dev = device_model(a.get("device", "mi300x"));
  if (!dev) throw InputError("--device " + a.get("device") + ": expected " + device_model_names());
  const std::vector<Case> cases = a.has("regression") ? load_case_dir(a.get("regression"))
                                                      : suite(a.get("suite", "smoke"), seed, dev->native_fp8);
  if (a.has("json") && a.has("describe"))
    throw InputError("--json lists every case and --describe " + a.get("describe") + " describes one: give one of them");
  if (a.has("json")) {
    // For programs that drive pacheck (the pytest entry point in python/): each case's JSON is
    // what `run --case` and `replay --case` read back.
    nlohmann::json list = nlohmann::json::array();
    for (size_t i = 0; i < cases.size(); ++i)
      list.push_back({{"index", i}, {"slug", slug(cases[i])}, {"name", cases[i].name}, {"vars", vars(cases[i])},
                      {"case", to_json(cases[i])}, {"replay", replay_line(cases[i])}});
    std::cout << list.dump() << "\n";
    return kExitOk;
  }
  if (!a.has("describe")) {
    for (size_t i = 0; i < cases.size(); ++i)
      std::cout << i << "  " << slug(cases[i]) << "  " << cases[i].name << "\n    " << vars(cases[i]) << "\n";
    std::cout << cases.size() << " cases\n";
    return kExitOk;
  }
  const std::string w = a.get("describe");
  const Case* c = nullptr;
  for (size_t i = 0; i < cases.size() && !c; ++i)
    if (std::to_string(i) == w || slug(cases[i]) == w || cases[i].name == w) c = &cases[i];
  if (!c) throw InputError("--describe " + w + ": no such case (index, slug or name; see pacheck cases)");
  std::cout << "name  " << c->name << "\nslug  " << slug(*c) << "\nvars  " << vars(*c) << "\njson  " << to_json(*c).dump()
            << "\n";
  const Target t = resolve_target(a);
  for (const Device& d : device_models()) {
    const Decision dec = select_path(d, *c, t.registry.all());
    std::cout << d.name << ": " << (dec.path ? "-> " + *dec.path + ": " + dec.why : dec.error()) << "\n";
    for (const KernelPtr& k : t.registry.all())
      if (auto r = k->decline_reason(*c, d)) std::cout << "    " << k->name() << " declines: " << *r << "\n";
  }
  std::cout << "replay: " << replay_line(*c) << "\n";
  return kExitOk;
}

int cmd_kernels(int argc, char** argv, int begin) {
  Args a("pacheck kernels",
         "Lists the registered kernels -- pacheck's built-in ones and every --kernel plug-in -- with the\n"
         "capability and numerics each declares through the kernel ABI (include/pacheck/kernel_abi.h).\n"
         "A plug-in that cannot be loaded (missing entry point, ABI version mismatch, malformed\n"
         "declaration) is an error naming the library and the field, exit 2.",
         with_target({}));
  if (!a.parse(argc, argv, begin)) {
    std::cout << a.help_text();
    return kExitOk;
  }
  const Target t = resolve_target(a);
  std::cout << "kernel ABI version " << PACHECK_KERNEL_ABI_VERSION << "." << PACHECK_KERNEL_ABI_MINOR << "; built-ins from the " << to_string(t.backend)
            << " backend (" << t.backend_reason << ")\n";
  for (const KernelPtr& k : t.registry.all()) {
    const KernelInfo& i = k->info();
    std::cout << "\n" << i.name << "  version " << i.version << ", " << to_string(i.memory) << " memory, from "
              << i.source << "\n  provenance: " << i.provenance << "\n  numerics: " << describe(i.numerics) << "\n";
    for (const auto& [field, value] : describe(i.capability)) std::cout << "  " << field << ": " << value << "\n";
  }
  return kExitOk;
}

}  // namespace pa::tools

namespace {
bool cmd_is(const pa::tools::Command& c, const char* name) { return std::string(c.name) == name; }
}  // namespace

int main(int argc, char** argv) {
  using namespace pa::tools;
  CLI::App app("Conformance harness for paged-attention decode kernels.", "pacheck");
  app.footer("`pacheck <command> --help` describes each command's flags.\n"
             "exit codes: 0 all pass, 1 failures or regressions, 2 usage or input error, 130 interrupted");
  app.require_subcommand(1);
  for (const Command& c : kCommands)
    // Each subcommand parses its own flags (tools/args.hpp), so here it only takes the rest.
    app.add_subcommand(c.name, c.summary)->prefix_command()->set_help_flag();
  std::string cmd = "";
  if (argc >= 2 && argv[1][0] != '-' &&
      std::none_of(std::begin(kCommands), std::end(kCommands), [&](const Command& c) { return cmd_is(c, argv[1]); })) {
    std::cerr << "pacheck: unknown command '" << argv[1] << "'\n\n" << app.help();
    return kExitUsage;
  }
  try {
    try {
      app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
      std::cout << app.help();
      return kExitOk;
    } catch (const CLI::ParseError& e) {
      std::cerr << "pacheck: " << e.what() << "\n\n" << app.help();
      return kExitUsage;
    }
    const CLI::App* sub = app.get_subcommands().front();
    cmd = sub->get_name();
    std::vector<std::string> rest = sub->remaining();
    std::vector<char*> sub_argv{argv[0]};
    for (std::string& r : rest) sub_argv.push_back(r.data());
    for (const Command& c : kCommands)
      if (cmd == c.name) return c.run(int(sub_argv.size()), sub_argv.data(), 1);
    return kExitUsage;
  } catch (const pa::InputError& e) {
    std::cerr << "pacheck " << cmd << ": error: " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "pacheck " << cmd << ": internal error: " << e.what() << "\n";
    return kExitUsage;
  }
}
