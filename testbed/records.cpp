#include "testbed/records.hpp"

#include <cstdio>

namespace pa {

namespace {
std::string hex16(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)v);
  return buf;
}
}  // namespace

std::vector<report::Record> report_records(const CaseRecord& rec, int64_t case_index) {
  std::vector<report::Record> out;
  report::DecisionInfo d;
  d.chosen = rec.decision.path.value_or("");
  d.why = rec.decision.why;
  for (const auto& [p, reason] : rec.decision.declined) d.declined.push_back({p, reason});
  d.workspace_bytes = rec.decision.workspace_bytes;
  d.error = rec.decision.error();
  for (const PathRecord& p : rec.paths) {
    report::Record r;
    r.case_index = case_index;
    r.slug = rec.slug;
    r.vars = rec.vars;
    r.name = rec.c.name;
    r.case_json = to_json(rec.c);
    r.input_hash = rec.input_hash ? hex16(rec.input_hash) : "";
    r.path = p.path;
    r.ran = p.ran ? *p.ran : "";
    r.backend = p.backend;
    r.decision = d;
    r.status = p.status;
    r.metric = p.metric;
    r.message = p.message;
    r.metrics = p.metrics;
    r.lse = p.lse;
    r.tolerance = p.tolerance;
    r.replay = rec.replay + p.replay_flags;
    r.timings = {rec.inputs_ms, rec.reference_ms, p.elapsed_ms, p.wall_ms};
    r.oracle = rec.oracle;
    r.oracle_disagreement = rec.oracle_disagreement;
    out.push_back(std::move(r));
  }
  return out;
}

report::KernelInfoRecord kernel_record(const Kernel& k) {
  return {k.name(), k.info().version, k.info().provenance, k.info().source, to_string(k.info().memory)};
}

}  // namespace pa
