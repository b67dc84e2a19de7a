#include "reports/report.hpp"

#include <cmath>
#include <ctime>
#include <limits>
#include <set>


#include "core/case.hpp"
#include "core/json_input.hpp"

#ifndef PACHECK_VERSION
#define PACHECK_VERSION "unknown"
#endif
#ifndef PACHECK_GIT_COMMIT
#define PACHECK_GIT_COMMIT "unknown"
#endif

namespace pa::report {

using nlohmann::json;

std::string pacheck_version() { return PACHECK_VERSION; }
std::string git_commit() { return PACHECK_GIT_COMMIT; }
std::string compiler_id() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("gcc ") + __VERSION__;
#else
  return "unknown";
#endif
}
std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Summary summarize(const std::vector<Record>& records) {
  Summary s;
  std::set<int64_t> cases, checked;
  for (const Record& r : records) {
    cases.insert(r.case_index);
    if (r.oracle_disagreement >= 0 && checked.insert(r.case_index).second) {
      ++s.oracle_cross_checked;
      s.oracle_max_disagreement = std::max(s.oracle_max_disagreement, r.oracle_disagreement);
    }
    ++s.records;
    switch (r.status) {
      case Status::Ok: ++s.ok; break;
      case Status::Fail: ++s.fail; break;
      case Status::NotSupported: ++s.not_supported; break;
      case Status::Skipped: ++s.skipped; break;
    }
  }
  s.cases = int64_t(cases.size());
  // The family counts, once per case (its first record carries the case).
  std::set<int64_t> counted;
  for (const Record& r : records) {
    if (!counted.insert(r.case_index).second || !r.case_json.is_object()) continue;
    const json& c = r.case_json;
    const auto table = c.find("page_table");
    ++s.families["page_table " + (table != c.end() && table->is_string() ? table->get<std::string>() : "padded")];
    if (c.contains("head_size_v") && c["head_size_v"].is_number_integer() && c["head_size_v"].get<int64_t>() > 0)
      ++s.families["head_size_v"];
    if (const auto ctx = c.find("context_lens"); ctx != c.end() && ctx->is_array())
      for (const json& x : *ctx)
        if (x.is_number_integer() && x.get<int64_t>() == 0) {
          ++s.families["empty_rows"];
          break;
        }
    const auto qls = c.find("q_lens");
    if (qls == c.end() || !qls->is_array() || qls->empty()) continue;
    ++s.families["ragged"];
    std::set<std::string> classes;
    for (const json& q : *qls) {
      if (!q.is_number_integer()) continue;
      const int64_t n = q.get<int64_t>();
      classes.insert(n <= 1 ? "decode" : n <= 4 ? "mtp 2-4" : n <= 8 ? "mtp 5-8" : n <= 16 ? "mtp 9-16" : "extend");
    }
    for (const std::string& k : classes) ++s.families["ragged q_len " + k];
  }
  return s;
}

namespace {

// Messages may carry bytes from kernels or files that are not UTF-8: replace them rather than lose
// the record.
std::string dump(const json& j, int indent = -1) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

// JSON has no NaN/Inf: non-finite numbers are written as null and read back as NaN.
json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// Typed field access that names the field (with its path) in the error.
struct Reader {
  const json& j;
  std::string where;
  const json& at(const char* k) const {
    if (!j.is_object()) throw InputError(where + ": expected an object");
    auto it = j.find(k);
    if (it == j.end()) throw InputError(where + "." + k + ": missing");
    return *it;
  }
  template <class T>
  T get(const char* k) const {
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      // Checked: nlohmann casts a float such as 1e19 into an integer without a range check.
      const json& v = at(k);
      if (const auto n = json_integer<T>(v)) return *n;
      throw InputError(where + "." + k + ": " + dump(v) + ": expected an integer in " + integer_range<T>());
    }
    try {
      return at(k).get<T>();
    } catch (const nlohmann::json::exception& e) {
      throw InputError(where + "." + k + ": " + e.what());
    }
  }
  template <class T>
  T get_or(const char* k, T dflt) const {
    if (!j.is_object() || !j.contains(k) || j.at(k).is_null()) return dflt;
    return get<T>(k);
  }
  double dbl(const char* k) const {
    const json& v = at(k);
    if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
    if (!v.is_number()) throw InputError(where + "." + k + ": expected a number, got " + dump(v));
    return v.get<double>();
  }
  Reader sub(const char* k) const { return Reader{at(k), where + "." + k}; }
};

Status parse_status(const std::string& s, const std::string& where) {
  for (Status st : {Status::Ok, Status::Fail, Status::NotSupported, Status::Skipped})
    if (s == to_string(st)) return st;
  throw InputError(where + ".status: unknown value '" + s + "'");
}

json metrics_json(const Metrics& m) {
  return {{"count", m.count},
          {"nan_count", m.nan_count},
          {"inf_mismatch", m.inf_mismatch},
          {"max_abs_err", num(m.max_abs_err)},
          {"ref_inf_norm", num(m.ref_inf_norm)},
          {"max_err_norm", num(m.max_err_norm)},
          {"rel_rms", num(m.rel_rms)},
          {"cosine", num(m.cosine)},
          {"outside", m.outside},
          {"frac_outside", num(m.frac_outside)},
          {"worst_index", m.worst_index},
          {"worst_out", num(m.worst_out)},
          {"worst_ref", num(m.worst_ref)},
          {"degenerate", m.degenerate},
          {"aggregate", m.aggregate_checked ? json{{"expected_rms", num(m.expected_rms)}, {"rms_limit", num(m.rms_limit)},
                                                   {"bias", num(m.bias)}, {"bias_limit", num(m.bias_limit)},
                                                   {"alpha", num(m.alpha)}, {"alpha_limit", num(m.alpha_limit)},
                                                   {"rms_fraction", num(m.rms_fraction)},
                                                   {"bias_fraction", num(m.bias_fraction)},
                                                   {"scale_fraction", num(m.scale_fraction)}}
                                              : json(nullptr)}};
}
json lse_json(const LseMetrics& m) {
  if (m.count == 0) return nullptr;
  return {{"count", m.count}, {"nan_count", m.nan_count}, {"inf_mismatch", m.inf_mismatch}, {"outside", m.outside},
          {"max_abs_err", num(m.max_abs_err)}, {"worst_fraction", num(m.worst_fraction)}, {"model", m.model}};
}
LseMetrics lse_from(const json& j) {
  LseMetrics m;
  if (!j.is_object()) return m;
  const Reader r{j, "record.lse"};
  m.count = r.get_or<int64_t>("count", 0);
  m.nan_count = r.get_or<int64_t>("nan_count", 0);
  m.inf_mismatch = r.get_or<int64_t>("inf_mismatch", 0);
  m.outside = r.get_or<int64_t>("outside", 0);
  m.max_abs_err = r.j.contains("max_abs_err") ? r.dbl("max_abs_err") : 0.0;
  m.worst_fraction = r.j.contains("worst_fraction") ? r.dbl("worst_fraction") : 0.0;
  m.model = r.get_or<std::string>("model", "");
  return m;
}
Metrics metrics_from(const Reader& r) {
  Metrics m;
  m.count = r.get<int64_t>("count");
  m.nan_count = r.get<int64_t>("nan_count");
  m.inf_mismatch = r.get<int64_t>("inf_mismatch");
  m.max_abs_err = r.dbl("max_abs_err");
  m.ref_inf_norm = r.dbl("ref_inf_norm");
  m.max_err_norm = r.dbl("max_err_norm");
  m.rel_rms = r.dbl("rel_rms");
  m.cosine = r.dbl("cosine");
  m.outside = r.get<int64_t>("outside");
  m.frac_outside = r.dbl("frac_outside");
  m.worst_index = r.get<int64_t>("worst_index");
  m.worst_out = r.dbl("worst_out");
  m.worst_ref = r.dbl("worst_ref");
  m.degenerate = r.get<std::string>("degenerate");
  if (r.j.contains("aggregate") && r.j.at("aggregate").is_object()) {
    const Reader a = r.sub("aggregate");
    m.aggregate_checked = true;
    m.expected_rms = a.dbl("expected_rms");
    m.rms_limit = a.dbl("rms_limit");
    m.bias = a.dbl("bias");
    m.bias_limit = a.dbl("bias_limit");
    m.alpha = a.dbl("alpha");
    m.alpha_limit = a.dbl("alpha_limit");
    m.rms_fraction = a.dbl("rms_fraction");
    m.bias_fraction = a.dbl("bias_fraction");
    m.scale_fraction = a.dbl("scale_fraction");
  }
  return m;
}

}  // namespace

json to_json(const Context& c) {
  return {{"schema_version", c.schema_version},
          {"schema_minor", c.schema_minor},
          {"pacheck_version", c.pacheck_version},
          {"git_commit", c.git_commit},
          {"compiler", c.compiler},
          {"device",
           {{"name", c.device.name},
            {"arch", c.device.arch},
            {"cu_count", c.device.cu_count},
            {"native_fp8", to_string(c.device.native_fp8)},
            {"warp_size", c.device.warp_size}}},
          {"backend", c.backend},
          {"backend_reason", c.backend_reason},
          {"runtime_version", c.runtime_version},
          {"driver_version", c.driver_version},
          {"gpu_compiler", c.gpu_compiler},
          {"seed", c.seed},
          {"suite", c.suite},
          {"paths", c.paths},
          {"shard", c.shard},
          {"inputs", {{"memory", c.inputs}, {"reason", c.inputs_reason}}},
          {"kernels", [&] {
             nlohmann::json a = nlohmann::json::array();
             for (const KernelInfoRecord& k : c.kernels)
               a.push_back({{"name", k.name}, {"version", k.version}, {"provenance", k.provenance},
                            {"source", k.source}, {"memory", k.memory}});
             return a;
           }()},
          {"started_utc", c.started_utc}};
}

json to_json(const Record& r) {
  json declined = json::array();
  for (const Declined& d : r.decision.declined) declined.push_back({{"path", d.path}, {"reason", d.reason}});
  return {{"case",
           {{"index", r.case_index},
            {"slug", r.slug},
            {"vars", r.vars},
            {"name", r.name},
            {"json", r.case_json},
            {"input_hash", r.input_hash}}},
          {"path", r.path},
          {"ran", r.ran.empty() ? json(nullptr) : json(r.ran)},
          {"backend", r.backend},
          {"decision",
           {{"chosen", r.decision.chosen.empty() ? json(nullptr) : json(r.decision.chosen)},
            {"why", r.decision.why},
            {"declined", declined},
            {"workspace_bytes", r.decision.workspace_bytes},
            {"error", r.decision.error}}},
          {"status", to_string(r.status)},
          {"metric", r.metric},
          {"message", r.message},
          {"metrics", metrics_json(r.metrics)},
          {"lse", lse_json(r.lse)},
          {"tolerance", {{"atol", num(r.tolerance.atol)}, {"rtol", num(r.tolerance.rtol)}, {"model", r.tolerance.model}}},
          {"replay", r.replay},
          {"timings",
           {{"inputs_ms", r.timings.inputs_ms},
            {"reference_ms", r.timings.reference_ms},
            {"path_ms", r.timings.path_ms},
            {"wall_ms", r.timings.wall_ms}}},
          {"oracle",
           {{"where", r.oracle},
            {"disagreement", r.oracle_disagreement < 0 ? json(nullptr) : json(r.oracle_disagreement)}}}};
}

json to_json(const Summary& s) {
  return {{"cases", s.cases},
          {"records", s.records},
          {"Ok", s.ok},
          {"Fail", s.fail},
          {"NotSupported", s.not_supported},
          {"Skipped", s.skipped},
          {"elapsed_ms", s.elapsed_ms},
          {"interrupted", s.interrupted},
          {"complete", s.complete},
          {"oracle_cross_checked", s.oracle_cross_checked},
          {"oracle_max_disagreement", s.oracle_max_disagreement},
          {"families", s.families}};
}

json to_json(const BenchRecord& b) {
  json j = {{"kernel", b.kernel},
            {"model", b.model},
            {"kv_dtype", b.kv_dtype},
            {"num_seqs", b.num_seqs},
            {"context", b.context},
            {"median_ms", num(b.median_ms)},
            {"spread_ms", num(b.spread_ms)},
            {"bytes", b.bytes},
            {"bandwidth_gbs", num(b.bandwidth_gbs)},
            {"fraction_of_stream", num(b.fraction_of_stream)},
            {"chosen", b.chosen.empty() ? json(nullptr) : json(b.chosen)},
            {"fastest", b.fastest},
            {"timing", b.timing}};
  // Optional: a bench without a dispatcher comparison has no regret, and null would read as "unknown".
  if (std::isfinite(b.regret)) j["regret"] = b.regret;
  return j;
}

json to_json(const Report& r) {
  json cases = json::array();
  for (const Record& rec : r.cases) cases.push_back(to_json(rec));
  json j = {{"format", "pacheck-report"},
            {"context", to_json(r.context)},
            {"cases", std::move(cases)},
            {"summary", to_json(r.summary)}};
  // Written only when present, so reports of runs that measured nothing stay as they were.
  if (!r.bench.empty()) {
    json bench = json::array();
    for (const BenchRecord& b : r.bench) bench.push_back(to_json(b));
    j["bench"] = std::move(bench);
  }
  return j;
}

Context context_from_json(const json& j) {
  const Reader r{j, "context"};
  Context c;
  c.schema_version = r.get<int>("schema_version");
  if (c.schema_version < 1)
    throw InputError("context.schema_version: " + std::to_string(c.schema_version) +
                     " is no pacheck report version (the first is 1)");
  if (c.schema_version > kSchemaVersion)
    throw InputError("context.schema_version: " + std::to_string(c.schema_version) +
                     " is newer than this pacheck understands (" + std::to_string(kSchemaVersion) + ")");
  // Absent before minor version 1; a newer minor only adds fields, which this reader ignores.
  c.schema_minor = r.get_or<int>("schema_minor", 0);
  if (c.schema_minor < 0) throw InputError("context.schema_minor: " + std::to_string(c.schema_minor) + ": must be >= 0");
  c.pacheck_version = r.get<std::string>("pacheck_version");
  c.git_commit = r.get<std::string>("git_commit");
  c.compiler = r.get<std::string>("compiler");
  const Reader d = r.sub("device");
  c.device.name = d.get<std::string>("name");
  c.device.arch = d.get<std::string>("arch");
  c.device.cu_count = d.get<int32_t>("cu_count");
  const std::string fp8 = d.get<std::string>("native_fp8");
  const std::optional<DType> native = parse_dtype(fp8);
  if (!native || !is_fp8(*native)) throw InputError("context.device.native_fp8: '" + fp8 + "' is not an fp8 dtype");
  c.device.native_fp8 = *native;
  c.device.warp_size = d.get_or<int32_t>("warp_size", 0);
  c.backend = r.get<std::string>("backend");
  c.backend_reason = r.get_or<std::string>("backend_reason", "");
  c.runtime_version = r.get_or<std::string>("runtime_version", "n/a");
  c.driver_version = r.get_or<std::string>("driver_version", "n/a");
  c.gpu_compiler = r.get_or<std::string>("gpu_compiler", "n/a");
  c.seed = r.get<uint64_t>("seed");
  c.suite = r.get<std::string>("suite");
  c.paths = r.get_or<std::vector<std::string>>("paths", {});
  c.shard = r.get_or<std::string>("shard", "");
  if (r.j.contains("inputs") && r.j.at("inputs").is_object()) {
    c.inputs = r.j.at("inputs").value("memory", "host");
    c.inputs_reason = r.j.at("inputs").value("reason", "");
  }
  if (r.j.contains("kernels") && r.j.at("kernels").is_array())
    for (const auto& k : r.j.at("kernels"))
      c.kernels.push_back({k.value("name", ""), k.value("version", ""), k.value("provenance", ""),
                           k.value("source", ""), k.value("memory", "")});
  c.started_utc = r.get<std::string>("started_utc");
  return c;
}

Record record_from_json(const json& j) {
  const Reader r{j, "record"};
  Record rec;
  const Reader c = r.sub("case");
  rec.case_index = c.get<int64_t>("index");
  rec.slug = c.get<std::string>("slug");
  rec.vars = c.get<std::string>("vars");
  rec.name = c.get_or<std::string>("name", "");
  rec.case_json = c.at("json");
  rec.input_hash = c.get_or<std::string>("input_hash", "");
  rec.path = r.get<std::string>("path");
  rec.ran = r.get_or<std::string>("ran", "");
  rec.backend = r.get<std::string>("backend");
  const Reader d = r.sub("decision");
  rec.decision.chosen = d.get_or<std::string>("chosen", "");
  rec.decision.why = d.get<std::string>("why");
  for (const json& x : d.at("declined")) {
    const Reader dx{x, "record.decision.declined[]"};
    rec.decision.declined.push_back({dx.get<std::string>("path"), dx.get<std::string>("reason")});
  }
  rec.decision.workspace_bytes = d.get<int64_t>("workspace_bytes");
  rec.decision.error = d.get_or<std::string>("error", "");
  rec.status = parse_status(r.get<std::string>("status"), "record");
  rec.metric = r.get<std::string>("metric");
  rec.message = r.get<std::string>("message");
  rec.metrics = metrics_from(r.sub("metrics"));
  if (r.j.contains("lse")) rec.lse = lse_from(r.j.at("lse"));
  const Reader t = r.sub("tolerance");
  rec.tolerance.atol = t.dbl("atol");
  rec.tolerance.rtol = t.dbl("rtol");
  rec.tolerance.model = t.get<std::string>("model");
  rec.replay = r.get<std::string>("replay");
  const Reader tm = r.sub("timings");
  rec.timings.inputs_ms = tm.dbl("inputs_ms");
  rec.timings.reference_ms = tm.dbl("reference_ms");
  rec.timings.path_ms = tm.dbl("path_ms");
  rec.timings.wall_ms = tm.dbl("wall_ms");
  if (r.j.contains("oracle") && r.j.at("oracle").is_object()) {
    const json& o = r.j.at("oracle");
    rec.oracle = o.value("where", "cpu");
    rec.oracle_disagreement = o.contains("disagreement") && o.at("disagreement").is_number() ? o.at("disagreement").get<double>() : -1;
  }
  return rec;
}

Summary summary_from_json(const json& j) {
  const Reader r{j, "summary"};
  Summary s;
  s.cases = r.get<int64_t>("cases");
  s.records = r.get<int64_t>("records");
  s.ok = r.get<int64_t>("Ok");
  s.fail = r.get<int64_t>("Fail");
  s.not_supported = r.get<int64_t>("NotSupported");
  s.skipped = r.get<int64_t>("Skipped");
  s.elapsed_ms = r.dbl("elapsed_ms");
  s.interrupted = r.get_or<bool>("interrupted", false);
  // Before schema_minor 1 a final report was complete unless the run was interrupted.
  s.complete = r.get_or<bool>("complete", !s.interrupted);
  s.oracle_cross_checked = r.get_or<int64_t>("oracle_cross_checked", 0);
  s.oracle_max_disagreement = r.j.contains("oracle_max_disagreement") ? r.dbl("oracle_max_disagreement") : 0.0;
  if (const auto f = j.find("families"); f != j.end()) {
    if (!f->is_object()) throw InputError("summary.families: expected an object of counts");
    for (auto it = f->begin(); it != f->end(); ++it) {
      if (!it->is_number_integer()) throw InputError("summary.families." + it.key() + ": expected an integer count");
      s.families[it.key()] = it->get<int64_t>();
    }
  }
  return s;
}

BenchRecord bench_record_from_json(const json& j) {
  const Reader r{j, "bench"};
  BenchRecord b;
  b.kernel = r.get<std::string>("kernel");
  b.model = r.get<std::string>("model");
  b.kv_dtype = r.get<std::string>("kv_dtype");
  b.num_seqs = r.get<int64_t>("num_seqs");
  b.context = r.get<int64_t>("context");
  b.median_ms = r.dbl("median_ms");
  b.spread_ms = r.get_or<double>("spread_ms", 0);
  b.bytes = r.get_or<int64_t>("bytes", 0);
  b.bandwidth_gbs = r.dbl("bandwidth_gbs");
  b.fraction_of_stream = r.dbl("fraction_of_stream");
  if (j.contains("regret") && !j.at("regret").is_null()) b.regret = r.dbl("regret");
  b.chosen = r.get_or<std::string>("chosen", "");
  b.fastest = r.get_or<std::string>("fastest", "");
  b.timing = r.get_or<std::string>("timing", "");
  return b;
}

namespace {
std::vector<BenchRecord> bench_from(const json& report) {
  std::vector<BenchRecord> out;
  if (!report.contains("bench")) return out;
  const json& bench = report.at("bench");
  if (!bench.is_array()) throw InputError("report.bench: expected an array");
  for (size_t i = 0; i < bench.size(); ++i) {
    try {
      out.push_back(bench_record_from_json(bench[i]));
    } catch (const InputError& e) {
      throw InputError("bench[" + std::to_string(i) + "]: " + e.what());
    }
  }
  return out;
}
}  // namespace

Report report_from_json(const json& j) {
  const Reader r{j, "report"};
  const std::string format = r.get<std::string>("format");
  if (format != "pacheck-report")
    throw InputError("report.format: '" + format + "' is not a pacheck report (expected pacheck-report)");
  Report rep;
  rep.context = context_from_json(r.at("context"));
  const json& cases = r.at("cases");
  if (!cases.is_array()) throw InputError("report.cases: expected an array");
  for (size_t i = 0; i < cases.size(); ++i) {
    try {
      rep.cases.push_back(record_from_json(cases[i]));
    } catch (const InputError& e) {
      throw InputError("cases[" + std::to_string(i) + "]: " + e.what());
    }
  }
  rep.summary = summary_from_json(r.at("summary"));
  rep.complete = rep.summary.complete;
  // The summary is derived data: one that disagrees with the records was edited, and every
  // reader (diff, merge, the HTML page) would show the edit instead of the run.
  const Summary counted = summarize(rep.cases);
  const auto agree = [&](const char* field, int64_t stored, int64_t actual) {
    if (stored != actual)
      throw InputError("summary." + std::string(field) + " is " + std::to_string(stored) + " but the records count " +
                       std::to_string(actual) + ": the summary does not belong to these records");
  };
  agree("cases", rep.summary.cases, counted.cases);
  agree("records", rep.summary.records, counted.records);
  agree("Ok", rep.summary.ok, counted.ok);
  agree("Fail", rep.summary.fail, counted.fail);
  agree("NotSupported", rep.summary.not_supported, counted.not_supported);
  agree("Skipped", rep.summary.skipped, counted.skipped);
  rep.bench = bench_from(j);
  return rep;
}

}  // namespace pa::report
