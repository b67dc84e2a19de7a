#include "reports/diff.hpp"

#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "core/case.hpp"

namespace pa::report {

const char* to_string(DiffKind k) {
  switch (k) {
    case DiffKind::newly_failing: return "newly failing";
    case DiffKind::lost_support: return "lost support";
    case DiffKind::metric_regression: return "metric regression";
    case DiffKind::decision_changed: return "dispatcher decision changed";
    case DiffKind::timing_regression: return "timing regression";
    case DiffKind::fixed: return "fixed";
    case DiffKind::status_changed: return "status changed";
    case DiffKind::added: return "added";
    case DiffKind::removed: return "removed";
  }
  return "?";
}

bool is_regression(DiffKind k) {
  return k == DiffKind::newly_failing || k == DiffKind::lost_support || k == DiffKind::metric_regression ||
         k == DiffKind::decision_changed || k == DiffKind::timing_regression;
}

int DiffResult::regressions() const {
  int n = 0;
  for (const DiffEntry& e : entries) n += is_regression(e.kind);
  return n;
}

namespace {

// Keyed by record key; a key repeated within one report (the same case listed twice) gets "#2".
std::map<std::string, const Record*> index(const Report& r, std::vector<std::string>& order) {
  std::map<std::string, const Record*> m;
  for (const Record& rec : r.cases) {
    std::string k = rec.key();
    for (int n = 2; m.count(k); ++n) k = rec.key() + " #" + std::to_string(n);
    m[k] = &rec;
    order.push_back(k);
  }
  return m;
}

std::string g(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

bool grew(double before, double after, double ratio, double floor) {
  if (std::isnan(after)) return !std::isnan(before);
  if (std::isnan(before)) return false;
  return after > floor && after > ratio * before;
}

}  // namespace

DiffResult diff(const Report& base, const Report& next, const DiffThresholds& t) {
  DiffResult d;
  std::vector<std::string> base_order, next_order;
  const auto b = index(base, base_order);
  const auto n = index(next, next_order);
  std::set<std::string> decisions_seen;  // one decision entry per (slug, backend)
  for (const std::string& k : next_order) {
    const Record& nr = *n.at(k);
    auto it = b.find(k);
    if (it == b.end()) {
      d.entries.push_back({DiffKind::added, k, std::string("status ") + to_string(nr.status), nr.replay});
      continue;
    }
    const Record& br = *it->second;
    const auto add = [&](DiffKind kind, std::string detail) { d.entries.push_back({kind, k, std::move(detail), nr.replay}); };
    if (br.status != nr.status) {
      const std::string change = std::string(to_string(br.status)) + " -> " + to_string(nr.status);
      if (nr.status == Status::Fail)
        add(DiffKind::newly_failing, change + (nr.metric.empty() ? "" : " [" + nr.metric + "]") + ": " + nr.message);
      else if (br.status == Status::Fail)
        add(DiffKind::fixed, change);
      else if (br.status == Status::Ok && nr.status == Status::NotSupported)
        add(DiffKind::lost_support, change + ": " + nr.message);
      else
        add(DiffKind::status_changed, change + (nr.message.empty() ? "" : ": " + nr.message));
    }
    const bool judged = (br.status == Status::Ok || br.status == Status::Fail) &&
                        (nr.status == Status::Ok || nr.status == Status::Fail);
    if (judged && nr.status == br.status) {
      if (grew(br.metrics.max_err_norm, nr.metrics.max_err_norm, t.metric_ratio, t.metric_floor))
        add(DiffKind::metric_regression, "max_err_norm " + g(br.metrics.max_err_norm) + " -> " + g(nr.metrics.max_err_norm));
      if (grew(br.metrics.rel_rms, nr.metrics.rel_rms, t.metric_ratio, t.metric_floor))
        add(DiffKind::metric_regression, "rel_rms " + g(br.metrics.rel_rms) + " -> " + g(nr.metrics.rel_rms));
    }
    if (t.timing && judged && grew(br.timings.path_ms, nr.timings.path_ms, t.timing_ratio, t.timing_floor_ms))
      add(DiffKind::timing_regression, "path_ms " + g(br.timings.path_ms) + " -> " + g(nr.timings.path_ms));
    const std::string dk = nr.slug + " " + nr.backend;
    if (br.decision.chosen != nr.decision.chosen && decisions_seen.insert(dk).second) {
      const auto name = [](const DecisionInfo& x) { return x.chosen.empty() ? std::string("none") : x.chosen; };
      d.entries.push_back({DiffKind::decision_changed, nr.slug + " auto " + nr.backend,
                           name(br.decision) + " -> " + name(nr.decision) + " (" +
                               (nr.decision.chosen.empty() ? nr.decision.error : nr.decision.why) + ")",
                           nr.replay});
    }
  }
  for (const std::string& k : base_order)
    if (!n.count(k)) d.entries.push_back({DiffKind::removed, k, "", b.at(k)->replay});
  // Bench records: a time regression is judged against the noise the repetitions themselves
  // show: the median grew by more than three interquartile spreads (the larger of the two runs')
  // and by more than bench_floor of the base median. Host and GPU timings are never compared.
  std::map<std::string, const BenchRecord*> bb;
  const auto bench_key = [](const BenchRecord& x) {
    return "bench " + x.kernel + " " + x.model + " " + x.kv_dtype + " S=" + std::to_string(x.num_seqs) + " ctx=" +
           std::to_string(x.context) + " " + x.timing;
  };
  for (const BenchRecord& x : base.bench) bb[bench_key(x)] = &x;
  for (const BenchRecord& x : next.bench) {
    const auto it = bb.find(bench_key(x));
    if (it == bb.end()) continue;
    const BenchRecord& y = *it->second;
    const double noise = 3 * std::max(x.spread_ms, y.spread_ms);
    if (x.median_ms - y.median_ms > std::max(noise, t.bench_floor * y.median_ms))
      d.entries.push_back({DiffKind::timing_regression, bench_key(x),
                           "median " + g(y.median_ms) + " ms -> " + g(x.median_ms) + " ms (noise threshold " +
                               g(std::max(noise, t.bench_floor * y.median_ms)) + " ms from the spreads)",
                           ""});
  }
  return d;
}

void print_diff(std::ostream& out, const DiffResult& d) {
  for (DiffKind kind : {DiffKind::newly_failing, DiffKind::lost_support, DiffKind::metric_regression,
                        DiffKind::decision_changed, DiffKind::timing_regression, DiffKind::fixed,
                        DiffKind::status_changed, DiffKind::added, DiffKind::removed}) {
    int count = 0;
    for (const DiffEntry& e : d.entries) count += e.kind == kind;
    if (!count) continue;
    out << to_string(kind) << " (" << count << (is_regression(kind) ? ", regression" : "") << "):\n";
    for (const DiffEntry& e : d.entries) {
      if (e.kind != kind) continue;
      out << "  " << e.key << (e.detail.empty() ? "" : ": " + e.detail) << "\n";
      if (is_regression(kind) && !e.replay.empty()) out << "    replay: " << e.replay << "\n";
    }
  }
  const int r = d.regressions();
  if (r) out << r << " regression" << (r == 1 ? "" : "s") << "\n";
  else out << "no regressions (" << d.entries.size() << " other differences)\n";
}

void set_threshold(DiffThresholds& t, const std::string& kv) {
  const size_t eq = kv.find('=');
  if (eq == std::string::npos)
    throw InputError("--threshold " + kv + ": expected KEY=VALUE (metric_ratio, metric_floor, timing_ratio, timing_floor_ms, timing)");
  const std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
  if (key == "timing") {
    if (value == "on" || value == "off") { t.timing = value == "on"; return; }
    throw InputError("--threshold timing=" + value + ": expected on or off");
  }
  double v = 0;
  try {
    size_t used = 0;
    v = std::stod(value, &used);
    if (used != value.size() || !(v >= 0) || !std::isfinite(v)) throw std::invalid_argument("bad");
  } catch (const std::exception&) {
    throw InputError("--threshold " + key + "=" + value + ": expected a finite number >= 0");
  }
  if (key == "metric_ratio") t.metric_ratio = v;
  else if (key == "metric_floor") t.metric_floor = v;
  else if (key == "timing_ratio") t.timing_ratio = v;
  else if (key == "timing_floor_ms") t.timing_floor_ms = v;
  else throw InputError("--threshold " + key + ": unknown key (metric_ratio, metric_floor, timing_ratio, timing_floor_ms, timing)");
}

}  // namespace pa::report
