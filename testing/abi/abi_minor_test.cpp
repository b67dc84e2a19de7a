// ABI minor versions (label unit): a plug-in built against the 1.0 header (a verbatim copy in
// testing/abi_v1_0) loads under this pacheck, declares exactly what the same source declares
// when built against the current header, and runs its cases; a descriptor of a newer minor than
// pacheck's is refused, naming both versions; an unknown flag bit is still refused.
#include <gtest/gtest.h>

#include <dlfcn.h>

#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>
#include <cstdlib>

#include "kernels/builtin.hpp"
#include "testing/abi/judge.hpp"

namespace pa::abi_test {
namespace {

// The flags say by name which enable and which restrict; the 1.0 names stay as aliases.
static_assert(PACHECK_CAP_PARTITION_OF_PAGES == PACHECK_CAP_ONLY_PAGE_PARTITIONS, "1.0 alias");
static_assert(PACHECK_CAP_TOKEN_SCALES_FOR_8BIT == PACHECK_CAP_ONLY_TOKEN_SCALES_ON_8BIT, "1.0 alias");
static_assert((PACHECK_CAP_ENABLING_FLAGS & PACHECK_CAP_RESTRICTING_FLAGS) == 0, "a flag is one kind");
static_assert((PACHECK_CAP_ENABLING_FLAGS | PACHECK_CAP_RESTRICTING_FLAGS) == 0xFFFu, "every flag has a kind");
static_assert(((PACHECK_CAP_ENABLING_FLAGS | PACHECK_CAP_RESTRICTING_FLAGS) & PACHECK_CAP_PROMISE_FLAGS) == 0,
              "a promise (minor 3) is its own kind");

std::vector<Case> sample_cases() {
  std::vector<Case> out;
  for (int i = 0; i < 6; ++i) {
    Case c;
    c.seed = 500 + uint64_t(i);
    c.head_size = 64;
    c.block_size = 16;
    c.num_kv_heads = 1 + i % 2;
    c.num_q_heads = c.num_kv_heads * (i % 3 == 0 ? 1 : 4);
    c.q_dtype = i % 2 ? DType::fp16 : DType::bf16;
    c.kv_dtype = i % 3 == 1 ? DType::fp16 : DType::bf16;
    c.kv_scale = i % 2 ? ScaleMode::per_head : ScaleMode::none;
    c.num_seqs = 1 + i % 3;
    c.context_lens.clear();
    for (int s = 0; s < c.num_seqs; ++s) c.context_lens.push_back(std::vector<int32_t>{1, 15, 16, 17, 100}[size_t((i + s) % 5)]);
    if (i == 4) c.page_pad = 8;
    out.push_back(c);
  }
  return out;
}

TEST(AbiMinor, APluginBuiltAgainstTheOneZeroHeaderLoadsAndRuns) {
  const KernelPtr old = load_one(PA_TK_ABI_1_0_SO);
  EXPECT_EQ(old->name(), "tk_abi_1_0");
  for (const Case& c : sample_cases()) EXPECT_EQ(judge(*old, c, device_mi300x()), "") << vars(c);
}

// The fields a 1.0 struct lacks take the defaults that are 1.0's behaviour: the capability and
// numerics parsed from the 1.0 binary equal those of the same source built against 1.1.
TEST(AbiMinor, TheOneZeroPluginDeclaresWhatTheSameSourceDeclaresUnderOneOne) {
  const KernelPtr old = load_one(PA_TK_ABI_1_0_SO), now = load_one(PA_TK_ABI_1_3_SO);
  EXPECT_EQ(describe(old->info().capability), describe(now->info().capability));
  EXPECT_EQ(describe(old->info().numerics), describe(now->info().numerics));
  EXPECT_EQ(old->info().capability.fixed_partition, 0);
  EXPECT_EQ(old->info().capability.page_stride_align, 1);
  EXPECT_FALSE(old->info().capability.scales_for_8bit_only);
  EXPECT_TRUE(old->info().numerics.by_kv.empty());
  for (const Case& c : sample_cases()) EXPECT_EQ(judge(*now, c, device_mi300x()), "") << vars(c);
}

// A plug-in built against the 1.1 header (testing/abi_v1_1, verbatim) declares what the same source
// declares under the current header -- none of minor 2's ragged family -- and runs the ci suite
// through the pacheck binary unchanged: it is offered only cases it can express (no ragged batch,
// no Dv != D, no CSR table, no empty sequence), and passes them.
TEST(AbiMinor, APluginBuiltAgainstTheOneOneHeaderRunsItsCiSuiteUnchanged) {
  const KernelPtr old = load_one(PA_TK_ABI_1_1_SO), now = load_one(PA_TK_ABI_1_3_SO);
  EXPECT_EQ(describe(old->info().capability), describe(now->info().capability));
  EXPECT_FALSE(old->info().capability.ragged);
  EXPECT_EQ(old->info().capability.page_tables, bit(PageTable::padded));
  Case ragged = sample_cases()[1];
  ragged.q_lens = {1, 3};
  ragged.q_len = 3;
  ragged.context_lens = {40, 40};
  ragged.num_seqs = 2;
  ASSERT_TRUE(validate(ragged).empty()) << join(validate(ragged), "; ");
  EXPECT_TRUE(old->decline_reason(ragged, device_mi300x()).has_value());
  const std::string report = ::testing::TempDir() + "abi_1_1_ci.json";
  const std::string cmd = std::string(PACHECK_BIN) + " run --kernel " + PA_TK_ABI_1_1_SO +
                          " --suite ci --quiet --report " + report + " > /dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// A plug-in built against the 1.2 header (testing/abi_v1_2, verbatim) has no plan step and no
// promises, declares what the same source declares under the current header, and runs the ci
// suite through the pacheck binary unchanged, in a worker and in process.
TEST(AbiMinor, APluginBuiltAgainstTheOneTwoHeaderRunsItsCiSuiteUnchanged) {
  const KernelPtr old = load_one(PA_TK_ABI_1_2_SO), now = load_one(PA_TK_ABI_1_3_SO);
  EXPECT_EQ(describe(old->info().capability), describe(now->info().capability));
  EXPECT_FALSE(old->info().capability.plan);
  EXPECT_FALSE(old->info().capability.graph_safe);
  for (const char* isolate : {"external", "never"}) {
    const std::string report = ::testing::TempDir() + "abi_1_2_ci_" + isolate + ".json";
    const std::string cmd = std::string(PACHECK_BIN) + " run --kernel " + PA_TK_ABI_1_2_SO + " --isolate " + isolate +
                            " --suite ci --quiet --report " + report + " > /dev/null";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
}

// A plug-in built against the 1.3 header (testing/abi_v1_3, verbatim: before the MLA layouts)
// loads, declares what the same source declares under the current header, and runs the ci suite
// -- MLA cases included -- through the pacheck binary unchanged, in a worker and in process: it
// is never offered a latent cache.
TEST(AbiMinor, APluginBuiltAgainstTheOneThreeHeaderRunsItsCiSuiteUnchanged) {
  const KernelPtr old = load_one(PA_TK_ABI_1_3_VERBATIM_SO), now = load_one(PA_TK_ABI_1_3_SO);
  EXPECT_EQ(describe(old->info().capability), describe(now->info().capability));
  EXPECT_FALSE(reads_latent(old->info().capability));
  for (const char* isolate : {"external", "never"}) {
    const std::string report = ::testing::TempDir() + "abi_1_3_ci_" + isolate + ".json";
    const std::string cmd = std::string(PACHECK_BIN) + " run --kernel " + PA_TK_ABI_1_3_VERBATIM_SO + " --isolate " +
                            isolate + " --suite ci --quiet --report " + report + " > /dev/null";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
}

// The MLA layouts are minor 4's: a descriptor of an earlier minor that sets their bits is refused
// at load, naming the field and the minor (it could not have meant them).
TEST(AbiMinor, AnEarlierMinorDeclaringTheMlaLayoutsIsRefused) {
  pacheck_capability cap = *builtin_specs()[size_t(BuiltinPath::mla)].capability;
  pacheck_kernel d = *host_twin_descriptors()[size_t(BuiltinPath::mla)];
  d.capability = &cap;
  d.abi_minor = 3;
  try {
    AbiKernel k(&d, "test");
    FAIL() << "a minor-3 descriptor with MLA layouts loaded";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("MLA_JOINT or MLA_SPLIT"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("1.3"), std::string::npos) << e.what();
  }
  d.abi_minor = PACHECK_KERNEL_ABI_MINOR;
  EXPECT_NO_THROW(AbiKernel(&d, "test"));
}

// A kernel that names another instance than itself for a launch (a silent fallback) fails with
// metric instance, the report's `ran` naming the instance, in process and in a worker alike; on
// launches it serves itself it passes.
TEST(AbiMinor, AKernelReportingAnotherInstanceIsAFinding) {
  for (const char* isolate : {"never", "external"}) {
    SCOPED_TRACE(isolate);
    const std::string report = ::testing::TempDir() + "fallback_" + isolate + ".json";
    const std::string cases = ::testing::TempDir() + "fallback_cases.json";
    {
      std::FILE* f = std::fopen(cases.c_str(), "w");
      ASSERT_NE(f, nullptr);
      std::fputs(R"([{"name": "short", "seed": 1, "num_q_heads": 4, "num_kv_heads": 1, "head_size": 64,
                      "block_size": 16, "context_lens": [40], "kv_layout": "nhd"},
                     {"name": "long", "seed": 2, "num_q_heads": 4, "num_kv_heads": 1, "head_size": 64,
                      "block_size": 16, "context_lens": [100], "kv_layout": "nhd"}])", f);
      std::fclose(f);
    }
    const std::string cmd = std::string(PACHECK_BIN) + " run --kernel " + PA_TK_FALLBACK_SO + " --isolate " + isolate +
                            " --case " + cases + " --quiet --report " + report + " > /dev/null";
    EXPECT_EQ(std::system(cmd.c_str()) >> 8, 1) << cmd;  // exit 1: a failure
    const nlohmann::json r = nlohmann::json::parse(std::ifstream(report));
    int checked = 0;
    for (const auto& rec : r.at("cases")) {
      if (rec.at("path") != "tk_fallback") continue;
      ++checked;
      if (rec.at("case").at("name") == "short") {
        EXPECT_EQ(rec.at("status"), "Ok") << rec.dump();
        EXPECT_EQ(rec.at("ran"), "tk_fallback");
      } else {
        EXPECT_EQ(rec.at("status"), "Fail") << rec.dump();
        EXPECT_EQ(rec.at("metric"), "instance") << rec.dump();
        EXPECT_EQ(rec.at("ran"), "tk_naive_fallback") << rec.dump();
        EXPECT_NE(rec.at("message").get<std::string>().find("silent fallback"), std::string::npos) << rec.dump();
      }
    }
    EXPECT_EQ(checked, 2);
  }
}

// The raw descriptor of a test plug-in, for building edited copies.
const pacheck_kernel* descriptor(const char* so) {
  void* lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  if (!lib) return nullptr;
  auto entry = reinterpret_cast<pacheck_kernels_fn>(dlsym(lib, PACHECK_KERNELS_SYMBOL));
  uint32_t n = 0;
  const pacheck_kernel* const* list = entry ? entry(PACHECK_KERNEL_ABI_VERSION, &n) : nullptr;
  return n ? list[0] : nullptr;
}

std::string construct_error(const pacheck_kernel& d) {
  try {
    AbiKernel k(&d, "edited");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(AbiMinor, ANewerMinorIsRefusedNamingBothVersions) {
  const pacheck_kernel* d = descriptor(PA_TK_ABI_1_3_SO);
  ASSERT_NE(d, nullptr);
  pacheck_kernel newer = *d;
  newer.abi_minor = PACHECK_KERNEL_ABI_MINOR + 1;
  const std::string e = construct_error(newer);
  EXPECT_TRUE(contains(e, "built against ABI version 1." + std::to_string(PACHECK_KERNEL_ABI_MINOR + 1))) << e;
  EXPECT_TRUE(contains(e, "speaks version 1." + std::to_string(PACHECK_KERNEL_ABI_MINOR))) << e;
  pacheck_kernel same = *d;
  EXPECT_EQ(construct_error(same), "");
}

TEST(AbiMinor, UnknownFlagBitsAndBadMinorOneFieldsAreRefused) {
  const pacheck_kernel* d = descriptor(PA_TK_ABI_1_3_SO);
  ASSERT_NE(d, nullptr);
  struct Edit {
    const char* what;
    void (*edit)(pacheck_capability&);
    const char* part;
  };
  for (const Edit& e : {Edit{"flag bit 15", [](pacheck_capability& c) { c.flags |= 1u << 15; }, "unknown bits 0x8000"},
                        Edit{"bad lse base", [](pacheck_capability& c) { c.lse_base = 10; }, "lse_base=10"},
                        Edit{"unknown table", [](pacheck_capability& c) { c.page_tables = 4; }, "page_tables has unknown id"},
                        Edit{"negative align", [](pacheck_capability& c) { c.page_stride_align = -16; }, "page_stride_align=-16"},
                        Edit{"negative partition", [](pacheck_capability& c) { c.fixed_partition = -1; }, "fixed_partition=-1"},
                        Edit{"negative max_gqa", [](pacheck_capability& c) { c.max_gqa = -1; }, "max_gqa=-1"}}) {
    pacheck_capability cap = *d->capability;
    e.edit(cap);
    pacheck_kernel k = *d;
    k.capability = &cap;
    const std::string msg = construct_error(k);
    EXPECT_TRUE(contains(msg, e.part)) << e.what << ": " << msg;
  }
}

// One error shape: a `supports` that says no through last_error (why left empty) is read there.
int says_no(const pacheck_kernel*, const pacheck_problem*, char*, size_t) { return 0; }
const char* reason(const pacheck_kernel*) { return "needs 300 KiB of shared memory, the device has 227 KiB"; }

TEST(AbiMinor, SupportsMayGiveItsReasonThroughLastError) {
  const pacheck_kernel* d = descriptor(PA_TK_ABI_1_3_SO);
  ASSERT_NE(d, nullptr);
  pacheck_kernel k = *d;
  k.supports = says_no;
  k.last_error = reason;
  const AbiKernel kernel(&k, "edited");
  Case c;
  c.head_size = 64;
  c.block_size = 16;
  c.num_q_heads = 4;
  c.num_kv_heads = 1;
  c.kv_layout = KvLayout::nhd;
  const auto why = kernel.decline_reason(c, device_mi300x());
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(*why, "needs 300 KiB of shared memory, the device has 227 KiB");
}

// A bare dtype id in a minor-1 rounding field would read 0 as bf16; pacheck takes 0 as "fp32"
// and asks for PACHECK_ROUND_TO for the others.
TEST(AbiMinor, MinorOneRoundingFieldsNameDtypesThroughRoundTo) {
  pacheck_numerics n{PACHECK_STRUCT_SIZE(pacheck_numerics), PACHECK_ROUND_NONE, PACHECK_ROUND_NONE,
                     PACHECK_ROUND_NONE, 0, PACHECK_ROUND_TO(PACHECK_DTYPE_FP16), 0};
  const Numerics ok = numerics_from_abi(&n, "test");
  EXPECT_FALSE(ok.base.v.to.has_value());
  EXPECT_FALSE(ok.base.v.as_q);
  ASSERT_TRUE(ok.base.pv.to.has_value());
  EXPECT_EQ(*ok.base.pv.to, DType::fp16);
  n.pv_round = PACHECK_DTYPE_FP16;
  try {
    numerics_from_abi(&n, "test");
    ADD_FAILURE() << "a bare dtype id in pv_round was accepted";
  } catch (const InputError& e) {
    EXPECT_TRUE(contains(e.what(), "numerics.pv_round=1")) << e.what();
    EXPECT_TRUE(contains(e.what(), "PACHECK_ROUND_TO(dtype)")) << e.what();
  }
}

}  // namespace
}  // namespace pa::abi_test
