// The paged_attention_common-style entry end to end on the host twins: on a sample of the
// dispatcher's cross-product the routed result matches the fp64 reference within the tolerance of
// the chosen path's error model, every refusal is NotSupported with the decision's error, and the
// workspace and scale-form checks name what is wrong.
#include "dispatch/entry.hpp"

#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <map>

#include <gtest/gtest.h>

#include "core/prng.hpp"
#include "testing/entry_sample_test.hpp"
#include "reference/attention.hpp"
#include "testbed/testbed.hpp"
#include "testing/case_shape.hpp"

namespace pa {
namespace {

using test::out_shape;
using test::sample_case;
using test::Sampled;
using test::SampledRun;
using test::for_each_sample;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

const std::vector<KernelPtr>& twins() {
  static const std::vector<KernelPtr> k = builtin_kernels(Backend::host).all();
  return k;
}
const Kernel& twin(const std::string& name) {
  for (const KernelPtr& k : twins())
    if (k->name() == name) return *k;
  throw std::runtime_error("no twin " + name);
}
// The one judge of every suite (testbed/testbed.hpp).
Status judged(const std::string& kernel, const KernelOutput& out, const Case& c, const ReferenceResult& ref,
              std::string* message = nullptr) {
  const PathRecord r = judge(twin(kernel), out, c, ref);
  if (message) *message = r.message;
  return r.status;
}

TEST(EntrySample, RoutedResultMatchesReferenceAndRefusalsAreNotSupported) {
  Rng rng(20261122, Stream::kSuite);
  std::map<std::string, int64_t> taken, taken_forced;
  int64_t runs = 0, wrong = 0;
  const int64_t cases = for_each_sample(rng, 400, nullptr, [&](const SampledRun& x) {
    const Case& c = x.s.c;
    const CommonScales scales = common_scales(x.kv);
    for (std::optional<std::string> forced : {std::optional<std::string>(), std::optional<std::string>("v1"),
                                              std::optional<std::string>("hip"), std::optional<std::string>("asm")}) {
      Decision d;
      const KernelOutput out = paged_attention_common(x.s.dev, x.in, x.kv, scales, twins(), forced, nullptr, &d);
      ++runs;
      const std::string label = x.s.dev.name + (forced ? " forced=" + *forced : "") + " " + vars(c);
      (forced ? taken_forced : taken)[d.path ? *d.path : "refused"]++;
      if (!d.path) {
        EXPECT_EQ(out.status, Status::NotSupported) << label;
        EXPECT_EQ(out.reason, d.error()) << label;
        wrong += out.status != Status::NotSupported;
        continue;
      }
      std::string msg;
      const Status st = judged(*d.path, out, c, x.ref, &msg);  // a launch that did not run fails here too
      EXPECT_EQ(st, Status::Ok) << label << " via " << *d.path << ": " << msg;
      wrong += st != Status::Ok;
    }
  });
  std::printf("entry sample: %lld valid cases, %lld entry calls, %lld wrong\n", (long long)cases,
              (long long)runs, (long long)wrong);
  for (const auto& [name, k] : taken) std::printf("  routed  %-8s %lld\n", name.c_str(), (long long)k);
  for (const auto& [name, k] : taken_forced) std::printf("  forced  %-8s %lld\n", name.c_str(), (long long)k);
  EXPECT_GT(cases, 300);
  EXPECT_GT(taken["v1"], 0);
  EXPECT_GT(taken["hip"], 0);
  EXPECT_GT(taken["asm"], 0);
  EXPECT_GT(taken["refused"], 0);
}

Case small_shuffled(ScaleMode scale, DType kv = DType::fp8_e4m3fnuz) {
  return test::shaped_case(7, {300, 40}, 8, 2, 128, 16, kv, scale, KvLayout::shuffled);
}

TEST(Entry, ProvidedWorkspaceIsCheckedAgainstThePlan) {
  const Case c = small_shuffled(ScaleMode::per_tensor);
  const Inputs in = make_inputs(c);
  const PhysicalKv kv = pack(in);
  const CommonScales sc = common_scales(kv);
  const Decision d = select_path(device_mi300x(), c, twins());
  ASSERT_EQ(d.path, std::optional<std::string>("hip"));
  const int64_t exact = d.workspace_bytes;
  EXPECT_GT(exact, 0);
  EXPECT_EQ(paged_attention_common(device_mi300x(), in, kv, sc, twins(), std::nullopt, &exact).status, Status::Ok);
  const int64_t small = d.workspace_bytes - 1;
  try {
    paged_attention_common(device_mi300x(), in, kv, sc, twins(), std::nullopt, &small);
    FAIL() << "a short workspace was accepted";
  } catch (const InputError& e) {
    EXPECT_TRUE(contains(e.what(), "workspace too small for path hip: " + std::to_string(small) + " bytes")) << e.what();
  }
}

TEST(Entry, ThePathGetsTheScaleFormTheCacheWasWrittenWith) {
  const Device dev = device_mi300x();
  // Per-tensor cache: a checkpoint scale of 1.0 handed instead of the writer's scale is wrong
  // ("which answer you got depended on batch size"), and the verdict sees it.
  {
    const Case c = small_shuffled(ScaleMode::per_tensor);
    const Inputs in = make_inputs(c);
    const PhysicalKv kv = pack(in);
    const ReferenceResult ref = reference_attention(in);
    CommonScales sc = common_scales(kv);
    ASSERT_TRUE(sc.k_scale && *sc.k_scale != 1.f);
    const KernelOutput good = paged_attention_common(dev, in, kv, sc, twins(), std::nullopt);
    EXPECT_EQ(judged("hip", good, c, ref), Status::Ok);
    sc.k_scale = 1.f;
    sc.v_scale = 1.f;
    const KernelOutput bad = paged_attention_common(dev, in, kv, sc, twins(), std::nullopt);
    EXPECT_EQ(judged("hip", bad, c, ref), Status::Fail);
    sc.k_scale.reset();
    EXPECT_THROW(paged_attention_common(dev, in, kv, sc, twins(), std::nullopt), InputError);
  }
  // Per-token cache on both shuffled paths: the per-tensor form is ignored even when present.
  for (std::optional<std::string> forced : {std::optional<std::string>("hip"), std::optional<std::string>("asm")}) {
    const Case c = small_shuffled(ScaleMode::per_token_block_major);
    const Inputs in = make_inputs(c);
    const PhysicalKv kv = pack(in);
    const ReferenceResult ref = reference_attention(in);
    CommonScales sc = common_scales(kv);
    sc.k_scale = 1.f;
    sc.v_scale = 1.f;
    const KernelOutput out = paged_attention_common(dev, in, kv, sc, twins(), forced);
    ASSERT_EQ(out.status, Status::Ok) << out.reason;
    EXPECT_EQ(judged(*forced, out, c, ref), Status::Ok);
    sc.k_token.pop_back();
    EXPECT_THROW(paged_attention_common(dev, in, kv, sc, twins(), forced), InputError);
  }
}

TEST(Entry, HeadMajorTokenScalesAreReLaidForHip) {
  const Case c = small_shuffled(ScaleMode::per_token_head_major, DType::fp8_e4m3fnuz);
  const Inputs in = make_inputs(c);
  const PhysicalKv kv = pack(in);
  const ReferenceResult ref = reference_attention(in);
  Decision d;
  const KernelOutput out =
      paged_attention_common(device_mi300x(), in, kv, common_scales(kv), twins(), std::nullopt, nullptr, &d);
  ASSERT_EQ(d.path, std::optional<std::string>("hip")) << d.why;
  ASSERT_EQ(out.status, Status::Ok) << out.reason;
  EXPECT_EQ(judged("hip", out, c, ref), Status::Ok);
}

TEST(Entry, RefusalIsNotSupportedNamingEachPath) {
  Case c = small_shuffled(ScaleMode::none, DType::bf16);
  c.logit_softcap = 30;
  const Inputs in = make_inputs(c);
  const PhysicalKv kv = pack(in);
  const KernelOutput out = paged_attention_common(device_mi300x(), in, kv, common_scales(kv), twins(), std::nullopt);
  EXPECT_EQ(out.status, Status::NotSupported);
  EXPECT_TRUE(contains(out.reason, "v1: kv_layout=shuffled")) << out.reason;
  EXPECT_TRUE(contains(out.reason, "hip: logit_softcap=30")) << out.reason;
  EXPECT_TRUE(contains(out.reason, "asm: logit_softcap=30")) << out.reason;
}

// The environment override, like CK's force-kernel switch: PACHECK_FORCE_PATH picks the path when
// the API argument does not; a path that declines is a refusal naming it; a bad name is an error.
TEST(Entry, ForcePathEnvironmentVariable) {
  struct Env {
    explicit Env(const char* v) { setenv("PACHECK_FORCE_PATH", v, 1); }
    ~Env() { unsetenv("PACHECK_FORCE_PATH"); }
  };
  const Case c = small_shuffled(ScaleMode::none, DType::bf16);  // hip and asm both support it
  const Inputs in = make_inputs(c);
  const PhysicalKv kv = pack(in);
  Decision d;
  {
    Env env("asm");
    const KernelOutput out =
        paged_attention_common(device_mi300x(), in, kv, common_scales(kv), twins(), std::nullopt, nullptr, &d);
    EXPECT_EQ(out.status, Status::Ok) << out.reason;
    ASSERT_TRUE(d.path.has_value());
    EXPECT_EQ(*d.path, "asm") << d.why;
    // The API argument wins over the environment.
    paged_attention_common(device_mi300x(), in, kv, common_scales(kv), twins(), std::string("hip"), nullptr, &d);
    EXPECT_EQ(*d.path, "hip") << d.why;
  }
  {
    Env env("v1");  // v1 does not read the shuffled layout
    const KernelOutput out = paged_attention_common(device_mi300x(), in, kv, common_scales(kv), twins(), std::nullopt);
    EXPECT_EQ(out.status, Status::NotSupported);
    EXPECT_TRUE(contains(out.reason, "forced path v1")) << out.reason;
  }
  {
    Env env("fastest");
    EXPECT_THROW(paged_attention_common(device_mi300x(), in, kv, common_scales(kv), twins(), std::nullopt),
                 InputError);
  }
}

}  // namespace
}  // namespace pa
