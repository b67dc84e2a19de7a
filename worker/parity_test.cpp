// One fault, one verdict, whatever the isolation mode: a launch crosses into a kernel through the
// same code in pacheck's process and in a worker (kernels/crossing.hpp), so a kernel that cannot run
// here is Skipped and a write past its output is a guard failure in both modes. Before the one
// crossing, a device-memory plug-in on a pacheck built without a GPU was Skipped in process but a
// Fail (kernel_error) in a worker, and a guard violation was `guard` in process but `kernel_error`
// in a worker. A write into an input is `input_written` in both.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "kernels/kernel.hpp"
#include "reports/report.hpp"

namespace pa {
namespace {

std::map<std::string, const report::Record*> by_path(const report::Report& r) {
  std::map<std::string, const report::Record*> m;
  for (const auto& rec : r.cases) m[rec.path] = &rec;
  return m;
}

// The binaries' paths as built, or (a binary carried to a GPU machine) from the environment.
std::string from_env(const char* name, const char* built) {
  const char* v = std::getenv(name);
  return v && *v ? v : built;
}

// `pacheck run ARGS --case <cases> --report <dir>/report.json` in a directory of its own; expects
// exit 1 (a Fail record) and returns the report.
report::Report run_cases(const std::string& dir_name, const std::string& args, const std::string& cases_json) {
  const auto dir = std::filesystem::temp_directory_path() / dir_name;
  std::filesystem::create_directories(dir);
  const std::string cases = (dir / "cases.json").string(), report = (dir / "report.json").string();
  std::ofstream(cases) << cases_json;
  const std::string cmd = from_env("PACHECK_BIN", PACHECK_BIN) + " run " + args + " --case " + cases +
                          " --quiet --report " + report + " > " + (dir / "log").string() + " 2>&1";
  const int st = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(st)) << cmd;
  EXPECT_EQ(WEXITSTATUS(st), 1) << "a Fail record must give exit 1: " << cmd;
  return report::load_report(report);
}

report::Report run(const std::string& isolate) {
  return run_cases("pacheck_parity_" + isolate, "--backend host --kernel " + std::string(PARITY_PLUGIN) + " --isolate " + isolate,
                   R"([{"name": "plain", "seed": 3, "num_seqs": 2, "num_q_heads": 4, "num_kv_heads": 1,
                        "head_size": 64, "block_size": 16, "context_lens": [17, 33], "kv_layout": "nhd"}])");
}

TEST(IsolationParity, TheSameFaultGetsTheSameVerdictInProcessAndInAWorker) {
  // device_memory_kernel is host code declaring device memory: only a pacheck that cannot give it
  // device memory may run it (a GPU build would hand it device pointers).
  if (gpu_available()) GTEST_SKIP() << "this pacheck has a GPU: the no-GPU verdict cannot be checked here";
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
    // A kernel that writes an input writes its own copy, and is caught by comparing it after.
    ASSERT_TRUE(recs.count("writes_k_cache"));
    const report::Record& w = *recs.at("writes_k_cache");
    EXPECT_EQ(to_string(w.status), std::string("Fail"));
    EXPECT_EQ(w.metric, "input_written") << w.message;
    EXPECT_NE(w.message.find("input 'k_cache'"), std::string::npos) << w.message;
    EXPECT_NE(w.message.find("at byte 5"), std::string::npos) << w.message;
    // Every output element the kernel owns must be written, the LSE's too: the poison shows.
    ASSERT_TRUE(recs.count("skips_one_output") && recs.count("skips_one_lse"));
    const report::Record& so = *recs.at("skips_one_output");
    EXPECT_EQ(to_string(so.status), std::string("Fail"));
    EXPECT_EQ(so.metric, "nan") << so.message;
    const report::Record& sl = *recs.at("skips_one_lse");
    EXPECT_EQ(to_string(sl.status), std::string("Fail"));
    EXPECT_EQ(sl.metric, "lse") << sl.message;
  }
}

// A supports() that crashes or hangs is that case's failure (crash / timeout), and the run goes on.
// It used to be answered "yes" and the launch that followed, in a fresh worker, was recorded Ok.
TEST(IsolationParity, ASupportsThatCrashesOrHangsIsThatCasesFailure) {
  const report::Report r = run_cases("pacheck_bad_supports", "--backend host --kernel " + std::string(BAD_SUPPORTS_PLUGIN) +
                                                                 " --kernel-timeout 2", R"([
    {"name": "long", "seed": 3, "num_q_heads": 4, "num_kv_heads": 1, "head_size": 64, "block_size": 16,
     "context_lens": [40], "kv_layout": "nhd"},
    {"name": "mtp", "seed": 4, "q_len": 2, "num_q_heads": 4, "num_kv_heads": 1, "head_size": 64, "block_size": 16,
     "context_lens": [20], "kv_layout": "nhd"},
    {"name": "short", "seed": 5, "num_q_heads": 4, "num_kv_heads": 1, "head_size": 64, "block_size": 16,
     "context_lens": [20], "kv_layout": "nhd"}])");
  std::map<std::pair<std::string, std::string>, const report::Record*> by;
  for (const auto& rec : r.cases) by[{rec.path, rec.name}] = &rec;
  const auto expect = [&](const char* kernel, const char* name, const char* status, const char* metric) {
    const auto it = by.find({kernel, name});
    ASSERT_NE(it, by.end()) << kernel << " / " << name;
    EXPECT_EQ(to_string(it->second->status), std::string(status)) << kernel << " / " << name << ": " << it->second->message;
    EXPECT_EQ(it->second->metric, metric) << kernel << " / " << name << ": " << it->second->message;
    if (*metric) {
      EXPECT_NE(it->second->message.find("supports()"), std::string::npos) << it->second->message;
    }
  };
  expect("supports_segfaults", "long", "Fail", "crash");
  expect("supports_segfaults", "mtp", "Ok", "");
  expect("supports_segfaults", "short", "Ok", "");
  expect("supports_hangs", "mtp", "Fail", "timeout");
  expect("supports_hangs", "long", "Ok", "");
  expect("supports_hangs", "short", "Ok", "");
}

// A sticky device fault ends the worker, not the run: the faulting case is a crash naming the
// fault, and the cases after it run in a fresh worker and pass. Before, the fault poisoned the
// worker's context and every later case in it failed. Built with a GPU backend; needs a GPU.
#if defined(STICKY_PLUGIN)
TEST(StickyFault, EndsTheWorkerNotTheRun) {
  std::string why;
  if (!gpu_available(&why)) GTEST_SKIP() << why;
  const report::Report r = run_cases("pacheck_sticky", "--backend gpu --kernel " + from_env("PACHECK_STICKY_PLUGIN", STICKY_PLUGIN) +
                                                          ":sticky_fault_at_777", R"([
    {"name": "faults", "seed": 1, "num_q_heads": 8, "num_kv_heads": 1, "head_size": 128, "block_size": 16,
     "context_lens": [777], "kv_layout": "nhd"},
    {"name": "after_1", "seed": 2, "num_q_heads": 8, "num_kv_heads": 1, "head_size": 128, "block_size": 16,
     "context_lens": [40], "kv_layout": "nhd"},
    {"name": "after_2", "seed": 3, "num_seqs": 2, "num_q_heads": 8, "num_kv_heads": 1, "head_size": 128,
     "block_size": 16, "context_lens": [33, 65], "kv_layout": "nhd"}])");
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

// A device kernel that writes its input is input_written, naming the buffer and the byte: in
// process (inputs made on the GPU, compared by the guard check's own launch) and in a worker (the
// inputs come from its memory file, copied back and compared there).
TEST(DeviceIntegrity, AKernelWritingItsInputIsCaughtInProcessAndInAWorker) {
  std::string why;
  if (!gpu_available(&why)) GTEST_SKIP() << why;
  for (const char* isolate : {"never", "external"}) {
    SCOPED_TRACE(std::string("--isolate ") + isolate);
    const report::Report r =
        run_cases(std::string("pacheck_writes_k_") + isolate,
                  "--backend gpu --isolate " + std::string(isolate) + " --kernel " +
                      from_env("PACHECK_STICKY_PLUGIN", STICKY_PLUGIN) + ":writes_k_cache_on_device",
                  R"([{"name": "plain", "seed": 5, "num_seqs": 2, "num_q_heads": 8, "num_kv_heads": 1, "head_size": 128,
                       "block_size": 16, "context_lens": [40, 70], "kv_layout": "nhd"}])");
    const auto recs = by_path(r);
    ASSERT_TRUE(recs.count("writes_k_cache_on_device"));
    const report::Record& w = *recs.at("writes_k_cache_on_device");
    EXPECT_EQ(w.metric, "input_written") << w.message;
    EXPECT_NE(w.message.find("input 'k_cache'"), std::string::npos) << w.message;
    EXPECT_NE(w.message.find("at byte 5"), std::string::npos) << w.message;
  }
}

// The rest of the integrity classes on the GPU: an output element left unwritten (pacheck's
// poison survives: metric nan, through run), a launch that differs after the first, and results
// cached by the q pointer (the repeat property, through check: other values land in the same
// pooled buffers), in process and in a worker.
TEST(DeviceIntegrity, UnwrittenOutputsLaterCallsAndCachedResultsAreCaught) {
  std::string why;
  if (!gpu_available(&why)) GTEST_SKIP() << why;
  const std::string plugin = from_env("PACHECK_STICKY_PLUGIN", STICKY_PLUGIN);
  for (const char* isolate : {"never", "external"}) {
    SCOPED_TRACE(std::string("--isolate ") + isolate);
    const report::Report r =
        run_cases(std::string("pacheck_skips_one_") + isolate,
                  "--backend gpu --isolate " + std::string(isolate) + " --kernel " + plugin + ":skips_one_output_on_device",
                  R"([{"name": "plain", "seed": 5, "num_seqs": 2, "num_q_heads": 8, "num_kv_heads": 1, "head_size": 128,
                       "block_size": 16, "context_lens": [40, 70], "kv_layout": "nhd"}])");
    const auto recs = by_path(r);
    ASSERT_TRUE(recs.count("skips_one_output_on_device"));
    EXPECT_EQ(recs.at("skips_one_output_on_device")->metric, "nan") << recs.at("skips_one_output_on_device")->message;
    for (const char* kernel : {"second_call_differs_on_device", "cached_by_pointer_on_device"}) {
      SCOPED_TRACE(kernel);
      const auto log = std::filesystem::temp_directory_path() / (std::string("pacheck_") + kernel + "_" + isolate + ".log");
      const std::string cmd = from_env("PACHECK_BIN", PACHECK_BIN) + " check --backend gpu --isolate " + isolate +
                              " --kernel " + plugin + ":" + kernel + " --properties repeat --cases 20 --seed 3 > " +
                              log.string() + " 2>&1";
      const int st = std::system(cmd.c_str());
      ASSERT_TRUE(WIFEXITED(st)) << cmd;
      EXPECT_EQ(WEXITSTATUS(st), 1) << "the repeat property must fail: " << cmd;
      std::ifstream in(log);
      const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      EXPECT_NE(text.find("FAILED"), std::string::npos) << text;
      EXPECT_NE(text.find("metric="), std::string::npos) << text;
      EXPECT_NE(text.find("--properties repeat"), std::string::npos) << text;
    }
  }
}

#endif

}  // namespace
}  // namespace pa
