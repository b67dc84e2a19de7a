// A sticky device fault ends the worker, not the run: the faulting case is a crash naming the
// fault, and the cases after it run in a fresh worker and pass. Before, the fault poisoned the
// worker's context and every later case in it failed. Needs a GPU; skips with the reason without.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "kernels/kernel.hpp"
#include "reports/report.hpp"

namespace pa {
namespace {

TEST(StickyFault, EndsTheWorkerNotTheRun) {
  std::string why;
  if (!gpu_available(&why)) GTEST_SKIP() << why;
  const auto dir = std::filesystem::temp_directory_path() / "pacheck_sticky";
  std::filesystem::create_directories(dir);
  const std::string cases = (dir / "cases.json").string(), report = (dir / "report.json").string();
  std::ofstream(cases) << R"([
    {"name": "faults", "seed": 1, "num_q_heads": 8, "num_kv_heads": 1, "head_size": 128, "block_size": 16,
     "context_lens": [777], "kv_layout": "nhd"},
    {"name": "after_1", "seed": 2, "num_q_heads": 8, "num_kv_heads": 1, "head_size": 128, "block_size": 16,
     "context_lens": [40], "kv_layout": "nhd"},
    {"name": "after_2", "seed": 3, "num_seqs": 2, "num_q_heads": 8, "num_kv_heads": 1, "head_size": 128,
     "block_size": 16, "context_lens": [33, 65], "kv_layout": "nhd"}])";
  const std::string cmd = std::string(PACHECK_BIN) + " run --backend gpu --kernel " + STICKY_PLUGIN + " --case " + cases +
                          " --quiet --report " + report + " > " + (dir / "log").string() + " 2>&1";
  const int st = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(st)) << cmd;
  EXPECT_EQ(WEXITSTATUS(st), 1) << cmd;
  const report::Report r = report::load_report(report);
  int checked = 0;
  for (const auto& rec : r.cases) {
    if (rec.path != "sticky_fault_at_777") continue;
    ++checked;
    if (rec.name == "faults") {
      EXPECT_EQ(to_string(rec.status), std::string("Fail"));
      EXPECT_EQ(rec.metric, "crash") << rec.message;
      EXPECT_NE(rec.message.find("sticky"), std::string::npos) << rec.message;
    } else {
      EXPECT_EQ(to_string(rec.status), std::string("Ok")) << rec.name << ": " << rec.metric << " " << rec.message;
    }
  }
  EXPECT_EQ(checked, 3);
}

}  // namespace
}  // namespace pa
