#pragma once
// A small report of known content for the report tests: 3 cases x (v1, hip, auto), hip NotSupported.
#include <string>

#include "core/case.hpp"
#include "reports/report.hpp"

namespace pa::report::testing {

inline Context sample_context() {
  Context c;
  c.pacheck_version = pacheck_version();
  c.git_commit = git_commit();
  c.compiler = compiler_id();
  c.device = device_mi300x();
  c.backend = "host";
  c.backend_reason = "test";
  c.seed = 7;
  c.suite = "test";
  c.paths = {"v1", "hip", "asm"};
  c.started_utc = utc_now();
  return c;
}

inline Record sample_record(int64_t index, const std::string& path, Status st) {
  Case c;
  c.seed = uint64_t(index + 1);
  Record r;
  r.case_index = index;
  r.slug = slug(c);
  r.vars = vars(c);
  r.case_json = to_json(c);
  r.input_hash = "00000000deadbeef";
  r.path = path;
  r.ran = path == "auto" ? "v1" : path;
  r.backend = "host";
  r.decision.chosen = "v1";
  r.decision.why = "only v1 supports nhd";
  r.decision.declined = {{"hip", "kv_layout=nhd not in {shuffled}"}, {"asm", "kv_layout=nhd not in {shuffled}"}};
  r.status = st;
  if (st == Status::Fail) {
    r.metric = "outside_tolerance";
    r.message = "worst at s=0 i=0 h=1 d=2";
  }
  r.metrics.count = 1024;
  r.metrics.max_err_norm = st == Status::Fail ? 0.5 : 1e-4;
  r.metrics.rel_rms = st == Status::Fail ? 0.4 : 1e-4;
  r.tolerance = {1e-2, 7.8e-3, "atol = ..."};
  r.replay = "pacheck replay --case '" + r.case_json.dump() + "'";
  r.timings = {0.5, 1.5, 0.25, 2.0};
  return r;
}

inline Report sample_report() {
  Report rep;
  rep.context = sample_context();
  for (int64_t i = 0; i < 3; ++i)
    for (const char* p : {"v1", "hip", "auto"})
      rep.cases.push_back(sample_record(i, p, std::string(p) == "hip" ? Status::NotSupported : Status::Ok));
  rep.summary = summarize(rep.cases);
  return rep;
}

}  // namespace pa::report::testing
