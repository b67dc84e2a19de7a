// One fault, one verdict, whatever the isolation mode: a launch crosses into a kernel through the
// same code in pacheck's process and in a worker (kernels/crossing.hpp), so a kernel that cannot run
// here is Skipped and a write past its output is a guard failure in both modes. Before the one
// crossing, a device-memory plug-in on a pacheck built without a GPU was Skipped in process but a
// Fail (kernel_error) in a worker, and a guard violation was `guard` in process but `kernel_error`
// in a worker.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "reports/report.hpp"

namespace pa {
namespace {

std::map<std::string, const report::Record*> by_path(const report::Report& r) {
  std::map<std::string, const report::Record*> m;
  for (const auto& rec : r.cases) m[rec.path] = &rec;
  return m;
}

report::Report run(const std::string& isolate) {
  const auto dir = std::filesystem::temp_directory_path() / ("pacheck_parity_" + isolate);
  std::filesystem::create_directories(dir);
  const std::string cases = (dir / "case.json").string(), report = (dir / "report.json").string();
  std::ofstream(cases) << R"([{"name": "plain", "seed": 3, "num_seqs": 2, "num_q_heads": 4, "num_kv_heads": 1,
                             "head_size": 64, "block_size": 16, "context_lens": [17, 33], "kv_layout": "nhd"}])";
  const std::string cmd = std::string(PACHECK_BIN) + " run --backend host --kernel " + PARITY_PLUGIN + " --isolate " +
                          isolate + " --case " + cases + " --quiet --report " + report + " > /dev/null 2>&1";
  const int st = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(st)) << cmd;
  EXPECT_EQ(WEXITSTATUS(st), 1) << "the guard failures must give exit 1: " << cmd;
  return report::load_report(report);
}

TEST(IsolationParity, TheSameFaultGetsTheSameVerdictInProcessAndInAWorker) {
  for (const char* isolate : {"never", "external"}) {
    SCOPED_TRACE(std::string("--isolate ") + isolate);
    const report::Report r = run(isolate);
    const auto recs = by_path(r);
    ASSERT_TRUE(recs.count("device_memory_kernel") && recs.count("overruns_out") && recs.count("writes_canary_byte"));
    const report::Record& dev = *recs.at("device_memory_kernel");
    EXPECT_EQ(to_string(dev.status), std::string("Skipped")) << dev.metric << ": " << dev.message;
    EXPECT_NE(dev.message.find("without a GPU"), std::string::npos) << dev.message;
    for (const char* k : {"overruns_out", "writes_canary_byte"}) {
      const report::Record& g = *recs.at(k);
      EXPECT_EQ(to_string(g.status), std::string("Fail")) << k;
      EXPECT_EQ(g.metric, "guard") << k << ": " << g.message;
      EXPECT_NE(g.message.find("'out'"), std::string::npos) << k << ": " << g.message;
    }
  }
}

// A supports() that crashes or hangs is that case's failure (crash / timeout), and the run goes on.
// It used to be answered "yes" and the launch that followed, in a fresh worker, was recorded Ok.
TEST(IsolationParity, ASupportsThatCrashesOrHangsIsThatCasesFailure) {
  const auto dir = std::filesystem::temp_directory_path() / "pacheck_bad_supports";
  std::filesystem::create_directories(dir);
  const std::string cases = (dir / "cases.json").string(), report = (dir / "report.json").string();
  std::ofstream(cases) << R"([
    {"name": "long", "seed": 3, "num_q_heads": 4, "num_kv_heads": 1, "head_size": 64, "block_size": 16,
     "context_lens": [40], "kv_layout": "nhd"},
    {"name": "mtp", "seed": 4, "q_len": 2, "num_q_heads": 4, "num_kv_heads": 1, "head_size": 64, "block_size": 16,
     "context_lens": [20], "kv_layout": "nhd"},
    {"name": "short", "seed": 5, "num_q_heads": 4, "num_kv_heads": 1, "head_size": 64, "block_size": 16,
     "context_lens": [20], "kv_layout": "nhd"}])";
  const std::string cmd = std::string(PACHECK_BIN) + " run --backend host --kernel " + BAD_SUPPORTS_PLUGIN +
                          " --kernel-timeout 2 --case " + cases + " --quiet --report " + report + " > /dev/null 2>&1";
  const int st = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(st)) << cmd;
  EXPECT_EQ(WEXITSTATUS(st), 1) << cmd;
  std::map<std::pair<std::string, std::string>, const report::Record*> by;
  const report::Report r = report::load_report(report);
  for (const auto& rec : r.cases) by[{rec.path, rec.name}] = &rec;
  const auto expect = [&](const char* kernel, const char* name, const char* status, const char* metric) {
    const auto it = by.find({kernel, name});
    ASSERT_NE(it, by.end()) << kernel << " / " << name;
    EXPECT_EQ(to_string(it->second->status), std::string(status)) << kernel << " / " << name << ": " << it->second->message;
    EXPECT_EQ(it->second->metric, metric) << kernel << " / " << name << ": " << it->second->message;
    if (*metric) EXPECT_NE(it->second->message.find("supports()"), std::string::npos) << it->second->message;
  };
  expect("supports_segfaults", "long", "Fail", "crash");
  expect("supports_segfaults", "mtp", "Ok", "");
  expect("supports_segfaults", "short", "Ok", "");
  expect("supports_hangs", "mtp", "Fail", "timeout");
  expect("supports_hangs", "long", "Ok", "");
  expect("supports_hangs", "short", "Ok", "");
}

}  // namespace
}  // namespace pa
