// The pacheck program end to end (it runs the built binary, PACHECK_BIN) and its pieces in process:
// suites, path lists, report schema, determinism, diff gating, exit codes, crash recovery.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <map>
#include <set>

#include <gtest/gtest.h>

#include "dispatch/select.hpp"
#include "reports/report.hpp"
#include "reports/testing/schema_validator.hpp"
#include "tools/commands.hpp"
#include "tools/suites.hpp"

namespace pa::tools {
namespace {

using nlohmann::json;

// Per-process names: ctest runs each test as its own process, possibly in parallel.
std::string tmp(const std::string& name) {
  return ::testing::TempDir() + "/pacheck_cli_" + std::to_string(::getpid()) + "_" + name;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

struct Result {
  int rc = -1;
  std::string out;  // stdout and stderr together
};

// Runs `pacheck ARGS` through the shell; returns its exit code and output.
Result pacheck(const std::string& args) {
  const std::string out = tmp("out.txt");
  const std::string cmd = std::string(PACHECK_BIN) + " " + args + " >" + out + " 2>&1";
  const int st = std::system(cmd.c_str());
  Result r;
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.out = slurp(out);
  return r;
}

// A report with the parts that legitimately differ between runs (timings, timestamps) removed.
json without_timings(json j) {
  j["context"].erase("started_utc");
  j["summary"].erase("elapsed_ms");
  for (json& c : j["cases"]) c.erase("timings");
  return j;
}

TEST(Suites, AreValidDeterministicAndReseedable) {
  for (const std::string& name : suite_names()) {
    if (name == "nightly") continue;  // drawn like ci; checked for size below without the cost
    const auto a = suite(name, 3), b = suite(name, 3), c = suite(name, 4);
    ASSERT_EQ(a.size(), b.size());
    bool differs = a.size() != c.size();
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(validate(a[i]).empty()) << name << " " << a[i].name << ": " << validate(a[i]).front();
      EXPECT_EQ(vars(a[i]), vars(b[i])) << name << " case " << i;
      if (i < c.size()) differs |= vars(a[i]) != vars(c[i]);
    }
    EXPECT_TRUE(differs) << name << ": --seed must re-draw the suite";
  }
  const auto smoke = smoke_suite(1);
  EXPECT_GE(smoke.size(), 20u);
  EXPECT_LE(smoke.size(), 60u);
  EXPECT_GT(ci_suite(1).size(), smoke.size());
  EXPECT_GT(nightly_suite(1).size(), 5 * ci_suite(1).size() / 2);
  EXPECT_THROW(suite("weekly", 1), InputError);
}

// Every KV dtype a built-in kernel declares has a case that kernel takes, in every suite and for
// every device model: fp8_e5m2 (v1) included, e4m3 in the device's own flavour.
TEST(Suites, DrawEveryDeclaredKvDtypeOfEveryKernel) {
  const std::vector<KernelPtr> twins = builtin_kernels(Backend::host).all();
  for (const std::string& name : suite_names())
    for (const Device& dev : {device_mi300x(), device_mi355x()}) {
      std::map<std::string, std::set<DType>> taken;
      for (const Case& c : suite(name, kDefaultSuiteSeed, dev.native_fp8))
        for (const KernelPtr& k : twins)
          if (!k->decline_reason(c, dev)) taken[k->name()].insert(c.kv_dtype);
      for (const KernelPtr& k : twins)
        for (int t = 0; t < kDTypeCount; ++t) {
          const DType kv = DType(t);
          if (kv == DType::fp32 || !(k->info().capability.kv_dtypes & bit(kv))) continue;
          if (is_e4m3(kv) && kv != dev.native_fp8) continue;  // refused on this device on purpose
          EXPECT_TRUE(taken[k->name()].count(kv)) << name << " on " << dev.name << ": no " << to_string(kv)
                                                  << " case that " << k->name() << " takes";
        }
      EXPECT_TRUE(taken["v1"].count(DType::fp8_e5m2)) << name << " on " << dev.name;
    }
}

TEST(Suites, SmokeCoversEveryPathAndARefusalOnEveryDeviceModel) {
  for (const Device& dev : {device_mi300x(), device_mi355x(), device_h100()}) {
    const std::vector<KernelPtr> twins = builtin_kernels(Backend::host).all();
    std::map<std::string, int> supported, chosen;
    int refused = 0, fp8_run = 0;
    for (const Case& c : smoke_suite(kDefaultSuiteSeed, dev.native_fp8)) {
      for (const KernelPtr& k : twins) supported[k->name()] += !k->decline_reason(c, dev).has_value();
      const Decision d = select_path(dev, c, twins);
      if (d.path) ++chosen[*d.path];
      else ++refused;
      fp8_run += d.path && is_fp8(c.kv_dtype);
    }
    for (const char* p : {"v1", "hip", "asm"}) {
      EXPECT_GE(supported[p], 3) << dev.name << " " << p;
      EXPECT_GE(chosen[p], 1) << dev.name << ": the dispatcher never picks " << p << " in smoke";
    }
    EXPECT_GE(refused, 2) << dev.name;
    EXPECT_GE(fp8_run, 4) << dev.name << ": fp8 cases must use the device's native flavour";
  }
}

TEST(Paths, ListsSplitAndNameTheBadEntry) {
  EXPECT_EQ(split_list("v1,asm"), (std::vector<std::string>{"v1", "asm"}));
  EXPECT_THROW(split_list(""), InputError);
  EXPECT_THROW(split_list("v1,,asm"), InputError);
}

// ---- the testbed (testbed/testbed.cpp), in process ----------------------------------------

RunOptions host_options() {
  RunOptions o;
  o.kernels = builtin_kernels(Backend::host).all();
  o.device = device_mi300x();
  return o;
}

TEST(Testbed, JudgesEveryRequestedPathAndTheDispatchersChoice) {
  Case c;  // nhd bf16: only v1 supports it
  c.num_q_heads = 8;
  c.num_kv_heads = 2;
  c.context_lens = {33};
  const CaseRecord rec = run_case(c, host_options());
  ASSERT_EQ(rec.paths.size(), builtin_kernels(Backend::host).all().size() + 1);  // every built-in path, then "auto"
  EXPECT_EQ(rec.paths[0].path, "v1");
  EXPECT_EQ(rec.paths[0].status, Status::Ok) << rec.paths[0].message;
  EXPECT_GT(rec.paths[0].tolerance.atol, 0);
  EXPECT_FALSE(rec.paths[0].tolerance.model.empty());
  EXPECT_EQ(rec.paths[0].metrics.count, int64_t(c.num_seqs) * c.q_len * c.num_q_heads * c.head_size);
  EXPECT_EQ(rec.paths[1].status, Status::NotSupported);
  EXPECT_NE(rec.paths[1].message.find("kv_layout"), std::string::npos) << rec.paths[1].message;
  EXPECT_EQ(rec.paths.back().path, "auto");
  ASSERT_TRUE(rec.paths.back().ran.has_value());
  EXPECT_EQ(*rec.paths.back().ran, "v1");
  EXPECT_EQ(rec.paths.back().status, Status::Ok);
  EXPECT_NE(rec.input_hash, 0u);
  EXPECT_EQ(rec.slug, slug(c));
}

TEST(Testbed, RefusalsInvalidCasesAndMissingBackends) {
  Case hnd;  // hnd: only unified takes it, and not with an fp8_e5m2 cache
  hnd.kv_layout = KvLayout::hnd;
  hnd.kv_dtype = DType::fp8_e5m2;
  CaseRecord rec = run_case(hnd, host_options());
  for (const PathRecord& p : rec.paths) EXPECT_EQ(p.status, Status::NotSupported) << p.path;
  EXPECT_NE(rec.paths.back().message.find("no path supports this case"), std::string::npos) << rec.paths.back().message;

  Case bad;
  bad.block_size = 0;  // vars() would divide by it: the testbed must not
  bad.num_kv_heads = 3;
  rec = run_case(bad, host_options());
  ASSERT_EQ(rec.paths.size(), builtin_kernels(Backend::host).all().size() + 1);
  for (const PathRecord& p : rec.paths) {
    EXPECT_EQ(p.status, Status::Fail);
    EXPECT_EQ(p.metric, "validation");
    EXPECT_NE(p.message.find("block_size"), std::string::npos) << p.message;
    EXPECT_NE(p.message.find("num_kv_heads"), std::string::npos) << p.message;
  }

  // A device kernel on a machine without a GPU is Skipped, never run or failed: take a host
  // descriptor, declare it device memory, and register it the way a plug-in would be.
  if (!gpu_available()) {
    pacheck_kernel dev_twin = *host_twin_descriptors()[0];
    dev_twin.memory = PACHECK_MEMORY_DEVICE;
    dev_twin.name = "v1_on_device";
    RunOptions gpu = host_options();
    gpu.kernels = {std::make_shared<AbiKernel>(&dev_twin, "test")};
    gpu.dispatcher = false;
    rec = run_case(Case{}, gpu);
    ASSERT_EQ(rec.paths.size(), 1u);
    EXPECT_EQ(rec.paths[0].status, Status::Skipped);
    EXPECT_FALSE(rec.paths[0].message.empty());
  }
}

TEST(Testbed, ReplayLineSurvivesTheShell) {
  Case c;
  c.name = "it's quoted";
  c.context_lens = {5};
  const std::string line = replay_line(c);
  ASSERT_EQ(line.rfind("pacheck replay --case '", 0), 0u) << line;
  const std::string out = tmp("replay_line.txt");
  const int st = std::system((std::string(PACHECK_BIN) + line.substr(std::string("pacheck").size()) +
                              " --backend host >" + out + " 2>&1").c_str());
  EXPECT_EQ(WEXITSTATUS(st), 0) << slurp(out);
  EXPECT_NE(slurp(out).find("(it's quoted)"), std::string::npos) << slurp(out);
}

TEST(Cli, HelpForTheProgramAndEverySubcommand) {
  EXPECT_EQ(pacheck("--help").rc, 0);
  for (const char* sub : {"run", "replay", "diff", "cases", "fixtures", "kernels", "check", "mutate", "bench", "merge",
                          "report", "worker"}) {
    const Result r = pacheck(std::string(sub) + " --help");
    EXPECT_EQ(r.rc, 0) << sub;
    EXPECT_NE(r.out.find(std::string("Usage: pacheck ") + sub), std::string::npos) << r.out;
  }
  EXPECT_EQ(pacheck("frobnicate").rc, 2) << "an unknown subcommand is a usage error";
}

TEST(Cli, UsageAndInputErrorsExitTwoAndNameTheCulprit) {
  Result r = pacheck("run --bogus-flag");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("--bogus-flag"), std::string::npos) << r.out;
  r = pacheck("run --backend cuda");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("cuda"), std::string::npos) << r.out;
  r = pacheck("run --suite weekly");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("weekly"), std::string::npos) << r.out;
  r = pacheck("run --seed -3");
  EXPECT_EQ(r.rc, 2);

  const std::string bad = tmp("bad_case.json");
  std::ofstream(bad) << R"([{"num_seqs": 1, "context_lens": [64]}, {"num_seqs": 1, "context_lens": [64], "head_sz": 128}])";
  r = pacheck("run --case " + bad + " --report " + tmp("unused.json"));
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find(bad), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("head_sz"), std::string::npos) << r.out;
  std::ofstream(bad) << R"({"num_seqs": 2, "context_lens": [64]})";  // invalid: one length for two seqs
  r = pacheck("run --case " + bad);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("context_lens"), std::string::npos) << r.out;
  EXPECT_EQ(pacheck("run --case " + tmp("missing.json")).rc, 2);
  EXPECT_EQ(pacheck("diff " + tmp("missing.json")).rc, 2);
}

TEST(Cli, SmokeReportOnTheHostValidatesAgainstTheSchema) {
  const std::string rep = tmp("smoke.json");
  std::remove(rep.c_str());
  const Result r = pacheck("run --suite smoke --backend host --quiet --report " + rep);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find(" passed, 0 failed"), std::string::npos) << r.out;
  const json doc = json::parse(slurp(rep));
  const json schema = json::parse(slurp(PACHECK_SCHEMA_FILE));
  const auto errs = report::validate_schema(schema, doc);
  EXPECT_TRUE(errs.empty()) << errs.size() << " violations, first: " << (errs.empty() ? "" : errs.front());
  EXPECT_EQ(doc["context"]["backend"], "host");
  EXPECT_EQ(doc["summary"]["cases"].get<size_t>(), smoke_suite(kDefaultSuiteSeed).size());
  EXPECT_EQ(doc["summary"]["records"].get<size_t>(), doc["cases"].size());
  std::ifstream partial(rep + ".partial");
  EXPECT_FALSE(partial.good()) << "a finished run leaves no .partial";
}

// Two same-seed correctness runs agree on a loaded machine: a CPU hog beside the second run makes
// it slower, and diff (which gates correctness records on accuracy, not time) still exits 0.
TEST(Cli, DiffOfSameSeedRunsIsCleanOnALoadedMachine) {
  const std::string a = tmp("quiet_a.json"), b = tmp("loaded_b.json");
  const std::string args = "run --suite smoke --seed 21 --backend host --quiet --report ";
  ASSERT_EQ(pacheck(args + a).rc, 0);
  std::vector<pid_t> hogs;
  for (int i = 0; i < 2; ++i) {  // one busy process per core of the CI machine
    const pid_t pid = fork();
    if (pid == 0) {
      volatile uint64_t x = 0;
      for (;;) x = x * 6364136223846793005ull + 1;
    }
    hogs.push_back(pid);
  }
  const int rc = pacheck(args + b).rc;
  for (pid_t pid : hogs) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  ASSERT_EQ(rc, 0);
  const Result r = pacheck("diff " + a + " " + b);
  EXPECT_EQ(r.rc, 0) << r.out;
}

// The line a failed metamorphic, writer or dispatcher property prints -- `pacheck check --case
// '<json>' --properties P` -- runs that check on that case (here on correct kernels: it passes).
TEST(Cli, CheckRunsOnePropertyOnOneCase) {
  const std::string c = R"({"num_seqs":1,"context_lens":[40],"kv_dtype":"int8","kv_scale":"per_tensor","num_q_heads":4,"num_kv_heads":2,"head_size":64})";
  const Result r = pacheck("check --paths v1 --properties kv_scale,writer,dispatcher --no-capture --case '" + c + "'");
  EXPECT_EQ(r.rc, 0) << r.out;
  for (const char* p : {"kv_scale", "writer", "dispatcher"}) EXPECT_NE(r.out.find(p), std::string::npos) << r.out;
  EXPECT_EQ(pacheck("check --paths v1 --case '{\"num_seqs\":0}'").rc, 2);
}

// bench --harness times the harness itself: cases/s and the wall time by part.
TEST(Cli, BenchHarnessPrintsThroughputAndTheSplit) {
  const Result r = pacheck("bench --harness smoke --backend host -j 2");
  EXPECT_EQ(r.rc, 0) << r.out;
  for (const char* part : {"cases/s", "inputs (generate + pack)", "fp64 oracle", "kernels under test"})
    EXPECT_NE(r.out.find(part), std::string::npos) << r.out;
  EXPECT_EQ(pacheck("bench --harness weekly --backend host").rc, 2);
}

// check --shard i/n: each shard draws its own share of the cases from a seed of its own, derived
// from the shared --seed, so the shards of one check are different and each is reproducible.
TEST(Cli, CheckShardsDrawDifferentReproducibleCases) {
  const std::string args = "check --paths v1 --properties reference --cases 20 --seed 5 --no-capture";
  const Result a = pacheck(args + " --shard 0/2"), b = pacheck(args + " --shard 1/2"), a2 = pacheck(args + " --shard 0/2");
  ASSERT_EQ(a.rc, 0) << a.out;
  ASSERT_EQ(b.rc, 0) << b.out;
  const auto seed_line = [](const std::string& out) { return out.substr(0, out.find('\n')); };
  EXPECT_NE(seed_line(a.out), seed_line(b.out));
  EXPECT_EQ(seed_line(a.out), seed_line(a2.out));
  EXPECT_NE(a.out.find("10 cases per property"), std::string::npos) << a.out;
  EXPECT_EQ(pacheck(args + " --shard 2/2").rc, 2);
  EXPECT_EQ(pacheck("check --paths v1 --shard 0/2").rc, 2) << "a shard without --seed";
}

// -j N runs cases on N threads; the report is the -j 1 report, record for record and in order
// (timings apart), plug-ins behind a worker included.
TEST(Cli, JobsChangeNothingButTheTime) {
  const std::string one = tmp("jobs1.json"), four = tmp("jobs4.json");
  const std::string args = "run --suite smoke --seed 9 --backend host --quiet";
  ASSERT_EQ(pacheck(args + " --report " + one).rc, 0);
  ASSERT_EQ(pacheck(args + " -j 4 --report " + four).rc, 0);
  json a = without_timings(json::parse(slurp(one))), b = without_timings(json::parse(slurp(four)));
  ASSERT_GT(a["cases"].size(), 10u);
  EXPECT_EQ(a["cases"], b["cases"]);
  EXPECT_EQ(a["summary"], b["summary"]);
  EXPECT_EQ(pacheck("run --suite smoke --jobs 0 --report " + four).rc, 2);
}

// Shards of a run merge back into the unsharded run, record for record (timings apart).
TEST(Cli, MergedShardsEqualTheUnshardedRun) {
  const std::string whole = tmp("whole.json"), merged = tmp("merged.json");
  const std::string args = "run --suite smoke --seed 5 --backend host --quiet";
  ASSERT_EQ(pacheck(args + " --report " + whole).rc, 0);
  std::string shards;
  for (int i = 0; i < 4; ++i) {
    const std::string s = tmp("shard" + std::to_string(i) + ".json");
    ASSERT_EQ(pacheck(args + " --shard " + std::to_string(i) + "/4 --report " + s).rc, 0);
    const json js = json::parse(slurp(s));
    EXPECT_EQ(js["context"]["shard"], std::to_string(i) + "/4");
    EXPECT_LT(js["cases"].size(), json::parse(slurp(whole))["cases"].size());
    shards += " " + s;
  }
  const Result r = pacheck("merge" + shards + " -o " + merged);
  ASSERT_EQ(r.rc, 0) << r.out;
  json a = without_timings(json::parse(slurp(whole))), b = without_timings(json::parse(slurp(merged)));
  for (json* j : {&a, &b}) (*j)["context"].erase("shard");
  EXPECT_EQ(a["cases"], b["cases"]);
  EXPECT_EQ(a["summary"], b["summary"]);
  EXPECT_EQ(a["context"], b["context"]);
  // A shard given twice is an input error naming it, not a silently doubled report.
  const Result twice = pacheck("merge " + tmp("shard0.json") + " " + tmp("shard0.json") + " -o " + merged);
  EXPECT_EQ(twice.rc, 2) << twice.out;
  EXPECT_NE(twice.out.find("shard 0/4 is given twice"), std::string::npos) << twice.out;
  // A missing shard is named, not merged into a report that silently lacks its cases.
  const Result three = pacheck("merge " + tmp("shard0.json") + " " + tmp("shard1.json") + " " + tmp("shard3.json") + " -o " + merged);
  EXPECT_EQ(three.rc, 2) << three.out;
  EXPECT_NE(three.out.find("shard 2/4 missing"), std::string::npos) << three.out;
  EXPECT_EQ(pacheck("run --suite smoke --shard 4/4 --report " + merged).rc, 2);
}

TEST(Cli, SameSeedSameReportAndDiffGatesOnAFailure) {
  const std::string a = tmp("seed_a.json"), b = tmp("seed_b.json"), broken = tmp("seed_broken.json");
  const std::string args = "run --suite smoke --seed 11 --backend host --quiet --paths v1,asm --report ";
  ASSERT_NE(pacheck(args + a).rc, 2);
  ASSERT_NE(pacheck(args + b).rc, 2);
  const json ja = json::parse(slurp(a)), jb = json::parse(slurp(b));
  EXPECT_EQ(without_timings(ja), without_timings(jb)) << "reruns with one seed must match";
  EXPECT_EQ(ja["context"]["seed"], 11);
  ASSERT_NE(pacheck("run --suite smoke --seed 12 --backend host --quiet --paths v1,asm --report " + broken).rc, 2);
  EXPECT_NE(without_timings(ja), without_timings(json::parse(slurp(broken))))
      << "(sanity) another seed gives another report";

  Result r = pacheck("diff " + a + " " + b + " --threshold timing=off");
  EXPECT_EQ(r.rc, 0) << r.out;

  json jbroken = jb;
  std::string victim;
  for (json& rec : jbroken["cases"])
    if (rec["status"] == "Ok" && rec["path"] == "v1") {
      rec["status"] = "Fail";
      rec["metric"] = "outside_tolerance";
      rec["message"] = "made to fail by the test";
      victim = rec["case"]["slug"].get<std::string>();
      break;
    }
  ASSERT_FALSE(victim.empty());
  // The summary moves with the record: a report whose summary contradicts its records is refused.
  jbroken["summary"]["Ok"] = jbroken["summary"]["Ok"].get<int>() - 1;
  jbroken["summary"]["Fail"] = jbroken["summary"]["Fail"].get<int>() + 1;
  std::ofstream(broken) << jbroken.dump();
  r = pacheck("diff " + a + " " + broken + " --threshold timing=off");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("newly failing"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(victim + " v1 host"), std::string::npos) << r.out;
  EXPECT_EQ(pacheck("diff " + a + " " + b + " --threshold bogus=1").rc, 2);
}

TEST(Cli, ReplayFromJsonFlagsAndReportEntry) {
  const Case c = smoke_suite(kDefaultSuiteSeed).front();
  const std::string rep = tmp("replay_src.json");
  ASSERT_NE(pacheck("run --suite smoke --backend host --quiet --paths v1 --report " + rep).rc, 2);
  Result r = pacheck("replay --backend host --case '" + to_json(c).dump() + "'");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("v1    Ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("max_err_norm="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(slug(c)), std::string::npos) << r.out;
  r = pacheck("replay --backend host --report " + rep + " --index 0");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find(slug(c)), std::string::npos) << r.out;
  r = pacheck("replay --backend host --seed 9 --num_seqs 2 --context_lens 17,33 --kv_layout shuffled --num_q_heads 8");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("hip   Ok"), std::string::npos) << r.out;
  EXPECT_EQ(pacheck("replay --backend host --head_sz 3").rc, 2);
  EXPECT_EQ(pacheck("replay --report " + rep + " --index 999").rc, 2);
}

TEST(Cli, CasesListsAndDescribes) {
  Result r = pacheck("cases --suite smoke");
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find(slug(smoke_suite(kDefaultSuiteSeed).back())), std::string::npos) << r.out;
  r = pacheck("cases --describe smoke/refuse-hnd");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("no path supports this case"), std::string::npos) << r.out;
  EXPECT_EQ(pacheck("cases --describe nosuchcase").rc, 2);
}

// `cases --json` is what programs driving pacheck read (python/pacheck_pytest): every case of the
// suite, in order, with a JSON that parses back to the same case and the replay line.
TEST(Cli, CasesListsAsJson) {
  const std::string out = tmp("cases.json");
  ASSERT_EQ(std::system((std::string(PACHECK_BIN) + " cases --suite smoke --json >" + out).c_str()), 0);
  const json list = json::parse(slurp(out));
  const std::vector<Case> smoke = smoke_suite(kDefaultSuiteSeed);
  ASSERT_EQ(list.size(), smoke.size());
  for (size_t i = 0; i < smoke.size(); ++i) {
    EXPECT_EQ(list[i]["index"], i);
    EXPECT_EQ(list[i]["slug"], slug(smoke[i]));
    EXPECT_EQ(list[i]["name"], smoke[i].name);
    EXPECT_EQ(slug(case_from_json(list[i]["case"])), slug(smoke[i]));
    EXPECT_EQ(list[i]["replay"], replay_line(smoke[i]));
  }
  const Result both = pacheck("cases --json --describe 0");
  EXPECT_EQ(both.rc, 2) << both.out;
  EXPECT_NE(both.out.find("--describe 0"), std::string::npos) << both.out;
}

// Starts `pacheck run` on the (long) ci suite, waits until its .partial holds `lines` lines, then
// sends `sig`. Returns the exit status.
int interrupt_run(const std::string& report, int sig, size_t lines) {
  std::remove((report + ".partial").c_str());
  const pid_t pid = fork();
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execl(PACHECK_BIN, PACHECK_BIN, "run", "--suite", "ci", "--backend", "host", "--quiet", "--report", report.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string text = slurp(report + ".partial");
    if (size_t(std::count(text.begin(), text.end(), '\n')) >= lines) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, sig);
  int st = 0;
  waitpid(pid, &st, 0);
  return st;
}

TEST(Cli, PartialFileOfAKilledRunIsLoadable) {
  const std::string rep = tmp("killed.json");
  std::remove(rep.c_str());
  const int st = interrupt_run(rep, SIGKILL, 1 + 8);  // context + at least 8 records (whole cases are written)
  ASSERT_TRUE(WIFSIGNALED(st)) << "the run finished before it could be killed";
  std::ifstream final_report(rep);
  EXPECT_FALSE(final_report.good()) << "a killed run must not leave a final report";
  const report::Report part = report::load_report(rep + ".partial");
  EXPECT_FALSE(part.complete);
  EXPECT_GE(part.cases.size(), 8u);
  EXPECT_EQ(part.context.suite, "ci");
  EXPECT_EQ(part.summary.records, int64_t(part.cases.size()));
}

// SIGTERM (a CI time limit) is handled like SIGINT: the final report is written, exit 130.
TEST(Cli, SigtermStopsAfterTheCurrentCaseAndWritesTheReport) {
  const std::string rep = tmp("sigterm.json");
  std::remove(rep.c_str());
  const int st = interrupt_run(rep, SIGTERM, 1 + 4);
  ASSERT_TRUE(WIFEXITED(st)) << "SIGTERM must not kill the run outright";
  EXPECT_EQ(WEXITSTATUS(st), kExitInterrupted);
  const report::Report r = report::load_report(rep);
  EXPECT_FALSE(r.complete) << "written, and marked incomplete: merge and diff refuse it";
  EXPECT_TRUE(r.summary.interrupted);
  EXPECT_GE(r.cases.size(), 4u);
}

// A case the host cannot hold is Skipped naming the bytes (never a kernel's Fail); asked for
// explicitly it is an input error.
TEST(Cli, ACaseTooLargeForTheHostIsSkippedNamingTheBytes) {
  const std::string c = tmp("huge.json"), rep = tmp("huge_report.json");
  std::ofstream(c) << R"({"num_seqs": 64, "num_q_heads": 64, "num_kv_heads": 8, "head_size": 128, "kv_layout": "nhd",
                          "context_lens": [)" << [] {
    std::string s;
    for (int i = 0; i < 64; ++i) s += (i ? "," : "") + std::string("2000000");
    return s;
  }() << "]}";
  const Result r = pacheck("run --case " + c + " --backend host --quiet --report " + rep);
  EXPECT_EQ(r.rc, 0) << r.out;
  const report::Report rp = report::load_report(rep);
  int skipped = 0;
  for (const auto& rec : rp.cases) {
    EXPECT_NE(rec.status, Status::Fail) << rec.path << ": " << rec.message;
    if (rec.status == Status::Skipped) {
      ++skipped;
      EXPECT_NE(rec.message.find("bytes of host memory"), std::string::npos) << rec.message;
    }
  }
  EXPECT_GE(skipped, 1);
  const Result replay = pacheck("replay --case " + c);
  EXPECT_EQ(replay.rc, 2) << replay.out;
  EXPECT_NE(replay.out.find("bytes are available"), std::string::npos) << replay.out;
}

TEST(Cli, SigintStopsAfterTheCurrentCaseAndWritesTheReport) {
  const std::string rep = tmp("sigint.json");
  std::remove(rep.c_str());
  const int st = interrupt_run(rep, SIGINT, 1 + 4);
  ASSERT_TRUE(WIFEXITED(st)) << "SIGINT must not kill the run outright";
  EXPECT_TRUE(WEXITSTATUS(st) == kExitInterrupted || WEXITSTATUS(st) == kExitFail) << WEXITSTATUS(st);
  const report::Report r = report::load_report(rep);
  EXPECT_FALSE(r.complete) << "written, and marked incomplete: merge and diff refuse it";
  EXPECT_TRUE(r.summary.interrupted);
  const size_t per_case = builtin_kernels(Backend::host).all().size() + 1;
  EXPECT_GE(r.cases.size(), per_case);
  EXPECT_LT(r.summary.cases, int64_t(ci_suite(kDefaultSuiteSeed).size()));
  EXPECT_EQ(r.cases.size() % per_case, 0u) << "whole cases only: every case has every built-in path + auto";
}

}  // namespace
}  // namespace pa::tools
