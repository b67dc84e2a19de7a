// pacheck: the command-line program (run, replay, diff, cases). Exit codes: 0 all pass,
// 1 failures or regressions, 2 usage or input error, 130 interrupted.
#include <iostream>

#include "dispatch/select.hpp"
#include "reports/diff.hpp"
#include "tools/args.hpp"
#include "tools/case_sources.hpp"
#include "tools/commands.hpp"
#include "tools/suites.hpp"

namespace pa::tools {

namespace {

const char* kUsage =
    "usage: pacheck <command> [flags]\n"
    "\n"
    "Conformance harness for paged-attention decode kernels.\n"
    "\n"
    "commands:\n"
    "  run      run a suite, case files or the regression corpus on every path; write a JSON report\n"
    "  replay   re-run one case (JSON, flags, or a report entry) and print each path's metrics\n"
    "  diff     compare two reports: newly failing, fixed, metric/timing regressions, routing changes\n"
    "  cases    list the built-in suites' cases, or describe one\n"
    "  fixtures verify or regenerate the golden outputs of the canonical cases\n"
    "\n"
    "`pacheck <command> --help` describes each command's flags.\n"
    "exit codes: 0 all pass, 1 failures or regressions, 2 usage or input error, 130 interrupted\n";

}  // namespace

int cmd_diff(int argc, char** argv, int begin) {
  Args a("pacheck diff",
         "Compares two reports keyed by (case slug, path, backend). Regressions: newly failing records,\n"
         "Ok -> NotSupported, accuracy metrics grown beyond the threshold (max_err_norm or rel_rms > 2x\n"
         "and > 1e-3), changed dispatcher decisions, path time > 1.5x and > 1 ms. Also lists fixed,\n"
         "added and removed records. Exit 1 on any regression, 0 otherwise, 2 on unreadable input.",
         {{"threshold", "KEY=VALUE",
           "metric_ratio=2, metric_floor=1e-3, timing_ratio=1.5, timing_floor_ms=1, timing=on|off", true}},
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
          {"device", "D", "device model whose native fp8 flavour the suite uses: mi300x|mi355x|h100 (default mi300x)"},
          {"describe", "WHICH", "describe one case: its index, slug or name"}});
  if (!a.parse(argc, argv, begin)) {
    std::cout << a.help_text();
    return kExitOk;
  }
  const uint64_t seed = a.has("seed") ? parse_u64("seed", a.get("seed")) : kDefaultSuiteSeed;
  const auto dev = device_model(a.get("device", "mi300x"));
  if (!dev) throw InputError("--device " + a.get("device") + ": expected mi300x, mi355x or h100");
  const std::vector<Case> cases = a.has("regression") ? load_case_dir(a.get("regression"))
                                                      : suite(a.get("suite", "smoke"), seed, dev->native_fp8);
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
  for (const Device& d : {device_mi300x(), device_mi355x(), device_h100()}) {
    const Decision dec = select_path(d, *c);
    std::cout << d.name << ": " << (dec.path ? std::string("-> ") + to_string(*dec.path) + ": " + dec.why : dec.error())
              << "\n";
    for (const auto& [p, r] : dec.declined) std::cout << "    " << to_string(p) << " declines: " << r << "\n";
  }
  std::cout << "replay: " << replay_line(*c) << "\n";
  return kExitOk;
}

}  // namespace pa::tools

int main(int argc, char** argv) {
  using namespace pa::tools;
  if (argc < 2) {
    std::cerr << kUsage;
    return kExitUsage;
  }
  const std::string cmd = argv[1];
  try {
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::cout << kUsage;
      return kExitOk;
    }
    if (cmd == "run") return cmd_run(argc, argv, 2);
    if (cmd == "replay") return cmd_replay(argc, argv, 2);
    if (cmd == "diff") return cmd_diff(argc, argv, 2);
    if (cmd == "cases") return cmd_cases(argc, argv, 2);
    if (cmd == "fixtures") return cmd_fixtures(argc, argv, 2);
    std::cerr << "pacheck: unknown command '" << cmd << "'\n\n" << kUsage;
    return kExitUsage;
  } catch (const pa::InputError& e) {
    std::cerr << "pacheck " << cmd << ": error: " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "pacheck " << cmd << ": internal error: " << e.what() << "\n";
    return kExitUsage;
  }
}
