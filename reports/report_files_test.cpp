// Report files as a hostile or unlucky environment leaves them: a stale report after a run that
// died, a symbolic link or device at the target, an earlier schema, an edited summary, an unknown
// version or format, an incomplete run.
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <gtest/gtest.h>
#include <unistd.h>

#include "core/case.hpp"
#include "reports/merge.hpp"
#include "reports/report.hpp"
#include "reports/testing/sample_report.hpp"

namespace pa::report {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::sample_report;

std::string fresh_dir(const std::string& name) {
  const std::string d = ::testing::TempDir() + "/pacheck_report_files_" + name + "_" + std::to_string(::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
void put(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

// With `--isolate never` a kernel calling exit(0) ended the run before finish(): the previous run's
// complete, passing report stayed at --report and looked like this run's result.
TEST(ReportFiles, AStartedRunRemovesThePreviousReport) {
  const std::string d = fresh_dir("stale"), path = d + "/r.json";
  write_report(sample_report(), path);
  ASSERT_TRUE(fs::exists(path));
  {
    ReportWriter w(path, sample_report().context);
    w.add(sample_report().cases[0]);
    EXPECT_FALSE(fs::exists(path)) << "a run that dies now leaves only its .partial";
  }  // dies here: no finish()
  const Report left = load_report(path + ".partial");
  EXPECT_FALSE(left.complete);
  EXPECT_FALSE(unusable_as_whole(left, "r.json.partial").empty());
}

TEST(ReportFiles, WritersRefuseALinkOrADeviceAtTheTarget) {
  const std::string d = fresh_dir("link"), real = d + "/real.json", link = d + "/link.json";
  put(real, "precious\n");
  fs::create_symlink(real, link);
  const std::string msg = error_of([&] { ReportWriter w(link, sample_report().context); });
  EXPECT_NE(msg.find(link + ": is a symbolic link"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { write_report(sample_report(), link); }).find("symbolic link"), std::string::npos);
  EXPECT_TRUE(fs::is_symlink(link));
  std::ifstream f(real);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(f), {}), "precious\n");
  EXPECT_NE(error_of([] { write_report(sample_report(), "/dev/null"); }).find("character device"), std::string::npos);
  // Asked for, the link is written through and stays a link.
  write_report(sample_report(), link, /*follow_symlink=*/true);
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_TRUE(load_report(real).complete);
}

TEST(ReportFiles, MergeOutputLeavesNoTemporaryFile) {
  const std::string d = fresh_dir("tmp");
  write_report(sample_report(), d + "/merged.json");
  EXPECT_NE(error_of([&] { write_report(sample_report(), d); }).find("is a directory"), std::string::npos);
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(d)) n += e.path().filename().string().find(".tmp") == std::string::npos ? 0 : 100;
  EXPECT_EQ(n, 0u);
}

TEST(ReportFiles, CompletenessIsWrittenAndReadBack) {
  const std::string d = fresh_dir("complete");
  Report rep = sample_report();
  write_report(rep, d + "/whole.json");
  const json whole = json::parse(std::ifstream(d + "/whole.json"));
  EXPECT_EQ(whole["summary"]["complete"], true);
  EXPECT_EQ(whole["context"]["schema_minor"], kSchemaMinor);
  EXPECT_TRUE(load_report(d + "/whole.json").complete);
  // An interrupted run's final report is written, and says it is incomplete.
  ReportWriter w(d + "/cut.json", rep.context);
  for (const Record& r : rep.cases) w.add(r);
  Summary s = summarize(rep.cases);
  s.interrupted = true;
  w.finish(s);
  const Report cut = load_report(d + "/cut.json");
  EXPECT_FALSE(cut.complete);
  EXPECT_NE(unusable_as_whole(cut, "cut.json").find("cut.json: an incomplete report (the run was interrupted)"),
            std::string::npos);
  rep.cases.clear();
  rep.summary = summarize(rep.cases);
  EXPECT_NE(unusable_as_whole(rep, "e.json").find("e.json: a report with no record"), std::string::npos);
}

// Reports written before schema_minor 1 have no `complete` and no `schema_minor`: they still read,
// complete unless interrupted.
TEST(ReportFiles, AnEarlierSchemaStillReads) {
  const std::string d = fresh_dir("old");
  json doc = to_json(sample_report());
  doc["context"].erase("schema_minor");
  doc["summary"].erase("complete");
  put(d + "/old.json", doc.dump(1));
  const Report back = load_report(d + "/old.json");
  EXPECT_TRUE(back.complete);
  EXPECT_EQ(back.context.schema_minor, 0);
  EXPECT_EQ(back.cases.size(), sample_report().cases.size());
  doc["summary"]["interrupted"] = true;
  put(d + "/old_cut.json", doc.dump(1));
  EXPECT_FALSE(load_report(d + "/old_cut.json").complete);
}

TEST(ReportFiles, UnknownVersionsAndFormatsAreRefused) {
  const std::string d = fresh_dir("versions");
  for (int v : {0, -7, kSchemaVersion + 1}) {
    json doc = to_json(sample_report());
    doc["context"]["schema_version"] = v;
    put(d + "/v.json", doc.dump());
    const std::string msg = error_of([&] { load_report(d + "/v.json"); });
    EXPECT_NE(msg.find("context.schema_version: " + std::to_string(v)), std::string::npos) << msg;
  }
  for (const json& format : {json("pacheck-report-v9"), json(3), json()}) {
    json doc = to_json(sample_report());
    if (format.is_null())
      doc.erase("format");
    else
      doc["format"] = format;
    put(d + "/f.json", doc.dump());
    EXPECT_NE(error_of([&] { load_report(d + "/f.json"); }).find("report.format"), std::string::npos) << format;
  }
  put(d + "/p.partial", R"({"format": "something-else", "context": {}})" "\n");
  EXPECT_NE(error_of([&] { load_report(d + "/p.partial"); }).find("pacheck-report-partial"), std::string::npos);
}

// The HTML page showed a forged summary: every reader now refuses one the records contradict.
TEST(ReportFiles, ASummaryTheRecordsContradictIsRefused) {
  const std::string d = fresh_dir("forged");
  json doc = to_json(sample_report());
  doc["summary"]["Ok"] = 190;
  put(d + "/forged.json", doc.dump());
  const std::string msg = error_of([&] { load_report(d + "/forged.json"); });
  EXPECT_NE(msg.find("summary.Ok is 190 but the records count 6"), std::string::npos) << msg;
}

TEST(ReportFiles, NumbersInAReportAreCheckedLikeACase) {
  const std::string d = fresh_dir("numbers");
  json doc = to_json(sample_report());
  doc["cases"][1]["metrics"]["count"] = 1e19;  // undefined behaviour when cast to int64
  put(d + "/n.json", doc.dump());
  const std::string msg = error_of([&] { load_report(d + "/n.json"); });
  EXPECT_NE(msg.find("cases[1]: record.metrics.count: 1e+19: expected an integer"), std::string::npos) << msg;
  doc = to_json(sample_report());
  doc["context"]["seed"] = -1;
  put(d + "/s.json", doc.dump());
  EXPECT_NE(error_of([&] { load_report(d + "/s.json"); }).find("context.seed: -1"), std::string::npos);
  put(d + "/deep.json", std::string(100000, '[') + std::string(100000, ']'));
  EXPECT_NE(error_of([&] { load_report(d + "/deep.json"); }).find("nested deeper than 256"), std::string::npos);
}

}  // namespace
}  // namespace pa::report
