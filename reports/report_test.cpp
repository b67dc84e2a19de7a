// Report schema, writer/reader round trip, .partial recovery, diff, and the schema validator.
#include <cmath>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "core/case.hpp"
#include "reports/diff.hpp"
#include "reports/report.hpp"
#include "reports/reporter.hpp"
#include "reports/testing/sample_report.hpp"
#include "reports/testing/schema_validator.hpp"

namespace pa::report {
namespace {

using nlohmann::json;
using testing::sample_context;
using testing::sample_record;
using testing::sample_report;

json load_schema() {
  std::ifstream f(PACHECK_SCHEMA_FILE);
  return json::parse(f);
}

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "/pacheck_report_test_" + name;
}

TEST(Summary, CountsEveryStatusSeparately) {
  std::vector<Record> rs = {sample_record(0, "v1", Status::Ok), sample_record(0, "hip", Status::Fail),
                            sample_record(1, "v1", Status::NotSupported), sample_record(2, "v1", Status::Skipped),
                            sample_record(2, "hip", Status::Ok)};
  const Summary s = summarize(rs);
  EXPECT_EQ(s.cases, 3);
  EXPECT_EQ(s.records, 5);
  EXPECT_EQ(s.ok, 2);
  EXPECT_EQ(s.fail, 1);
  EXPECT_EQ(s.not_supported, 1);
  EXPECT_EQ(s.skipped, 1);
}

TEST(Schema, SampleReportValidates) {
  const auto errs = validate_schema(load_schema(), to_json(sample_report()));
  EXPECT_TRUE(errs.empty()) << (errs.empty() ? "" : errs.front());
}

TEST(Schema, ValidatorRejectsBrokenReports) {
  const json schema = load_schema();
  json doc = to_json(sample_report());
  doc["cases"][1]["status"] = "Passed";  // not a Status
  EXPECT_FALSE(validate_schema(schema, doc).empty());
  doc = to_json(sample_report());
  doc["context"].erase("git_commit");
  EXPECT_FALSE(validate_schema(schema, doc).empty());
  doc = to_json(sample_report());
  doc["cases"][0]["metrics"]["count"] = "many";
  EXPECT_FALSE(validate_schema(schema, doc).empty());
  doc = to_json(sample_report());
  doc["summary"]["Ok"] = 1.5;  // not an integer
  EXPECT_FALSE(validate_schema(schema, doc).empty());
  EXPECT_FALSE(validate_schema(json{{"type", "object"}, {"minProperties", 1}}, json::object()).empty())
      << "unsupported keywords must be reported, not ignored";
}

RC_GTEST_PROP(RecordJson, RoundTripsEveryField, ()) {
  Record r = sample_record(*rc::gen::inRange<int64_t>(0, 1000), *rc::gen::element<std::string>("v1", "hip", "asm", "auto"),
                           *rc::gen::element(Status::Ok, Status::Fail, Status::NotSupported, Status::Skipped));
  r.metrics.max_abs_err = *rc::gen::element(0.0, 1e-7, 3.5, double(NAN));
  r.metrics.cosine = *rc::gen::element(1.0, -0.25, double(NAN));
  r.metrics.nan_count = *rc::gen::inRange<int64_t>(0, 100);
  r.metrics.degenerate = *rc::gen::element<std::string>("", "all_zero", "constant", "v_mean");
  r.decision.chosen = *rc::gen::element<std::string>("", "v1", "asm");
  r.message = *rc::gen::container<std::string>(rc::gen::inRange<char>(32, 127));  // quotes, backslashes
  const Record back = record_from_json(json::parse(to_json(r).dump()));
  RC_ASSERT(to_json(back) == to_json(r));
  RC_ASSERT(std::isnan(back.metrics.max_abs_err) == std::isnan(r.metrics.max_abs_err));
  RC_ASSERT(back.message == r.message);
  RC_ASSERT(back.status == r.status);
}

TEST(Writer, FinalReportIsAtomicAndLoadable) {
  const std::string path = temp_path("final.json");
  std::remove(path.c_str());
  const Report rep = sample_report();
  {
    ReportWriter w(path, rep.context);
    for (const Record& r : rep.cases) w.add(r);
    std::ifstream none(path);
    EXPECT_FALSE(none.good()) << "the target must not exist before finish()";
    w.finish(rep.summary);
  }
  std::ifstream partial(path + ".partial");
  EXPECT_FALSE(partial.good()) << ".partial must be removed after finish()";
  const Report back = load_report(path);
  EXPECT_TRUE(back.complete);
  EXPECT_EQ(to_json(back), to_json(rep));
  std::ifstream f(path);
  const auto errs = validate_schema(load_schema(), json::parse(f));
  EXPECT_TRUE(errs.empty()) << (errs.empty() ? "" : errs.front());
}

// Device runs: where the inputs and the oracle were, and the cross-checked cases' agreement, which
// the summary counts once per case and states as its largest value.
TEST(Writer, OracleAgreementRoundTripsAndIsSummarizedPerCase) {
  const std::string path = temp_path("oracle.json");
  Report rep = sample_report();
  rep.context.inputs = "device";
  rep.context.inputs_reason = "auto: every kernel reads device memory";
  for (Record& r : rep.cases) {
    r.oracle = "gpu";
    r.oracle_disagreement = r.case_index == 0 ? 3e-15 : r.case_index == 2 ? 7e-14 : -1;
  }
  rep.summary = summarize(rep.cases);
  EXPECT_EQ(rep.summary.oracle_cross_checked, 2);
  EXPECT_EQ(rep.summary.oracle_max_disagreement, 7e-14);
  {
    ReportWriter w(path, rep.context);
    for (const Record& r : rep.cases) w.add(r);
    w.finish(rep.summary);
  }
  const Report back = load_report(path);
  EXPECT_EQ(to_json(back), to_json(rep));
  EXPECT_EQ(back.cases[3].oracle_disagreement, -1);  // case 1: not cross-checked, written as null
  EXPECT_EQ(back.context.inputs, "device");
  std::ifstream f(path);
  const auto errs = validate_schema(load_schema(), json::parse(f));
  EXPECT_TRUE(errs.empty()) << (errs.empty() ? "" : errs.front());
}

TEST(Writer, PartialFileOfACrashedRunIsLoadable) {
  const std::string path = temp_path("crash.json");
  const Report rep = sample_report();
  {
    ReportWriter w(path, rep.context);
    for (size_t i = 0; i < 4; ++i) w.add(rep.cases[i]);
    // no finish(): the process "crashed"
  }
  {
    std::ofstream f(path + ".partial", std::ios::app);
    f << to_json(rep.cases[4]).dump().substr(0, 40);  // a line cut short mid-write
  }
  const Report back = load_report(path + ".partial");
  EXPECT_FALSE(back.complete);
  ASSERT_EQ(back.cases.size(), 4u);
  EXPECT_EQ(to_json(back.cases[3]), to_json(rep.cases[3]));
  EXPECT_EQ(back.summary.records, 4);
  EXPECT_EQ(back.context.seed, rep.context.seed);
}

TEST(Writer, InvalidUtf8InAMessageDoesNotLoseTheRecord) {
  const std::string path = temp_path("utf8.json");
  Record r = sample_record(0, "v1", Status::Fail);
  r.message = "bad byte \x98 here";
  {
    ReportWriter w(path, sample_context());
    w.add(r);
    w.finish(summarize({r}));
  }
  const Report back = load_report(path);
  ASSERT_EQ(back.cases.size(), 1u);
  EXPECT_EQ(back.cases[0].status, Status::Fail);
  EXPECT_NE(back.cases[0].message.find("here"), std::string::npos);
}

BenchRecord sample_bench(const std::string& kernel, int64_t num_seqs, bool with_regret) {
  BenchRecord b;
  b.kernel = kernel;
  b.model = "llama3_70b_tp1";
  b.kv_dtype = "bf16";
  b.num_seqs = num_seqs;
  b.context = 8192;
  b.median_ms = 0.4;
  b.spread_ms = 0.01;
  b.bytes = 1 << 30;
  b.bandwidth_gbs = 2684.4;
  b.fraction_of_stream = 0.64;
  if (with_regret) b.regret = 0.08;
  b.chosen = "asm";
  b.fastest = "hip";
  b.timing = "gpu";
  return b;
}

TEST(Bench, OptionalArrayRoundTripsValidatesAndSurvivesACrash) {
  Report rep = sample_report();
  EXPECT_FALSE(to_json(rep).contains("bench")) << "a run without bench writes no bench key";
  rep.bench = {sample_bench("hip", 64, true), sample_bench("asm", 64, false)};
  const json doc = to_json(rep);
  EXPECT_FALSE(doc["bench"][1].contains("regret")) << "an unknown regret is omitted, not null";
  const auto errs = validate_schema(load_schema(), doc);
  EXPECT_TRUE(errs.empty()) << (errs.empty() ? "" : errs.front());
  const Report back = report_from_json(json::parse(doc.dump()));
  ASSERT_EQ(back.bench.size(), 2u);
  EXPECT_EQ(to_json(back), doc);
  EXPECT_TRUE(std::isnan(back.bench[1].regret));

  const std::string path = temp_path("bench_crash.json");
  {
    ReportWriter w(path, rep.context);
    w.add(rep.cases[0]);
    w.add_bench(rep.bench[0]);
  }
  const Report partial = load_report(path + ".partial");
  ASSERT_EQ(partial.cases.size(), 1u);
  ASSERT_EQ(partial.bench.size(), 1u);
  EXPECT_EQ(to_json(partial.bench[0]), to_json(rep.bench[0]));
}

TEST(Loader, NamesTheFileAndTheProblem) {
  const std::string path = temp_path("bad.json");
  {
    std::ofstream f(path);
    json doc = to_json(sample_report());
    doc["cases"][2]["metrics"].erase("rel_rms");
    f << doc.dump();
  }
  try {
    load_report(path);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("cases[2]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("rel_rms"), std::string::npos) << msg;
  }
  EXPECT_THROW(load_report(temp_path("does_not_exist.json")), InputError);
}

TEST(Diff, IdenticalReportsHaveNoDifferences) {
  const Report rep = sample_report();
  const DiffResult d = diff(rep, rep);
  EXPECT_TRUE(d.entries.empty());
  EXPECT_EQ(d.regressions(), 0);
}

TEST(Diff, FindsNewlyFailingFixedMetricTimingDecisionAddedRemoved) {
  const Report base = sample_report();
  Report next = base;
  next.cases[0] = sample_record(0, "v1", Status::Fail);                       // newly failing
  next.cases[3].metrics.max_err_norm = 5e-3;                                  // 1e-4 -> 5e-3: regression
  next.cases[5].metrics.rel_rms = 1.5e-4;                                     // grew, but below the floor
  next.cases[6].timings.path_ms = 10.0;                                       // 0.25 -> 10 ms
  for (int i = 6; i < 9; ++i) next.cases[size_t(i)].decision.chosen = "asm";  // case 2 re-routed
  next.cases.pop_back();                                                      // removed
  Record extra = sample_record(9, "v1", Status::Ok);
  next.cases.push_back(extra);                                                // added
  DiffThresholds with_timing;  // timings gate correctness records only when asked (timing=on)
  with_timing.timing = true;
  const DiffResult d = diff(base, next, with_timing);
  std::ostringstream out;
  print_diff(out, d);
  const auto count = [&](DiffKind k) {
    int n = 0;
    for (const auto& e : d.entries) n += e.kind == k;
    return n;
  };
  EXPECT_EQ(count(DiffKind::newly_failing), 1) << out.str();
  EXPECT_EQ(count(DiffKind::metric_regression), 1) << out.str();
  EXPECT_EQ(count(DiffKind::timing_regression), 1) << out.str();
  EXPECT_EQ(count(DiffKind::decision_changed), 1) << out.str();
  EXPECT_EQ(count(DiffKind::added), 1) << out.str();
  EXPECT_EQ(count(DiffKind::removed), 1) << out.str();
  EXPECT_EQ(d.regressions(), 4);
  EXPECT_NE(out.str().find(base.cases[0].slug + " v1 host"), std::string::npos) << out.str();

  // The reverse direction: the failing case is fixed, nothing newly fails.
  const DiffResult back = diff(next, base, with_timing);
  EXPECT_EQ(back.entries.front().kind, DiffKind::fixed);
  for (const auto& e : diff(base, next).entries)  // the default: no timing gate on correctness records
    EXPECT_NE(e.kind, DiffKind::timing_regression);
}

TEST(Diff, ThresholdSettingsAreCheckedByName) {
  DiffThresholds t;
  set_threshold(t, "metric_ratio=3");
  set_threshold(t, "timing=off");
  EXPECT_EQ(t.metric_ratio, 3.0);
  EXPECT_FALSE(t.timing);
  EXPECT_THROW(set_threshold(t, "bogus=1"), InputError);
  EXPECT_THROW(set_threshold(t, "metric_floor=abc"), InputError);
  EXPECT_THROW(set_threshold(t, "metric_floor"), InputError);
}

TEST(ConsoleReporter, PrintsFailuresReplayAndTheFinalCountLine) {
  std::ostringstream out;
  ConsoleReporter c(out, {});
  c.begin(sample_context(), 2);
  c.on_case({sample_record(0, "v1", Status::Ok), sample_record(0, "hip", Status::Fail)});
  c.on_case({sample_record(1, "v1", Status::Ok)});
  Summary s = summarize({sample_record(0, "v1", Status::Ok), sample_record(0, "hip", Status::Fail),
                         sample_record(1, "v1", Status::Ok)});
  c.end(s);
  const std::string text = out.str();
  EXPECT_NE(text.find("FAIL hip [outside_tolerance]"), std::string::npos) << text;
  EXPECT_NE(text.find("replay: pacheck replay --case"), std::string::npos) << text;
  EXPECT_NE(text.find("2 cases, 3 records: 2 Ok, 1 Fail, 0 NotSupported, 0 Skipped"), std::string::npos) << text;
  EXPECT_NE(text.find("\n2 passed, 1 failed\n"), std::string::npos) << text;
}


// Bench records gate on time, with a threshold from their own repetitions: growth inside three
// spreads is noise, growth beyond them is a regression; correctness records never gate on time.
TEST(Diff, BenchRecordsRegressBeyondTheirNoise) {
  Report base, next;
  BenchRecord b;
  b.kernel = "hip";
  b.model = "llama33_70b_tp1";
  b.kv_dtype = "bf16";
  b.num_seqs = 64;
  b.context = 8192;
  b.median_ms = 4.30;
  b.spread_ms = 0.02;
  b.timing = "gpu";
  base.bench = {b};
  BenchRecord noisy = b;
  noisy.median_ms = 4.35;  // + 0.05 ms, inside 3 spreads and 5 %
  next.bench = {noisy};
  EXPECT_EQ(diff(base, next).regressions(), 0);
  BenchRecord slower = b;
  slower.median_ms = 5.0;  // + 16 %
  next.bench = {slower};
  const DiffResult d = diff(base, next);
  ASSERT_EQ(d.regressions(), 1);
  EXPECT_NE(d.entries.front().key.find("bench hip llama33_70b_tp1"), std::string::npos);
  BenchRecord host = slower;
  host.timing = "host";  // never compared with a gpu timing
  next.bench = {host};
  EXPECT_EQ(diff(base, next).regressions(), 0);
}
}  // namespace
}  // namespace pa::report
