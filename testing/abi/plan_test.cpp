// The plan step (ABI minor 3) through the pacheck binary, as a plug-in author meets it (label
// unit): a kernel whose plan serves its batch passes `run` and `check`; each planted plan bug --
// a launch that trusts a plan made for another batch, a plan made without the dtypes, a plan read
// past the shorter batch it declares it serves (a graph's padded batch, on the host) -- fails
// `run` and `check --properties plan` with metric plan, in a worker and in process, and the
// replay line of the failure fails again.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace {

struct Ran {
  int rc = -1;
  std::string out;
};

Ran sh(const std::string& cmd) {
  Ran r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// A replay line as printed ("pacheck ..."), run with this build's binary.
std::string with_binary(const std::string& line) {
  EXPECT_EQ(line.rfind("pacheck ", 0), 0u) << line;
  return std::string(PACHECK_BIN) + line.substr(std::string("pacheck").size());
}

std::string replay_in(const std::string& out) {
  const size_t at = out.find("replay: pacheck ");
  if (at == std::string::npos) return "";
  const size_t end = out.find('\n', at);
  return out.substr(at + 8, end == std::string::npos ? std::string::npos : end - at - 8);
}

TEST(PlanStep, AKernelWhosePlanServesItsBatchPassesRunAndCheck) {
  for (const char* isolate : {"external", "never"}) {
    SCOPED_TRACE(isolate);
    const Ran run = sh(std::string(PACHECK_BIN) + " run --kernel " + PA_TK_PLAN_SO + " --isolate " + isolate +
                       " --suite ci --quiet --report " + ::testing::TempDir() + "plan_ok.json");
    EXPECT_EQ(run.rc, 0) << run.out;
    const Ran check = sh(std::string(PACHECK_BIN) + " check --kernel " + PA_TK_PLAN_SO + " --isolate " + isolate +
                         " --properties plan,reference --cases 40 --seed 11 --no-capture");
    EXPECT_EQ(check.rc, 0) << check.out;
    EXPECT_NE(check.out.find("plan        passed"), std::string::npos) << check.out;
  }
}

TEST(PlanStep, EachPlantedPlanBugFailsRunAndCheckWithMetricPlanAndItsReplayFailsAgain) {
  for (const char* so : {PA_TK_PLAN_SHAPE_BLIND_SO, PA_TK_PLAN_DTYPE_BLIND_SO, PA_TK_PLAN_PAST_BATCH_SO})
    for (const char* isolate : {"external", "never"}) {
      SCOPED_TRACE(std::string(so) + " --isolate " + isolate);
      const std::string report = ::testing::TempDir() + "plan_bug.json";
      const Ran run = sh(std::string(PACHECK_BIN) + " run --kernel " + so + " --isolate " + isolate +
                         " --suite ci --quiet --report " + report);
      EXPECT_EQ(run.rc, 1) << run.out;
      const nlohmann::json r = nlohmann::json::parse(std::ifstream(report));
      std::string replay;
      for (const auto& rec : r.at("cases"))
        if (rec.at("status") == "Fail") {
          EXPECT_EQ(rec.at("metric"), "plan") << rec.at("message");
          if (replay.empty()) replay = rec.at("replay").get<std::string>();
        }
      ASSERT_FALSE(replay.empty()) << "no failing record";
      const Ran again = sh(with_binary(replay) + " --isolate " + isolate);
      EXPECT_EQ(again.rc, 1) << replay << "\n" << again.out;
      EXPECT_NE(again.out.find("plan"), std::string::npos) << again.out;

      const Ran check = sh(std::string(PACHECK_BIN) + " check --kernel " + so + " --isolate " + isolate +
                           " --properties plan --cases 40 --seed 11 --no-capture");
      EXPECT_EQ(check.rc, 1) << check.out;
      EXPECT_NE(check.out.find("metric=plan"), std::string::npos) << check.out;
      const std::string line = replay_in(check.out);
      ASSERT_FALSE(line.empty()) << check.out;
      const Ran replayed = sh(with_binary(line) + " --isolate " + isolate);
      EXPECT_EQ(replayed.rc, 1) << line << "\n" << replayed.out;
      EXPECT_NE(replayed.out.find("metric=plan"), std::string::npos) << replayed.out;
    }
}

}  // namespace
