// `pacheck fixtures verify|regenerate`: the golden-fixture tools (goldens/golden.hpp).
#include <iomanip>
#include <iostream>

#include "goldens/golden.hpp"
#include "goldens/golden_kernels.hpp"
#include "tools/args.hpp"
#include "tools/commands.hpp"

namespace pa::tools {

int cmd_fixtures(int argc, char** argv, int begin) {
  Args a("pacheck fixtures",
         "verify: recompute every canonical case's reference output from its seed and compare it bit\n"
         "for bit with the stored golden (input hash, output, LSE); exit 1 if any differs or is missing.\n"
         "regenerate: rewrite the golden files, printing for each whether it is new, unchanged or what\n"
         "changed (so a regeneration is never silent); review the diff before committing.",
         with_target({{"dir", "DIR", "golden directory (default: goldens/cases of this checkout)"},
                      {"filter", "TEXT", "only canonical cases whose name contains TEXT"},
                      {"gpu", "", "verify: also run every built-in GPU kernel on each\n"
                                  "                              golden it supports, within the kernel's tolerance"}}),
         "verify|regenerate", 1);
  if (!a.parse(argc, argv, begin)) {
    std::cout << a.help_text();
    return kExitOk;
  }
  if (a.positional().size() != 1) throw InputError("fixtures needs an action: verify or regenerate (see --help)");
  const std::string action = a.positional()[0];
  const std::string dir = a.get("dir", fixtures::golden_dir());
  const std::string filter = a.get("filter");
  if (action == "verify") {
    int bad = 0, n = 0;
    for (const auto& r : fixtures::verify_all(dir, filter)) {
      ++n;
      bad += !r.ok;
      std::cout << (r.ok ? "ok    " : "FAIL  ") << std::left << std::setw(36) << r.name << std::right
                << std::fixed << std::setprecision(2) << std::setw(7) << r.seconds << " s\n";
      for (const auto& p : r.problems) std::cout << "        " << p << "\n";
    }
    std::cout << n << " goldens, " << bad << " differ\n";
    int passed = n - bad;
    if (a.has("gpu") || a.has("kernel") || a.has("paths")) {
      std::vector<KernelPtr> kernels;
      if (a.has("gpu")) {
        std::string why;
        if (!gpu_available(&why)) throw InputError("--gpu: " + why);
        kernels = builtin_kernels(Backend::gpu).all();
      }
      if (a.has("kernel") || a.has("paths")) {
        // The target outlives the loop: a range over a temporary's member would dangle.
        const Target t = resolve_target(a);
        for (const KernelPtr& k : t.registry.all()) kernels.push_back(k);
      }
      int ok = 0, other = 0;
      for (const auto& r : fixtures::verify_kernels(dir, kernels, filter)) {
        if (r.status == Status::Fail) ++bad;
        r.status == Status::Ok ? ++ok : ++other;
        if (r.status != Status::NotSupported)
          std::cout << (r.status == Status::Ok ? "ok    " : r.status == Status::Fail ? "FAIL  " : "skip  ") << r.name
                    << " " << r.kernel << " (" << r.compared << " elements) " << r.message << "\n";
      }
      passed += ok;
      std::cout << ok << " kernel x golden runs matched, " << other << " not run here\n";
    }
    std::cout << passed << " passed, " << bad << " failed\n";
    return bad ? kExitFail : kExitOk;
  }
  if (action == "regenerate") {
    for (const auto& line : fixtures::regenerate_all(dir, filter)) std::cout << line << "\n";
    return kExitOk;
  }
  throw InputError("fixtures " + action + ": unknown action (verify or regenerate)");
}

}  // namespace pa::tools
