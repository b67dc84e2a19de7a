#include "regression/corpus_check.hpp"

#include <algorithm>

#include "dispatch/select.hpp"
#include "testbed/testbed.hpp"

namespace pa {

std::vector<std::vector<KernelPtr>> available_kernel_sets() {
  std::vector<std::vector<KernelPtr>> sets = {builtin_kernels(Backend::host).all()};
  if (gpu_available()) sets.push_back(builtin_kernels(Backend::gpu).all());
  return sets;
}

std::vector<std::string> corpus_findings(const RegressionCase& r, const std::vector<KernelPtr>& kernels) {
  std::vector<std::string> f;
  const std::string at = r.file + ": ";
  const Routing routing = aiter_routing();
  // The dispatcher is judged where the kernels its rule names are all registered (the classic
  // rule's, and the MLA rule's for an MLA case).
  const auto registered = [&](const std::string& n) {
    return std::any_of(kernels.begin(), kernels.end(), [&](const KernelPtr& k) { return k->name() == n; });
  };
  const std::vector<std::string>& names = is_mla(r.c.kv_layout) ? routing.mla_order : routing.busy_order;
  const bool routes = std::all_of(names.begin(), names.end(), registered);
  RunOptions o;
  o.kernels = kernels;
  o.device = r.device;
  o.dispatcher = routes;
  o.routing = routing;
  const CaseRecord rec = run_case(r.c, o);
  if (routes) {
    const Decision& d = rec.decision;  // the one routing decision of this case, made by run_case
    if (r.expect_path) {
      if (!d.path)
        f.push_back(at + "path=auto metric=decision: expected " + *r.expect_path + ", the dispatcher refused: " +
                    d.error());
      else if (*d.path != *r.expect_path)
        f.push_back(at + "path=auto metric=decision: expected " + *r.expect_path + ", chose " + *d.path + " (" +
                    d.why + ")");
    } else if (!r.refusal_contains.empty() || r.kind != "captured") {
      if (d.path)
        f.push_back(at + "path=auto metric=decision: expected a refusal, chose " + *d.path + " (" + d.why + ")");
      else if (d.error().find(r.refusal_contains) == std::string::npos)
        f.push_back(at + "path=auto metric=decision: the refusal does not name '" + r.refusal_contains +
                    "': " + d.error());
    }
  }
  for (const PathRecord& p : rec.paths) {
    const bool must = p.path != "auto" && p.ran &&
                      std::find(r.must_pass.begin(), r.must_pass.end(), *p.ran) != r.must_pass.end();
    if (p.status == Status::Fail || (must && p.status != Status::Ok))
      f.push_back(at + "path=" + p.path + " backend=" + p.backend + " metric=" +
                  (p.metric.empty() ? to_string(p.status) : p.metric) + ": " + p.message +
                  "\n    replay: " + replay_line(r.c, p.ran ? *p.ran : p.path));
  }
  for (const std::string& m : r.must_pass) {
    const bool registered = std::any_of(kernels.begin(), kernels.end(), [&](const KernelPtr& k) { return k->name() == m; });
    if (registered && std::none_of(rec.paths.begin(), rec.paths.end(), [&](const PathRecord& p) { return p.path == m; }))
      f.push_back(at + "path=" + m + " metric=missing: must_pass kernel produced no record");
  }
  return f;
}

}  // namespace pa
