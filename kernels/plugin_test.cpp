// Plug-in loading (label `unit`): a bad plug-in is a clear InputError naming the library and the
// field, never a crash or a silently wrong run; PATH.so:NAME picks one kernel; and the examples'
// CPU kernel (examples/cpu_kernel_plugin), loaded the way `pacheck --kernel` loads it, matches the
// reference -- while its PLANT_BUG build does not, so the example's bug is one pacheck can see.
// The libraries are built from kernels/testdata/test_plugins.c and the example's source; CMake
// passes their paths in as PA_PLUGIN_*_SO.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/kernel.hpp"
#include "reference/attention.hpp"
#include "testbed/testbed.hpp"
#include "testing/input_error.hpp"

namespace pa {
namespace {

// The InputError message of loading `spec`, or "" when it loaded.
std::string load_error(const std::string& spec) {
  return test::input_error([&] { load_plugin(spec); });
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(Plugin, LoadsEveryKernelOfALibrary) {
  const std::vector<KernelPtr> ks = load_plugin(PA_PLUGIN_GOOD_SO);
  ASSERT_EQ(ks.size(), 2u);
  EXPECT_EQ(ks[0]->name(), "zeros_a");
  EXPECT_EQ(ks[1]->name(), "zeros_b");
  EXPECT_EQ(ks[0]->info().source, PA_PLUGIN_GOOD_SO);  // reports name where a kernel came from
  EXPECT_EQ(ks[0]->info().memory, Memory::host);
  EXPECT_EQ(ks[0]->info().provenance, "pacheck kernels/testdata/test_plugins.c");
}

TEST(Plugin, PathColonNameSelectsOneKernel) {
  const std::vector<KernelPtr> ks = load_plugin(std::string(PA_PLUGIN_GOOD_SO) + ":zeros_b");
  ASSERT_EQ(ks.size(), 1u);
  EXPECT_EQ(ks[0]->name(), "zeros_b");
}

TEST(Plugin, UnknownNameListsTheAvailableOnes) {
  const std::string e = load_error(std::string(PA_PLUGIN_GOOD_SO) + ":zeros_c");
  EXPECT_TRUE(contains(e, PA_PLUGIN_GOOD_SO)) << e;
  EXPECT_TRUE(contains(e, "no kernel 'zeros_c'")) << e;
  EXPECT_TRUE(contains(e, "zeros_a, zeros_b")) << e;
}

// Each defective library is refused at load with a message naming the library and the defect.
TEST(Plugin, BadPluginsAreClearErrors) {
  struct Bad {
    const char* what;
    std::string path;
    std::vector<std::string> parts;  // each must appear in the message
  };
  const std::vector<Bad> bad = {
      {"missing file", "/nonexistent/libpa_missing.so", {"cannot load the library"}},
      {"wrong ABI version", PA_PLUGIN_BAD_ABI_VERSION_SO, {"kernel 'zeros_a'", "ABI version 999", "speaks version 1"}},
      {"no entry point", PA_PLUGIN_NO_ENTRY_POINT_SO, {"does not export the entry point 'pacheck_kernels'"}},
      {"unknown layout id", PA_PLUGIN_UNKNOWN_LAYOUT_BIT_SO,
       {"kernel 'zeros_a'", "capability.kv_layouts", "unknown id(s) in mask 0x200", "known ids are 0..5"}},
      {"truncated struct", PA_PLUGIN_TRUNCATED_STRUCT_SO, {"pacheck_kernel.struct_size=", "too small for field"}},
      {"empty kernel list", PA_PLUGIN_EMPTY_LIST_SO, {"returned no kernels for ABI version 1"}},
      {"NULL launch", PA_PLUGIN_NULL_LAUNCH_SO, {"kernel 'zeros_a'", "launch is NULL"}},
  };
  for (const Bad& b : bad) {
    const std::string e = load_error(b.path);
    ASSERT_FALSE(e.empty()) << b.what << ": " << b.path << " loaded";
    EXPECT_TRUE(contains(e, b.path)) << b.what << ": the message does not name the library: " << e;
    for (const std::string& part : b.parts) EXPECT_TRUE(contains(e, part)) << b.what << ": " << e;
  }
}

// The truncated descriptor ends before `launch`: the message says how many bytes the field needs.
TEST(Plugin, TruncatedStructNamesTheSizes) {
  const std::string e = load_error(PA_PLUGIN_TRUNCATED_STRUCT_SO);
  EXPECT_TRUE(contains(e, "struct_size=" + std::to_string(offsetof(pacheck_kernel, launch)))) << e;
  // A descriptor needs the fields of ABI 1.0 (through last_error); later minors' fields are optional.
  EXPECT_TRUE(contains(e, "(needs " + std::to_string(offsetof(pacheck_kernel, last_error) + sizeof(void*)) + ")")) << e;
}

// A loaded kernel runs through the same host marshalling as a built-in one, and its capability
// table declines what it did not declare, naming the field.
TEST(Plugin, LoadedKernelRunsAndDeclines) {
  const KernelPtr k = load_plugin(std::string(PA_PLUGIN_GOOD_SO) + ":zeros_a").at(0);
  Case c;
  c.head_size = 64;
  c.num_q_heads = 1;
  c.context_lens = {20};
  const Device dev = device_mi300x();
  ASSERT_FALSE(k->decline_reason(c, dev).has_value());
  const Inputs in = make_inputs(c);
  const PhysicalKv kv = pack(in);
  const KernelOutput r = k->run(make_call(in, kv), dev);
  ASSERT_EQ(r.status, Status::Ok) << r.reason;
  ASSERT_EQ(r.out.size(), size_t(64));
  for (float v : r.out) EXPECT_EQ(v, 0.f);
  c.head_size = 128;
  const auto why = k->decline_reason(c, dev);
  ASSERT_TRUE(why.has_value());
  EXPECT_TRUE(contains(*why, "head_size=128")) << *why;
}

// ---- the examples' CPU kernel ------------------------------------------------------------------

// "" when `k` passes `c` through the one judge (testbed/testbed.hpp: output within its declared
// tolerance, aggregate checks, and the LSE it declares within its derived bound).
std::string judge(const Kernel& k, const Case& c) {
  const Inputs in = make_inputs(c);
  const PathRecord r = run_and_judge(k, c, make_call(in, pack(in)), reference_attention(in), device_mi300x());
  if (r.status == Status::Ok) return "";
  return std::string(to_string(r.status)) + " " + r.metric + ": " + r.message;
}

// A deterministic sweep over the example's declared capability: each option cycles with its own
// period so the cases mix layouts, dtypes (fp8 caches included), scales, GQA, MTP, windows, page
// boundaries and the example's fixed 512-token partition (contexts of 511 to 1025).
std::vector<Case> example_cases() {
  std::vector<Case> out;
  for (int i = 0; i < 30; ++i) {
    Case c;
    c.seed = 1000 + uint64_t(i);
    c.kv_layout = i % 2 ? KvLayout::hnd : KvLayout::nhd;
    c.kv_dtype = (i / 2) % 2 ? DType::fp16 : DType::bf16;
    if (i % 7 == 3) c.kv_dtype = DType::fp8_e4m3fnuz;  // MI300X's flavour: the judging device's
    if (i % 7 == 5) c.kv_dtype = DType::fp8_e5m2;
    c.q_dtype = (i / 3) % 2 ? DType::fp16 : DType::bf16;
    c.kv_scale = (i / 4) % 2 ? ScaleMode::per_tensor : ScaleMode::none;
    c.head_size = i % 3 ? 128 : 64;
    c.block_size = (i / 5) % 2 ? 32 : 16;
    const int32_t g = std::vector<int32_t>{1, 4, 8, 2}[size_t(i % 4)];
    c.num_kv_heads = 1 + i % 2;
    c.num_q_heads = c.num_kv_heads * g;
    c.q_len = std::vector<int32_t>{1, 2, 4}[size_t(i % 3)];
    c.num_seqs = 1 + i % 3;
    c.context_lens.clear();
    const int32_t B = c.block_size;
    for (int32_t s = 0; s < c.num_seqs; ++s)
      c.context_lens.push_back(std::max(
          c.q_len, std::vector<int32_t>{1, B - 1, B, B + 1, 3 * B + 5, 130, 511, 512, 513, 1024, 1025}[size_t((i + s) % 11)]));
    c.sliding_window = std::vector<int32_t>{0, 1, 7, 40}[size_t(i % 4)];
    if (i % 5 == 2) c.softmax_scale = 0.05;
    if (i % 3 == 1) c.page_pad = 24;
    out.push_back(c);
  }
  return out;
}

TEST(ExamplePlugin, CpuKernelMatchesTheReference) {
  const std::vector<KernelPtr> ks = load_plugin(PA_EXAMPLE_CPU_PLUGIN_SO);
  ASSERT_EQ(ks.size(), 1u);
  EXPECT_EQ(ks[0]->name(), "cpu_decode");
  for (const Case& c : example_cases()) EXPECT_EQ(judge(*ks[0], c), "") << vars(c);
}

// The example declares the ABI 1.1 fields a two-stage vLLM-like kernel needs: its fixed partition,
// and looser numerics for fp8 caches only.
TEST(ExamplePlugin, CpuKernelDeclaresItsPartitionAndNumericsPerKvDtype) {
  const KernelPtr k = load_plugin(PA_EXAMPLE_CPU_PLUGIN_SO).at(0);
  EXPECT_EQ(k->info().capability.fixed_partition, 512);
  Case c;
  c.kv_dtype = DType::bf16;
  EXPECT_EQ(k->error_model(c).u_q, 0.0);
  c.kv_dtype = DType::fp8_e4m3fnuz;
  EXPECT_GT(k->error_model(c).u_q, 0.0);
  EXPECT_GT(k->error_model(c).u_v, 0.0);
}

// Only pacheck_kernels is exported: hidden visibility alone left a std:: unique global
// (std::__detail::__to_chars_10_impl's digit table) in the dynamic symbol table; the example's
// version script (examples/cpu_kernel_plugin/exports.map) removes it.
TEST(ExamplePlugin, CpuKernelExportsOnlyTheEntryPoint) {
  const std::string cmd = std::string("nm -D --defined-only '") + PA_EXAMPLE_CPU_PLUGIN_SO + "' | c++filt";
  FILE* f = popen(cmd.c_str(), "r");
  ASSERT_NE(f, nullptr) << cmd;
  std::string text;
  char buf[512];
  while (fgets(buf, sizeof buf, f)) text += buf;
  ASSERT_EQ(pclose(f), 0) << cmd;
  EXPECT_NE(text.find(" T pacheck_kernels"), std::string::npos) << text;
  EXPECT_EQ(text.find("std::"), std::string::npos) << text;
  std::istringstream lines(text);
  int defined = 0;
  for (std::string line; std::getline(lines, line);) defined += !line.empty();
  EXPECT_EQ(defined, 1) << text;
}

// What the example does not declare is declined by the table, before any launch.
TEST(ExamplePlugin, CpuKernelDeclinesWhatItDoesNotDeclare) {
  const KernelPtr k = load_plugin(PA_EXAMPLE_CPU_PLUGIN_SO).at(0);
  struct Out { const char* field; void (*edit)(Case&); };
  const std::vector<Out> outside = {
      {"kv_layout", [](Case& c) { c.kv_layout = KvLayout::vllm; }},
      {"kv_dtype", [](Case& c) { c.kv_dtype = DType::int8; c.kv_scale = ScaleMode::per_tensor; }},
      {"head_size", [](Case& c) { c.head_size = 256; }},
      {"gqa", [](Case& c) { c.num_q_heads = 16; }},
      {"q_len", [](Case& c) { c.q_len = 8; }},
      {"logit_softcap", [](Case& c) { c.logit_softcap = 30; }},
  };
  for (const Out& o : outside) {
    Case c;
    c.num_q_heads = 4;
    o.edit(c);
    const auto why = k->decline_reason(c, device_mi300x());
    ASSERT_TRUE(why.has_value()) << o.field;
    EXPECT_TRUE(contains(*why, o.field)) << *why;
  }
}

// The planted window off-by-one: invisible without a window, caught on one sequence with one.
TEST(ExamplePlugin, PlantedBugIsCaughtOnOneSequence) {
  const KernelPtr bug = load_plugin(PA_EXAMPLE_CPU_PLUGIN_BUG_SO).at(0);
  Case c;
  c.num_q_heads = 4;
  c.context_lens = {64};
  EXPECT_EQ(judge(*bug, c), "") << "without a window the planted bug must not show";
  c.sliding_window = 8;
  EXPECT_NE(judge(*bug, c), "") << "a window of 8 over 64 tokens must expose the extra key";
}

}  // namespace

// The same bad plug-ins through the program: each is exit 2 (an input error) with a message that
// names the library, never a crash and never a run of garbage. In process and through the worker.
TEST(PluginCli, BadPluginsAreExitTwoNamingTheLibrary) {
  struct Bad { const char* so; const char* text; };
  for (const Bad& b : {Bad{PA_PLUGIN_BAD_ABI_VERSION_SO, "ABI version"}, Bad{PA_PLUGIN_NO_ENTRY_POINT_SO, "pacheck_kernels"},
                       Bad{PA_PLUGIN_UNKNOWN_LAYOUT_BIT_SO, "kv_layouts"}, Bad{PA_PLUGIN_TRUNCATED_STRUCT_SO, "struct_size"}})
    for (const char* isolate : {"never", "external"}) {
      const std::string out = ::testing::TempDir() + "/pacheck_plugin_cli.txt";
      const std::string cmd = std::string(PACHECK_BIN) + " kernels --isolate " + isolate + " --kernel " + b.so + " > " +
                              out + " 2>&1";
      const int st = std::system(cmd.c_str());
      ASSERT_TRUE(WIFEXITED(st)) << cmd;
      EXPECT_EQ(WEXITSTATUS(st), 2) << cmd;
      std::ifstream f(out);
      const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      EXPECT_NE(text.find(b.so), std::string::npos) << isolate << ": " << text;
      EXPECT_NE(text.find(b.text), std::string::npos) << isolate << ": " << text;
    }
}

}  // namespace pa
