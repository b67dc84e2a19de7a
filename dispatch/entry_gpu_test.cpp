// The entry point on the GPU: the same sample as entry_test, run through the GPU kernels on the present
// device (its real CU count and fp8 flavour, with the CU count scaled per case so both sides of
// the asm threshold are routed). GPU results are compared to the reference, never to a host twin.
#include "dispatch/entry.hpp"

#include <cstdio>
#include <map>

#include <gtest/gtest.h>

#include "testing/entry_sample_test.hpp"
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
  int64_t wrong = 0;
  const int64_t cases = test::for_each_sample(rng, 400, &gpu, [&](const test::SampledRun& x) {
    Decision d;
    const KernelOutput out =
        paged_attention_common(x.s.dev, x.in, x.kv, common_scales(x.kv), gpu_kernels, std::nullopt, nullptr, &d);
    taken[d.path ? *d.path : "refused"]++;
    const std::string label = x.s.dev.name + " " + vars(x.s.c);
    if (!d.path) {
      EXPECT_EQ(out.status, Status::NotSupported) << label;
      wrong += out.status != Status::NotSupported;
      return;
    }
    const PathRecord v = judge(*reg.get(*d.path), out, x.s.c, x.ref);  // the one judge
    EXPECT_EQ(v.status, Status::Ok) << label << " via " << *d.path << ": " << v.message;
    wrong += v.status != Status::Ok;
  });
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
