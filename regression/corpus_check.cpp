#include "regression/corpus_check.hpp"

#include <algorithm>

#include "dispatch/select.hpp"
#include "regression/testbed.hpp"

namespace pa {

std::vector<Backend> available_backends() {
  std::vector<Backend> b = {Backend::host};
  if (gpu_available()) b.push_back(Backend::gpu);
  return b;
}

std::vector<std::string> corpus_findings(const RegressionCase& r, const std::vector<Backend>& backends) {
  std::vector<std::string> f;
  const std::string at = r.file + ": ";
  const Decision d = select_path(r.device, r.c);
  if (r.expect_path) {
    if (!d.path)
      f.push_back(at + "path=auto metric=decision: expected " + to_string(*r.expect_path) +
                  ", the dispatcher refused: " + d.error());
    else if (*d.path != *r.expect_path)
      f.push_back(at + "path=auto metric=decision: expected " + to_string(*r.expect_path) + ", chose " +
                  to_string(*d.path) + " (" + d.why + ")");
  } else if (!r.refusal_contains.empty() || r.kind != "captured") {
    if (d.path)
      f.push_back(at + "path=auto metric=decision: expected a refusal, chose " + to_string(*d.path) +
                  " (" + d.why + ")");
    else if (d.error().find(r.refusal_contains) == std::string::npos)
      f.push_back(at + "path=auto metric=decision: the refusal does not name '" + r.refusal_contains +
                  "': " + d.error());
  }
  for (Backend b : backends) {
    RunOptions o;
    o.backend = b;
    o.device = r.device;
    const CaseRecord rec = run_case(r.c, o);
    const std::string on = std::string(" backend=") + to_string(b);
    for (const PathRecord& p : rec.paths) {
      const bool must = p.path != "auto" && p.ran &&
                        std::find(r.must_pass.begin(), r.must_pass.end(), *p.ran) != r.must_pass.end();
      if (p.status == Status::Fail || (must && p.status != Status::Ok))
        f.push_back(at + "path=" + p.path + on + " metric=" + (p.metric.empty() ? to_string(p.status) : p.metric) +
                    ": " + p.message + "\n    replay: " + rec.replay + " --paths " +
                    (p.ran ? to_string(*p.ran) : p.path));
    }
    for (PathId m : r.must_pass)
      if (std::none_of(rec.paths.begin(), rec.paths.end(), [&](const PathRecord& p) { return p.path == to_string(m); }))
        f.push_back(at + "path=" + to_string(m) + on + " metric=missing: must_pass path produced no record");
  }
  return f;
}

}  // namespace pa
