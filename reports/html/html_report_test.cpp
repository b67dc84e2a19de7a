// The HTML report renderer: self-contained page, injected data, failures with replay lines,
// escaping of </script>, and errors that name the missing file.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include <unistd.h>

#include "core/case.hpp"
#include "reports/html/html_report.hpp"

namespace pa::report {
namespace {

using nlohmann::json;

const char* kHostile = "oops </script><script>alert(1)</script> <!-- {{data}}";

Record record(int64_t index, const std::string& path, Status st) {
  Case c;
  c.seed = uint64_t(index + 1);
  c.kv_layout = index % 2 ? KvLayout::shuffled : KvLayout::nhd;
  c.sinks = index == 2;
  Record r;
  r.case_index = index;
  r.slug = slug(c);
  r.vars = vars(c);
  r.case_json = to_json(c);
  r.path = path;
  r.ran = path;
  r.backend = "host";
  r.decision.chosen = "v1";
  r.decision.why = "only v1";
  r.status = st;
  r.metrics.count = 1024;
  r.metrics.ref_inf_norm = 2;
  r.metrics.max_abs_err = 1e-3;
  r.tolerance = {1e-2, 7.8e-3, "atol = ..."};
  r.replay = "pacheck replay --case '" + r.case_json.dump() + "'";
  if (st == Status::Fail) {
    r.metric = "outside_tolerance";
    r.message = "3/1024 elements outside; worst at [s=0 i=0 h=5 d=17]: out=0.9 ref=0.5";
    r.metrics.worst_index = 17;
    r.metrics.worst_out = 0.9;
    r.metrics.worst_ref = 0.5;
  }
  if (st == Status::NotSupported) r.message = "kv_layout=nhd not supported";
  return r;
}

Report sample(bool with_bench) {
  Report rep;
  rep.context.git_commit = "abc1234";
  rep.context.device = device_mi300x();
  rep.context.backend = "host";
  rep.context.suite = "ci";
  rep.context.seed = 7;
  rep.context.started_utc = "2026-11-22T22:14:00Z";
  rep.cases = {record(0, "v1", Status::Ok), record(0, "hip", Status::NotSupported),
               record(1, "v1", Status::Ok), record(1, "hip", Status::Ok),
               record(2, "v1", Status::Fail), record(2, "hip", Status::Skipped)};
  rep.cases[4].message += kHostile;
  rep.summary = summarize(rep.cases);
  if (with_bench) {
    for (const char* k : {"hip", "asm"}) {
      BenchRecord b;
      b.kernel = k;
      b.model = "llama3_70b_tp1";
      b.kv_dtype = "bf16";
      b.num_seqs = 64;
      b.context = 8192;
      b.median_ms = std::string(k) == "hip" ? 0.40 : 0.43;
      b.bandwidth_gbs = 2700;
      b.fraction_of_stream = 0.64;
      b.chosen = "asm";
      b.fastest = "hip";
      b.timing = "gpu";
      rep.bench.push_back(b);
    }
  }
  return rep;
}

std::string temp_path(const std::string& name) { return ::testing::TempDir() + "/pacheck_html_" + name; }

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t i = hay.find(needle); i != std::string::npos; i = hay.find(needle, i + 1)) ++n;
  return n;
}

// The blob as the page's JS sees it: the text of <script id="pacheck-data">.
json embedded_data(const std::string& html) {
  const std::string open = "<script type=\"application/json\" id=\"pacheck-data\">";
  const size_t b = html.find(open);
  EXPECT_NE(b, std::string::npos);
  const size_t e = html.find("</script>", b);
  return json::parse(html.substr(b + open.size(), e - b - open.size()));
}

TEST(HtmlReport, IsSelfContainedWithChartJsInlined) {
  const std::string html = render_html({sample(true)}, {"r.json"});
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(count(html, "* Chart.js v"), 1u) << "Chart.js must be inlined, once";
  EXPECT_EQ(html.find("<script src"), std::string::npos) << "no external scripts";
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
  EXPECT_NE(html.find("default-src 'none'"), std::string::npos) << "the page forbids fetching anything";
  for (const char* ph : {"{{title}}", "{{chart_js}}", "{{report_js}}"})
    EXPECT_EQ(html.find(ph), std::string::npos) << ph << " left unfilled";
  // Once, inside the injected failure message: placeholders are filled in one pass, so text in
  // the data is never substituted again.
  EXPECT_EQ(count(html, "{{data}}"), 1u);
}

TEST(HtmlReport, InjectsTheDataBlobTheJsDrawsFrom) {
  const std::string html = render_html({sample(true)}, {"r.json"});
  const json d = embedded_data(html);
  ASSERT_EQ(d["history"].size(), 1u);
  const json& latest = d["latest"];
  EXPECT_EQ(latest["context"]["git_commit"], "abc1234");
  EXPECT_EQ(latest["summary"]["Ok"], 3);
  EXPECT_EQ(latest["summary"]["Fail"], 1);
  EXPECT_EQ(latest["summary"]["NotSupported"], 1);
  EXPECT_EQ(latest["summary"]["Skipped"], 1);
  ASSERT_EQ(latest["records"].size(), 6u);
  EXPECT_EQ(latest["records"][1]["features"]["layout"], "nhd");
  EXPECT_EQ(latest["records"][2]["features"]["layout"], "shuffled");
  EXPECT_EQ(latest["records"][4]["features"]["options"], json::array({"sinks"}));
  EXPECT_EQ(latest["records"][0]["features"]["gqa"], "G=8");
  EXPECT_EQ(latest["records"][0]["features"]["q_len"], "q=1");
  EXPECT_EQ(latest["records"][0]["features"]["family"], json::array({"classic"}));
  // Passing: 1e-3 / (1e-2 + 7.8e-3 * 2); failing: |0.9 - 0.5| / (1e-2 + 7.8e-3 * 0.5), exact.
  EXPECT_NEAR(latest["records"][0]["edge"].get<double>(), 1e-3 / (1e-2 + 7.8e-3 * 2), 1e-12);
  EXPECT_NEAR(latest["records"][4]["edge"].get<double>(), 0.4 / (1e-2 + 7.8e-3 * 0.5), 1e-9);
  EXPECT_TRUE(latest["records"][1]["edge"].is_null()) << "NotSupported has no numeric verdict";
  ASSERT_EQ(latest["bench"].size(), 2u);
  EXPECT_EQ(latest["bench"][0]["fastest"], "hip");
}

TEST(HtmlReport, ListsEveryFailureWithCoordinatesAndItsReplayLine) {
  const Report rep = sample(false);
  const std::string html = render_html({rep}, {"r.json"});
  const json f = embedded_data(html)["latest"]["failures"];
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0]["replay"], rep.cases[4].replay);
  EXPECT_EQ(f[0]["coords"], "s=0 i=0 h=5 d=17");
  EXPECT_EQ(f[0]["vars"], rep.cases[4].vars);
  EXPECT_EQ(f[0]["path"], "v1");
  // The replay line's characters that matter to a shell survive the script escaping.
  EXPECT_NE(html.find("pacheck replay --case '{"), std::string::npos);
  EXPECT_TRUE(embedded_data(html)["latest"]["bench"].empty());
}

TEST(HtmlReport, EscapesScriptEndTagsInInjectedData) {
  const std::string html = render_html({sample(false)}, {"r.json"});
  EXPECT_EQ(html.find("</script><script>alert(1)"), std::string::npos);
  EXPECT_EQ(html.find("<!-- {{data}}"), std::string::npos);
  EXPECT_NE(html.find("\\u003c/script\\u003e\\u003cscript\\u003ealert(1)"), std::string::npos);
  // The escaped text is still the original message to a JSON reader.
  const json f = embedded_data(html)["latest"]["failures"];
  EXPECT_NE(f[0]["message"].get<std::string>().find(kHostile), std::string::npos);
  // Exactly the template's own script elements close: head guard, data, Chart.js, report.js.
  EXPECT_EQ(count(html, "</script>"), 4u);
  EXPECT_EQ(json_for_script(json("</script>")), "\"\\u003c/script\\u003e\"");
}

TEST(HtmlReport, SeveralReportsGiveATrendOldestFirst) {
  Report old = sample(false), mid = sample(false), now = sample(true);
  old.context.started_utc = "2026-11-20T02:00:00Z";
  mid.context.started_utc = "2026-11-21T02:00:00Z";
  now.cases[4].status = Status::Ok;
  const json d = embedded_data(render_html({old, mid, now}, {"a.json", "b.json", "c.json"}));
  ASSERT_EQ(d["history"].size(), 3u);
  EXPECT_EQ(d["history"][0]["name"], "a.json");
  ASSERT_EQ(d["history"][0]["kernels"].size(), 2u);
  EXPECT_EQ(d["history"][0]["kernels"][0]["kernel"], "v1") << "kernels keep the run's order";
  EXPECT_EQ(d["history"][0]["kernels"][0]["counts"]["Fail"], 1);
  EXPECT_EQ(d["history"][2]["kernels"][0]["counts"]["Fail"], 0);
  EXPECT_EQ(d["latest"]["name"], "c.json");
  EXPECT_TRUE(d["latest"]["failures"].empty());
}

TEST(HtmlReport, WritesAtomicallyAndReadsPartialReports) {
  const std::string in = temp_path("in.json"), partial = temp_path("run.json");
  {
    std::ofstream f(in);
    f << to_json(sample(true)).dump();
  }
  {
    ReportWriter w(partial, sample(false).context);
    w.add(sample(false).cases[4]);  // a crashed run: only the .partial exists
  }
  const std::string out = temp_path("out.html");
  std::remove(out.c_str());
  EXPECT_EQ(write_html_report({in, partial + ".partial"}, out), 0);
  EXPECT_FALSE(std::ifstream(out + ".tmp." + std::to_string(::getpid())).good()) << "temporary left behind";
  std::ifstream f(out);
  std::stringstream s;
  s << f.rdbuf();
  const json d = embedded_data(s.str());
  EXPECT_EQ(d["history"].size(), 2u);
  EXPECT_FALSE(d["latest"]["complete"].get<bool>());
  EXPECT_EQ(d["latest"]["summary"]["Fail"], 1);
}

TEST(HtmlReport, ErrorsNameTheMissingFile) {
  const std::string missing = temp_path("no_such_report.json");
  try {
    write_html_report({missing}, temp_path("never.html"));
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  std::ifstream never(temp_path("never.html"));
  EXPECT_FALSE(never.good()) << "no output when an input is missing";

  for (int which = 0; which < 3; ++which) {
    HtmlAssets a = default_html_assets();
    std::string& p = which == 0 ? a.template_path : which == 1 ? a.script_path : a.chart_js_path;
    p = "/nonexistent/asset_" + std::to_string(which);
    try {
      render_html({sample(false)}, {"r.json"}, a);
      FAIL() << "expected InputError for " << p;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(render_html({}, {}), InputError);
  EXPECT_THROW(render_html({sample(false)}, {"a", "b"}), InputError);
  const std::string in = temp_path("ok.json");
  {
    std::ofstream f(in);
    f << to_json(sample(false)).dump();
  }
  try {
    write_html_report({in}, "/nonexistent/dir/out.html");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/out.html"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pa::report
