// The entry point on the GPU: the same sample as entry_test, run through the GPU kernels on the present
// device (its real CU count and fp8 flavour, with the CU count scaled per case so both sides of
// the asm threshold are routed). GPU results are compared to the reference, never to a host twin.
#include "dispatch/entry.hpp"

#include <cstdio>
#include <map>

#include <gtest/gtest.h>

#include "testing/entry_sample.hpp"
#include "reference/attention.hpp"
#include "testbed/testbed.hpp"

namespace pa {
namespace {

TEST(EntryGpu, RoutedResultMatchesReferenceOnTheGpu) {
  std::string why;
  if (!gpu_available(&why)) GTEST_SKIP() << why;
  const Device gpu = gpu_device();
  const Registry reg = builtin_kernels(Backend::gpu);
  const std::vector<KernelPtr> gpu_kernels = reg.all();
  Rng rng(20261122, Stream::kSuite);
  std::map<std::string, int64_t> taken;
  int64_t cases = 0, wrong = 0;
  for (int n = 0; n < 400; ++n) {
    const test::Sampled s = test::sample_case(rng, &gpu);
    const Case& c = s.c;
    if (!validate(c).empty()) continue;
    ++cases;
    const Inputs in = make_inputs(c);
    const PhysicalKv kv = pack(in);
    const ReferenceResult ref = reference_attention(in);
    Decision d;
    const KernelOutput out = paged_attention_common(s.dev, in, kv, common_scales(kv), gpu_kernels, std::nullopt, nullptr, &d);
    taken[d.path ? *d.path : "refused"]++;
    const std::string label = s.dev.name + " " + vars(c);
    if (!d.path) {
      EXPECT_EQ(out.status, Status::NotSupported) << label;
      wrong += out.status != Status::NotSupported;
      continue;
    }
    ASSERT_EQ(out.status, Status::Ok) << label << ": " << out.reason;
    const PathRecord v = judge(*reg.get(*d.path), out, c, ref);  // the one judge
    EXPECT_EQ(v.status, Status::Ok) << label << " via " << *d.path << ": " << v.message;
    wrong += v.status != Status::Ok;
  }
  std::printf("entry gpu sample on %s: %lld cases, %lld wrong\n", gpu.name.c_str(), (long long)cases,
              (long long)wrong);
  for (const auto& [name, k] : taken) std::printf("  %-8s %lld\n", name.c_str(), (long long)k);
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(taken["hip"] + taken["asm"] + taken["v1"], 0);
}

TEST(EntryGpu, UnavailableGpuIsSkippedNotRun) {
  if (gpu_available()) GTEST_SKIP() << "a GPU is present";
  Case c;
  c.kv_layout = KvLayout::shuffled;
  const Inputs in = make_inputs(c);
  const PhysicalKv kv = pack(in);
  // Without a GPU no device kernel is registered, so nothing is routable: a refusal, not a crash.
  const KernelOutput out =
      paged_attention_common(device_mi300x(), in, kv, common_scales(kv), builtin_kernels(Backend::gpu).all(), std::nullopt);
  EXPECT_EQ(out.status, Status::NotSupported);
  EXPECT_TRUE(out.reason.find("no routable kernel") != std::string::npos) << out.reason;
}

}  // namespace
}  // namespace pa
