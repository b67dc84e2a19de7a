// The declarations of ABI minor 1 (label unit), each before and after: a test plug-in that
// reproduces what a real kernel met under 1.0 (a false alarm, a false pass, a fault), and the
// same kernel with the new declaration.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include <dlfcn.h>

#include "testing/abi/judge.hpp"

namespace pa::abi_test {
namespace {

Case small_case(DType kv, ScaleMode scale, uint64_t seed) {
  Case c;
  c.seed = seed;
  c.head_size = 64;
  c.block_size = 16;
  c.num_q_heads = 4;
  c.num_kv_heads = 1;
  c.q_dtype = DType::bf16;
  c.kv_dtype = kv;
  c.kv_scale = scale;
  c.context_lens = {40, 97};
  c.num_seqs = 2;
  return c;
}

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// ---- scales on 8-bit caches only -----------------------------------------------------------------

// vLLM's "auto" path reads 16-bit caches without scales. Declaring PER_TENSOR (all 1.0 could say)
// makes pacheck draw scales on bf16 caches: a false Fail. With ONLY_SCALES_ON_8BIT such a case is
// declined, naming why, and 8-bit caches still get (and pass with) their scales.
TEST(AbiScalesOn8Bit, WithoutTheFlagAScaled16BitCaseIsAFalseFail) {
  const KernelPtr k = load_one(PA_TK_IGNORES_SCALES_SO);
  for (uint64_t seed : {1, 2, 3})
    EXPECT_TRUE(starts_with(judge(*k, small_case(DType::bf16, ScaleMode::per_tensor, seed), device_mi300x()), "Fail"))
        << "seed " << seed << ": the kernel ignores the drawn scale, the reference applies it";
}

TEST(AbiScalesOn8Bit, WithTheFlagTheCaseIsDeclinedAnd8BitScalesPass) {
  const KernelPtr k = load_one(PA_TK_IGNORES_SCALES_DECLARED_SO);
  EXPECT_TRUE(k->info().capability.scales_for_8bit_only);
  const std::string r = judge(*k, small_case(DType::bf16, ScaleMode::per_tensor, 1), device_mi300x());
  EXPECT_TRUE(starts_with(r, "declined: kv_scale=per_tensor with 16-bit KV (bf16)")) << r;
  EXPECT_TRUE(contains(r, "ONLY_SCALES_ON_8BIT")) << r;
  for (uint64_t seed : {1, 2, 3}) {
    EXPECT_EQ(judge(*k, small_case(DType::bf16, ScaleMode::none, seed), device_mi300x()), "");
    EXPECT_EQ(judge(*k, small_case(DType::fp8_e4m3fnuz, ScaleMode::per_tensor, seed), device_mi300x()), "");
    EXPECT_EQ(judge(*k, small_case(DType::fp8_e4m3fn, ScaleMode::per_head, seed), device_mi355x()), "");
  }
}

// ---- numerics per KV dtype ---------------------------------------------------------------------

// The kernel rounds K and V to the q dtype after fp8 dequantization, and plants a 2^-6 uniform
// scale error on 16-bit caches. Declaring the loose numerics for every KV dtype (1.0's only way)
// hides the planted error: a false pass. Declared for fp8 only, bf16 cases get the tight
// tolerance (caught) and fp8 cases the loose one (the honest rounding passes).
TEST(AbiNumericsPerKv, LooseNumericsForEveryDtypeHideASmallUniformError) {
  const KernelPtr k = load_one(PA_TK_PLANT_LOOSE_ALL_SO);
  EXPECT_EQ(judge(*k, small_case(DType::bf16, ScaleMode::none, 11), device_mi300x()), "")
      << "the false pass this test documents is gone: revisit the planted error's size";
}

TEST(AbiNumericsPerKv, LooseNumericsForFp8OnlyCatchTheErrorOnBf16) {
  const KernelPtr k = load_one(PA_TK_PLANT_LOOSE_FP8_SO);
  for (uint64_t seed : {11, 12, 13}) {
    EXPECT_TRUE(starts_with(judge(*k, small_case(DType::bf16, ScaleMode::none, seed), device_mi300x()), "Fail"))
        << "seed " << seed;
    EXPECT_EQ(judge(*k, small_case(DType::fp8_e4m3fnuz, ScaleMode::per_tensor, seed), device_mi300x()), "")
        << "seed " << seed;
  }
}

TEST(AbiNumericsPerKv, TheErrorModelFollowsTheCasesKvDtype) {
  const KernelPtr k = load_one(PA_TK_LOOSE_FP8_SO);
  const ErrorModel bf = k->error_model(small_case(DType::bf16, ScaleMode::none, 1));
  const ErrorModel f8 = k->error_model(small_case(DType::fp8_e5m2, ScaleMode::none, 1));
  EXPECT_EQ(bf.u_q, 0.0);
  EXPECT_EQ(bf.u_v, 0.0);
  EXPECT_EQ(f8.u_q, codec::unit_roundoff(DType::bf16));
  EXPECT_EQ(f8.u_v, codec::unit_roundoff(DType::bf16));
  for (uint64_t seed : {21, 22}) {
    EXPECT_EQ(judge(*k, small_case(DType::bf16, ScaleMode::per_head, seed), device_mi300x()), "");
    EXPECT_EQ(judge(*k, small_case(DType::fp8_e4m3fnuz, ScaleMode::per_head, seed), device_mi300x()), "");
  }
}

// V rounded and P.V kept in fp16 widen the bound by the derived terms, and only those.
TEST(AbiNumericsPerKv, VAndPvRoundingWidenTheToleranceByTheirTerms) {
  ToleranceInputs ti;
  ti.v_max = 1;
  ti.logit_rms = 1;
  ti.max_context = 1024;
  ErrorModel em;
  const double base = tolerance_for(em, ti).atol;
  em.u_v = 0x1.0p-8;
  EXPECT_DOUBLE_EQ(tolerance_for(em, ti).atol - base, 2 * 0x1.0p-8);
  em.u_v = 0;
  em.u_pv = 0x1.0p-11;
  EXPECT_DOUBLE_EQ(tolerance_for(em, ti).atol - base, 2 * 16 * 0x1.0p-11);
}

// ---- a fixed split-K partition -----------------------------------------------------------------

// The two-stage test kernel splits at 512 tokens whatever the case's partition_size says; its
// buggy reduce merges one partition too many exactly when the context is a multiple of 512.
TEST(AbiFixedPartition, IsParsedAndShownAndTheBugLivesAtTheBoundaryOnly) {
  const KernelPtr ok = load_one(PA_TK_SPLIT512_SO), bug = load_one(PA_TK_SPLIT512_BUG_SO);
  EXPECT_EQ(bug->info().capability.fixed_partition, 512);
  bool shown = false;
  for (const auto& [field, value] : describe(bug->info().capability))
    if (field == "fixed_partition") shown = value == "512 tokens";
  EXPECT_TRUE(shown) << "pacheck kernels must show fixed_partition: 512 tokens";
  for (int32_t ctx : {1, 511, 513, 1000, 1535}) {
    Case c = small_case(DType::bf16, ScaleMode::none, 61);
    c.context_lens = {ctx};
    c.num_seqs = 1;
    EXPECT_EQ(judge(*ok, c, device_mi300x()), "") << "ctx " << ctx;
    EXPECT_EQ(judge(*bug, c, device_mi300x()), "") << "ctx " << ctx << ": not a multiple of 512";
  }
  for (int32_t ctx : {512, 1024}) {
    Case c = small_case(DType::bf16, ScaleMode::none, 61);
    c.context_lens = {ctx};
    c.num_seqs = 1;
    EXPECT_EQ(judge(*ok, c, device_mi300x()), "") << "ctx " << ctx;
    EXPECT_TRUE(starts_with(judge(*bug, c, device_mi300x()), "Fail")) << "ctx " << ctx;
  }
}

// ---- fp8_e5m2 ----------------------------------------------------------------------------------

TEST(AbiE5m2, ADeclaredE5m2CacheIsAdmittedOnEveryDeviceModelAndRuns) {
  const KernelPtr k = load_one(PA_TK_LOOSE_FP8_SO);
  const Case c = small_case(DType::fp8_e5m2, ScaleMode::per_tensor, 31);
  for (const Device& dev : {device_mi300x(), device_mi355x(), device_h100()}) {
    EXPECT_FALSE(k->decline_reason(c, dev).has_value()) << dev.name;
    EXPECT_EQ(judge(*k, c, dev), "") << dev.name;
  }
  const KernelPtr no_e5m2 = load_one(PA_TK_ABI_1_2_SO);  // declares e5m2 too: same source
  EXPECT_FALSE(no_e5m2->decline_reason(c, device_mi300x()).has_value());
}

// ---- page-stride alignment ---------------------------------------------------------------------

// A kernel loading K/V in 16-byte vectors faults on a page stride of 1027 elements. Without the
// declaration pacheck hands it such a case (a Fail blamed on the kernel); with page_stride_align
// = 16 the case is declined, naming the stride and the rule, and aligned strides still run.
TEST(AbiPageStrideAlign, AMisalignedStrideIsAFailWithoutTheDeclaration) {
  const KernelPtr k = load_one(PA_TK_ALIGN16_SO);
  Case c = small_case(DType::bf16, ScaleMode::none, 41);
  c.page_pad = 3;
  const std::string r = judge(*k, c, device_mi300x());
  EXPECT_TRUE(starts_with(r, "Fail")) << r;
  EXPECT_TRUE(contains(r, "misaligned")) << r;
}

TEST(AbiPageStrideAlign, WithTheDeclarationItIsDeclinedNamingTheRule) {
  const KernelPtr k = load_one(PA_TK_ALIGN16_DECLARED_SO);
  EXPECT_EQ(k->info().capability.page_stride_align, 16);
  Case c = small_case(DType::bf16, ScaleMode::none, 41);
  c.page_pad = 3;
  const std::string r = judge(*k, c, device_mi300x());
  EXPECT_EQ(r, "declined: page_stride=1027 (page_pad=3) is not a multiple of page_stride_align=16 elements");
  for (int32_t pad : {0, 16, 48}) {
    c.page_pad = pad;
    EXPECT_EQ(judge(*k, c, device_mi300x()), "") << "page_pad=" << pad;
  }
}

// ---- small frictions: no GQA limit, init/destroy ------------------------------------------------

TEST(AbiNoGqaLimit, MaxGqaZeroMeansAnyGroupSize) {
  Case c = small_case(DType::bf16, ScaleMode::none, 51);
  c.num_q_heads = 64;
  c.context_lens = {20};
  c.num_seqs = 1;
  const KernelPtr limited = load_one(PA_TK_ABI_1_2_SO);
  const auto why = limited->decline_reason(c, device_mi300x());
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(*why, "gqa=64 above 4");
  const KernelPtr k = load_one(PA_TK_NO_GQA_LIMIT_SO);
  EXPECT_EQ(k->info().capability.max_gqa, kNoGqaLimit);
  EXPECT_EQ(judge(*k, c, device_mi300x()), "");
}

struct InitCounts {
  int inits = 0, destroys = 0;
};

TEST(AbiInitDestroy, InitRunsOncePerProcessHoweverOftenTheLibraryIsLoaded) {
  const KernelPtr a = load_one(PA_TK_COUNT_INIT_SO);
  const KernelPtr b = load_one(std::string(PA_TK_COUNT_INIT_SO) + ":tk_count_init");
  // user_data points at the library's counters (same library: dlopen returns the loaded one).
  ASSERT_NE(a->info().name, "");
  void* lib = dlopen(PA_TK_COUNT_INIT_SO, RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(lib, nullptr);
  auto entry = reinterpret_cast<pacheck_kernels_fn>(dlsym(lib, PACHECK_KERNELS_SYMBOL));
  uint32_t n = 0;
  const pacheck_kernel* d = entry(PACHECK_KERNEL_ABI_VERSION, &n)[0];
  const auto* counts = static_cast<const InitCounts*>(d->user_data);
  EXPECT_EQ(counts->inits, 1);
  EXPECT_EQ(counts->destroys, 0) << "destroy runs at exit, not before";
}

// Through the program, in process and through the worker: every process that loaded the library
// logged exactly one init and, at its exit, exactly one destroy.
TEST(AbiInitDestroy, EachProcessCallsInitOnceAndDestroyOnceAtExit) {
  for (const char* isolate : {"never", "external"}) {
    const std::string log = ::testing::TempDir() + "/pa_init_log_" + isolate + ".txt";
    std::remove(log.c_str());
    const std::string cmd = "PA_TEST_INIT_LOG=" + log + " " + PACHECK_BIN + " kernels --isolate " + isolate +
                            " --kernel " + PA_TK_COUNT_INIT_SO + " > /dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::ifstream f(log);
    std::map<long, std::map<std::string, int>> by_pid;
    std::string what;
    long pid = 0;
    while (f >> what >> pid) ++by_pid[pid][what];
    ASSERT_FALSE(by_pid.empty()) << isolate << ": nothing logged to " << log;
    for (const auto& [p, counts] : by_pid) {
      EXPECT_EQ(counts.count("init") ? counts.at("init") : 0, 1) << isolate << " pid " << p;
      EXPECT_EQ(counts.count("destroy") ? counts.at("destroy") : 0, 1) << isolate << " pid " << p;
    }
  }
}

}  // namespace
}  // namespace pa::abi_test
