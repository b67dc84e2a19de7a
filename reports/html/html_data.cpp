// The data blob of the HTML report: what the page's JS cannot derive from the report JSON alone.
#include <cmath>
#include <cstdint>
#include <map>
#include <regex>
#include <set>

#include "core/case.hpp"
#include "reports/html/html_report.hpp"

namespace pa::report {

namespace {

using nlohmann::json;

// Bumped when the blob's shape changes, so report.js and this file are known to agree.
constexpr int kBlobVersion = 1;

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// Feature classes of the pass matrix, read from the case JSON. Missing fields fall back to Case's
// defaults, so a case written by an older pacheck (which omitted a default) lands in its class.
json features(const json& c) {
  if (!c.is_object()) return json::object();  // an unreadable case has no classes
  auto str = [&](const char* k, const char* dflt) {
    const auto it = c.find(k);
    return it != c.end() && it->is_string() ? it->get<std::string>() : std::string(dflt);
  };
  auto number = [&](const char* k, double dflt) {
    const auto it = c.find(k);
    return it != c.end() && it->is_number() ? it->get<double>() : dflt;
  };
  auto flag = [&](const char* k) {
    const auto it = c.find(k);
    return it != c.end() && it->is_boolean() && it->get<bool>();
  };
  // A case can combine options; it counts in every one of their columns.
  json options = json::array();
  if (number("sliding_window", 0) > 0) options.push_back("window");
  if (number("logit_softcap", 0) > 0) options.push_back("softcap");
  if (flag("alibi")) options.push_back("alibi");
  if (flag("sinks")) options.push_back("sinks");
  if (number("softmax_scale", 0) != 0) options.push_back("custom_scale");
  if (options.empty()) options.push_back("plain");
  const auto hq = int64_t(number("num_q_heads", 8)), hkv = int64_t(number("num_kv_heads", 1));
  // The ragged family: a ragged batch with its q_len classes, the CSR table, Dv != D,
  // empty sequences; a case of none of these is "classic".
  json family = json::array();
  if (const auto q = c.find("q_lens"); q != c.end() && q->is_array() && !q->empty()) {
    family.push_back("ragged");
    bool cls[5] = {};
    for (const json& x : *q) {
      const int64_t n = x.is_number_integer() ? x.get<int64_t>() : 1;
      cls[n <= 1 ? 0 : n <= 4 ? 1 : n <= 8 ? 2 : n <= 16 ? 3 : 4] = true;
    }
    const char* names[5] = {"q 1", "q 2-4", "q 5-8", "q 9-16", "extend"};
    for (int i = 0; i < 5; ++i)
      if (cls[i]) family.push_back(names[i]);
  }
  if (str("page_table", "padded") == "csr") family.push_back("csr");
  if (number("head_size_v", 0) > 0) family.push_back("Dv!=D");
  if (const auto ctx = c.find("context_lens"); ctx != c.end() && ctx->is_array())
    for (const json& x : *ctx)
      if (x.is_number_integer() && x.get<int64_t>() == 0) {
        family.push_back("empty rows");
        break;
      }
  if (family.empty()) family.push_back("classic");
  return {{"layout", str("kv_layout", "nhd")},
          {"kv_dtype", str("kv_dtype", "bf16")},
          {"scale", str("kv_scale", "none")},
          {"options", std::move(options)},
          {"gqa", hkv > 0 ? "G=" + std::to_string(hq / hkv) : std::string("G=?")},
          // Extend rows (a ragged batch's longest q_len past 16) share one column.
          {"q_len", number("q_len", 1) > 16 ? std::string("q>16") : "q=" + std::to_string(int64_t(number("q_len", 1)))},
          {"family", std::move(family)}};
}

// How much of its tolerance the worst element used: |o - ref| / (atol + rtol |ref|); > 1 fails.
// A failing record names its worst element, so its ratio is exact. For a passing record the
// metrics keep only the largest error and the largest |ref|: max_abs_err / (atol + rtol ||ref||)
// is then a lower bound that never exceeds 1, so the edge at 1 keeps its meaning on the plot.
struct Edge {
  json ratio;        // null when there is no numeric verdict (or it is not finite)
  std::string note;  // "nan" / "inf" when the output held non-finite values
};
Edge edge(const Record& r) {
  if (r.status != Status::Ok && r.status != Status::Fail) return {nullptr, ""};
  const Metrics& m = r.metrics;
  if (m.count <= 0) return {nullptr, ""};
  if (m.nan_count > 0) return {nullptr, "nan"};
  if (m.inf_mismatch > 0) return {nullptr, "inf"};
  const double atol = r.tolerance.atol, rtol = r.tolerance.rtol;
  if (m.worst_index >= 0 && std::isfinite(m.worst_out) && std::isfinite(m.worst_ref)) {
    const double bound = atol + rtol * std::fabs(m.worst_ref);
    if (bound > 0) return {num(std::fabs(m.worst_out - m.worst_ref) / bound), ""};
  }
  const double bound = atol + rtol * m.ref_inf_norm;
  if (!(bound > 0) || !std::isfinite(m.max_abs_err)) return {nullptr, ""};
  return {num(m.max_abs_err / bound), ""};
}

// The output coordinates of the worst element, as verdict() writes them ("s=0 i=0 h=3 d=17").
std::string coordinates_in(const std::string& message) {
  static const std::regex kCoords(R"(s=\d+ i=\d+ h=\d+ d=\d+)");
  std::smatch m;
  return std::regex_search(message, m, kCoords) ? m.str() : std::string();
}

json counts_json(int64_t ok, int64_t fail, int64_t ns, int64_t skipped) {
  return {{"Ok", ok}, {"Fail", fail}, {"NotSupported", ns}, {"Skipped", skipped}};
}

// Per-kernel status counts of one report, for the trend over a history.
json history_entry(const Report& rep, const std::string& name) {
  std::map<std::string, Summary> by_kernel;
  std::vector<std::string> order;
  for (const Record& r : rep.cases) {
    if (!by_kernel.count(r.path)) order.push_back(r.path);
    Summary& s = by_kernel[r.path];
    switch (r.status) {
      case Status::Ok: ++s.ok; break;
      case Status::Fail: ++s.fail; break;
      case Status::NotSupported: ++s.not_supported; break;
      case Status::Skipped: ++s.skipped; break;
    }
  }
  // An array, not an object: JSON objects come back with sorted keys, and the order of first
  // appearance (the run's path order) is the one the page should keep.
  json kernels = json::array();
  for (const std::string& k : order) {
    const Summary& s = by_kernel[k];
    kernels.push_back({{"kernel", k}, {"counts", counts_json(s.ok, s.fail, s.not_supported, s.skipped)}});
  }
  // Counted from the records, not read from `summary`: a .partial file has no summary of its own.
  const Summary s = summarize(rep.cases);
  return {{"name", name},
          {"started_utc", rep.context.started_utc},
          {"git_commit", rep.context.git_commit},
          {"suite", rep.context.suite},
          {"complete", rep.complete},
          {"interrupted", rep.summary.interrupted},
          {"counts", counts_json(s.ok, s.fail, s.not_supported, s.skipped)},
          {"kernels", std::move(kernels)}};
}

json failure_json(const Record& r, size_t id, const json& feats) {
  return {{"id", id},
          {"path", r.path},
          {"ran", r.ran},
          {"backend", r.backend},
          {"case_index", r.case_index},
          {"slug", r.slug},
          {"name", r.name},
          {"vars", r.vars},
          {"metric", r.metric},
          {"message", r.message},
          {"coords", coordinates_in(r.message)},
          {"replay", r.replay},
          {"decision", r.decision.chosen.empty() ? r.decision.error : r.decision.chosen + ": " + r.decision.why},
          {"atol", num(r.tolerance.atol)},
          {"rtol", num(r.tolerance.rtol)},
          {"tolerance_model", r.tolerance.model},
          {"max_abs_err", num(r.metrics.max_abs_err)},
          {"max_err_norm", num(r.metrics.max_err_norm)},
          {"rel_rms", num(r.metrics.rel_rms)},
          {"frac_outside", num(r.metrics.frac_outside)},
          {"features", feats}};
}

json latest_json(const Report& rep, const std::string& name) {
  json records = json::array(), failures = json::array(), bench = json::array();
  for (const Record& r : rep.cases) {
    const json feats = features(r.case_json);
    const Edge e = edge(r);
    json rec = {{"path", r.path},
                {"status", to_string(r.status)},
                {"slug", r.slug},
                {"features", feats},
                {"edge", e.ratio},
                {"max_err_norm", num(r.metrics.max_err_norm)}};
    if (!e.note.empty()) rec["edge_note"] = e.note;
    if (r.status == Status::Fail) {
      rec["failure"] = failures.size();
      failures.push_back(failure_json(r, failures.size(), feats));
    }
    records.push_back(std::move(rec));
  }
  for (const BenchRecord& b : rep.bench) bench.push_back(to_json(b));
  // Counted from the records: the page shows what the run recorded, whatever the file's summary says.
  Summary counted = summarize(rep.cases);
  counted.elapsed_ms = rep.summary.elapsed_ms;
  counted.interrupted = rep.summary.interrupted;
  counted.complete = rep.complete;
  json summary = to_json(counted);
  if (!rep.complete) summary["elapsed_ms"] = nullptr;  // unknown: the run never finished
  return {{"name", name},
          {"complete", rep.complete},
          {"context", to_json(rep.context)},
          {"summary", std::move(summary)},
          {"records", std::move(records)},
          {"failures", std::move(failures)},
          {"bench", std::move(bench)}};
}

}  // namespace

json html_data(const std::vector<Report>& reports, const std::vector<std::string>& names) {
  if (reports.empty()) throw InputError("report: no report to render");
  if (names.size() != reports.size())
    throw InputError("report: " + std::to_string(names.size()) + " names for " +
                                std::to_string(reports.size()) + " reports");
  json history = json::array();
  for (size_t i = 0; i < reports.size(); ++i) history.push_back(history_entry(reports[i], names[i]));
  return {{"blob_version", kBlobVersion},
          {"generated_utc", utc_now()},
          {"pacheck_version", pacheck_version()},
          {"history", std::move(history)},
          {"latest", latest_json(reports.back(), names.back())}};
}

}  // namespace pa::report
