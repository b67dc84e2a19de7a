// A crashing kernel is a finding, not a dead run: one `pacheck run` over four misbehaving kernels
// (a segfault above 1000 tokens, an abort on 32-token pages, a hang on q_len 2, a Python adapter
// raising aiter's "cannot get heuristic kernel") completes, writes its report, and records each
// misbehaviour as that case's Fail with the metric and a message naming the signal or the text.
// Every other (kernel, case) record is Ok: the restarted workers carried on.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "kernels/kernel.hpp"
#include "reports/report.hpp"
#include "worker/protocol.hpp"

namespace pa {
namespace {

std::string source(const std::string& rel) { return std::string(PACHECK_SOURCE_DIR) + "/" + rel; }

TEST(Isolation, MisbehavingKernelsAreRecordedAndTheRunGoesOn) {
  const std::string report = (std::filesystem::temp_directory_path() / "pacheck_isolation_report.json").string();
  std::filesystem::remove(report);
  const std::string cmd = std::string("PACHECK_PYTHON=") + PACHECK_TEST_PYTHON + " " + PACHECK_BIN + " run --kernel " +
                          MISBEHAVING_PLUGIN + " --kernel py:" + source("adapters/tests/plugins/raises_heuristic.py") +
                          " --case " + source("testing/plugins/misbehaving_cases.json") +
                          " --kernel-timeout 3 --quiet --report " + report + " > /dev/null 2>&1";
  const int st = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(st)) << cmd;
  EXPECT_EQ(WEXITSTATUS(st), 1) << "a Fail record must give exit 1: " << cmd;
  const report::Report r = report::load_report(report);
  EXPECT_TRUE(r.complete);
  std::map<std::pair<std::string, std::string>, const report::Record*> by;
  for (const auto& rec : r.cases) by[{rec.path, rec.name}] = &rec;
  const auto expect = [&](const std::string& kernel, const std::string& name, const std::string& metric,
                          const std::string& text) {
    const auto it = by.find({kernel, name});
    ASSERT_NE(it, by.end()) << kernel << " / " << name << " has no record";
    EXPECT_EQ(to_string(it->second->status), std::string("Fail")) << kernel << " / " << name;
    EXPECT_EQ(it->second->metric, metric) << kernel << " / " << name << ": " << it->second->message;
    EXPECT_NE(it->second->message.find(text), std::string::npos) << kernel << " / " << name << ": " << it->second->message;
  };
  expect("segfaults_above_1000", "long_context", "crash", "SIGSEGV");
  expect("aborts_on_block32", "pages_of_32", "crash", "SIGABRT");
  expect("hangs_on_qlen2", "two_new_tokens", "timeout", "no answer within 3 s");
  // The adapter declares pages of 16 and q_len 1: inside that, every launch raises.
  for (const char* name : {"long_context", "plain"}) expect("raises_heuristic", name, "kernel_error", "get_heuristic_kernel");
  for (const char* name : {"pages_of_32", "two_new_tokens"}) {
    const auto it = by.find({"raises_heuristic", name});
    ASSERT_NE(it, by.end());
    EXPECT_EQ(to_string(it->second->status), std::string("NotSupported")) << name;
  }
  int ok = 0;
  for (const auto& rec : r.cases) {
    const bool misbehaves = rec.path == "raises_heuristic" || (rec.path == "segfaults_above_1000" && rec.name == "long_context") ||
                            (rec.path == "aborts_on_block32" && rec.name == "pages_of_32") ||
                            (rec.path == "hangs_on_qlen2" && rec.name == "two_new_tokens");
    if (!misbehaves) {
      EXPECT_EQ(to_string(rec.status), std::string("Ok")) << rec.path << " / " << rec.name << ": " << rec.message;
      ++ok;
    }
  }
  EXPECT_EQ(ok, 9);  // 3 C kernels x 4 cases, less the 3 misbehaving records
}

}  // namespace
}  // namespace pa

namespace pa {
namespace {

// Shrinking treats a crash like any other failure: the segfaulting shape shrinks to its first
// failing length, and the replay line names the plug-in.
TEST(Isolation, ACrashShrinksToItsSmallestShape) {
  const std::string out = (std::filesystem::temp_directory_path() / "pacheck_isolation_check.txt").string();
  const std::string cmd = std::string(PACHECK_BIN) + " check --kernel " + MISBEHAVING_PLUGIN +
                          ":segfaults_above_1000 --properties reference --seed 1 --cases 200 --no-capture > " + out +
                          " 2>&1";
  const int st = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 1) << cmd;
  std::ifstream f(out);
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("S=1 "), std::string::npos) << text;
  // One sequence just past the threshold: the generator's boundary lengths put the shrink on the
  // first of them above 1000 (1001, or the page-aligned 1023/1024) -- never a longer context.
  const size_t at = text.find("ctx=[");
  ASSERT_NE(at, std::string::npos) << text;
  const int ctx = std::atoi(text.c_str() + at + 5);
  EXPECT_GE(ctx, 1001) << text;
  EXPECT_LE(ctx, 1024) << text;
  EXPECT_NE(text.find("metric=crash"), std::string::npos) << text;
  EXPECT_NE(text.find("SIGSEGV"), std::string::npos) << text;
  EXPECT_NE(text.find(std::string("pacheck replay --kernel ") + MISBEHAVING_PLUGIN + ":segfaults_above_1000"),
            std::string::npos) << text;
}

// What a worker says of a kernel is what the kernel declares: every built-in declaration (the MLA
// layouts of ABI minor 4 included) crosses the protocol's capability JSON unchanged.
TEST(Isolation, EveryBuiltInDeclarationCrossesTheProtocolUnchanged) {
  const Registry builtins = builtin_kernels(Backend::host);
  for (const KernelPtr& k : builtins.all()) {
    const Capability& cap = k->info().capability;
    const Capability back = worker::capability_from_json(worker::capability_to_json(cap), "test");
    EXPECT_EQ(describe(back), describe(cap)) << k->name();
  }
}

}  // namespace
}  // namespace pa
