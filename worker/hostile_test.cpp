// A hostile environment must not lose a run or blame the wrong thing (testing/plugins/
// hostile_plugins.cpp): a Ctrl-C to the terminal's process group, a kernel's helper process that
// keeps the worker's pipes open, a kernel that forks without exec, a nondeterministic kernel, text
// that is not UTF-8, a plug-in that takes a built-in's name or claims an impossible kernel count,
// a timeout that cannot apply in process, and a library named as a file of the current directory.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "reports/report.hpp"

namespace pa {
namespace {

namespace fs = std::filesystem;

struct Shell {
  int rc = -1;
  std::string out;
};

fs::path dir_of(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("pacheck_hostile_" + name);
  fs::create_directories(d);
  return d;
}

std::string cases_file(const fs::path& dir, const std::string& json) {
  const std::string f = (dir / "cases.json").string();
  std::ofstream(f) << json;
  return f;
}

const char* kTwoCases = R"([
  {"name": "first", "seed": 3, "num_q_heads": 4, "num_kv_heads": 1, "head_size": 64, "block_size": 16,
   "context_lens": [40], "kv_layout": "nhd"},
  {"name": "second", "seed": 4, "num_seqs": 2, "num_q_heads": 4, "num_kv_heads": 1, "head_size": 64,
   "block_size": 16, "context_lens": [17, 33], "kv_layout": "nhd"}])";

// Runs a shell command line in `cwd`, output captured.
Shell sh(const std::string& cmd, const fs::path& cwd) {
  const std::string log = (cwd / "out.log").string();
  const int st = std::system(("cd " + cwd.string() + " && " + cmd + " > " + log + " 2>&1").c_str());
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  return {WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), ss.str()};
}

std::map<std::string, report::Record> by_name(const std::string& report, const std::string& kernel) {
  std::map<std::string, report::Record> m;
  for (const auto& r : report::load_report(report).cases)
    if (r.path == kernel) m[r.name] = r;
  return m;
}

std::string kernel(const std::string& name) { return std::string(HOSTILE_PLUGIN) + ":" + name; }

// Waits (up to a minute: a loaded machine starts workers slowly) until slow_but_right has begun a
// launch, which it says by creating `marker`.
void wait_for_launch(const fs::path& marker) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(marker) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(fs::exists(marker)) << "no launch began within a minute";
}

// Ctrl-C reaches the terminal's whole foreground group. The case in flight in the worker finishes
// (the worker is in a group of its own), is recorded as what it is (Ok), and the exit is 130.
TEST(Hostile, ACtrlCToTheGroupLetsTheCaseInFlightFinishAndExits130) {
  const fs::path d = dir_of("sigint");
  const std::string cases = cases_file(d, kTwoCases), report = (d / "report.json").string();
  const fs::path marker = d / "launched";
  fs::remove(marker);
  ::setenv("HOSTILE_MARKER", marker.c_str(), 1);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);  // a terminal's foreground group: pacheck and whatever stays in its group
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execl(PACHECK_BIN, PACHECK_BIN, "run", "--backend", "host", "--kernel", kernel("slow_but_right").c_str(),
            "--case", cases.c_str(), "--quiet", "--report", report.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  wait_for_launch(marker);  // inside the first case's 1.5 s launch
  ::kill(-pid, SIGINT);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFEXITED(st)) << "SIGINT must not kill the run outright";
  EXPECT_EQ(WEXITSTATUS(st), 130);
  const auto recs = by_name(report, "slow_but_right");
  ASSERT_TRUE(recs.count("first")) << "the case in flight has no record";
  EXPECT_EQ(to_string(recs.at("first").status), std::string("Ok")) << recs.at("first").metric << ": " << recs.at("first").message;
}

// SIGTERM (a CI time limit) stops a check after the property in flight: a summary, exit 130.
TEST(Hostile, ACheckStopsOnSigtermWithASummary) {
  const fs::path d = dir_of("check_term");
  const std::string log = (d / "check.log").string();
  const fs::path marker = d / "launched";
  fs::remove(marker);
  ::setenv("HOSTILE_MARKER", marker.c_str(), 1);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl(PACHECK_BIN, PACHECK_BIN, "check", "--backend", "host", "--kernel", kernel("slow_but_right").c_str(),
            "--cases", "3", "--seed", "1", "--no-capture", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  wait_for_launch(marker);
  ::kill(pid, SIGTERM);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFEXITED(st)) << "SIGTERM must not kill the check outright";
  EXPECT_EQ(WEXITSTATUS(st), 130);
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_NE(ss.str().find("check interrupted"), std::string::npos) << ss.str();
}

// A worker that dies while a helper it started still holds its pipes is a crash at once, not a
// timeout after --kernel-timeout.
TEST(Hostile, AWorkerThatDiesBehindAHelperIsACrashNotATimeout) {
  const fs::path d = dir_of("helper");
  const std::string cases = cases_file(d, kTwoCases), report = (d / "report.json").string();
  const auto t0 = std::chrono::steady_clock::now();
  const Shell r = sh(std::string(PACHECK_BIN) + " run --backend host --kernel " + kernel("helper_then_crash") +
                       " --kernel-timeout 20 --case " + cases + " --quiet --report " + report, d);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_LT(s, 15.0) << "waited for the timeout instead of seeing the worker die";
  for (const auto& [name, rec] : by_name(report, "helper_then_crash")) {
    EXPECT_EQ(rec.metric, "crash") << name << ": " << rec.message;
    EXPECT_NE(rec.message.find("SIGSEGV"), std::string::npos) << rec.message;
  }
}

// A kernel that forks without exec: its copy must not answer in the worker's name, so every case
// is judged on its own answer.
TEST(Hostile, AKernelThatForksDoesNotShiftTheAnswers) {
  const fs::path d = dir_of("fork");
  const std::string cases = cases_file(d, kTwoCases), report = (d / "report.json").string();
  const Shell r = sh(std::string(PACHECK_BIN) + " run --backend host --kernel " + kernel("forks_and_returns") +
                       " --kernel-timeout 10 --case " + cases + " --quiet --report " + report, d);
  EXPECT_EQ(r.rc, 0) << r.out;
  const auto recs = by_name(report, "forks_and_returns");
  EXPECT_EQ(recs.size(), 2u);
  for (const auto& [name, rec] : recs) EXPECT_EQ(to_string(rec.status), std::string("Ok")) << name << ": " << rec.message;
}

// A kernel whose verdict flips between identical runs says so, so its replay line is not trusted blindly.
TEST(Hostile, ANondeterministicFailureSaysSo) {
  const fs::path d = dir_of("flaky");
  const std::string cases = cases_file(d, kTwoCases), report = (d / "report.json").string();
  const Shell r = sh(std::string(PACHECK_BIN) + " run --backend host --kernel " + kernel("flaky") + " --isolate never --case " +
                       cases + " --quiet --report " + report, d);
  EXPECT_EQ(r.rc, 1) << r.out;
  int noted = 0;
  for (const auto& [name, rec] : by_name(report, "flaky"))
    if (rec.status == Status::Fail) noted += rec.message.find("nondeterministic") != std::string::npos;
  EXPECT_EQ(noted, 1) << r.out;
}

// Text from a plug-in that is not UTF-8 is replaced, not a crash of the worker.
TEST(Hostile, TextThatIsNotUtf8IsNoCrash) {
  const fs::path d = dir_of("utf8");
  const std::string cases = cases_file(d, kTwoCases), report = (d / "report.json").string();
  const Shell r = sh(std::string(PACHECK_BIN) + " run --backend host --kernel " + kernel("bad_utf8") + " --case " + cases +
                       " --quiet --report " + report, d);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(by_name(report, "bad_utf8").size(), 2u);
}

// Names and counts are the plug-in's word: checked, with exit 2 naming the problem.
TEST(Hostile, APluginCannotTakeABuiltinsNameOrClaimAnyCount) {
  const fs::path d = dir_of("names");
  const Shell v1 = sh(std::string(PACHECK_BIN) + " kernels --backend host --kernel " + NAMED_V1_PLUGIN, d);
  EXPECT_EQ(v1.rc, 2) << v1.out;
  EXPECT_NE(v1.out.find("built-in"), std::string::npos) << v1.out;
  const Shell many = sh(std::string(PACHECK_BIN) + " kernels --backend host --isolate never --kernel " + MANY_PLUGIN, d);
  EXPECT_EQ(many.rc, 2) << many.out;
  EXPECT_NE(many.out.find("at most"), std::string::npos) << many.out;
  const Shell timeout = sh(std::string(PACHECK_BIN) + " kernels --backend host --isolate never --kernel-timeout 3 --kernel " +
                             HOSTILE_PLUGIN, d);
  EXPECT_EQ(timeout.rc, 2) << timeout.out;
  EXPECT_NE(timeout.out.find("--isolate never"), std::string::npos) << timeout.out;
}

// `--kernel libmine.so` names a file of the current directory, as the README writes it.
TEST(Hostile, ALibraryInTheCurrentDirectoryLoadsByItsBareName) {
  const fs::path d = dir_of("cwd");
  fs::copy_file(HOSTILE_PLUGIN, d / "libmine.so", fs::copy_options::overwrite_existing);
  for (const char* isolate : {"never", "external"}) {
    const Shell r = sh(std::string(PACHECK_BIN) + " kernels --backend host --isolate " + isolate + " --kernel libmine.so", d);
    EXPECT_EQ(r.rc, 0) << isolate << ": " << r.out;
    EXPECT_NE(r.out.find("slow_but_right"), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace pa
