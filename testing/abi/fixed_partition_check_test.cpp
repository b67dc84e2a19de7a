// Acceptance test of a declared fixed split-K partition (label unit): `pacheck check`
// (check_kernel, the property harness behind it) finds a two-stage kernel's off-by-one at its
// fixed 512-token boundary within 1 s on the host, every time, and the case it reports has a
// context that is a multiple of 512. The bug (testing/abi/test_kernel.cpp, TK_SPLIT512_BUG) shows
// only there, so this holds only when the generators aim context lengths at the declared
// fixed_partition, not at the case's own partition_size (property/generators.cpp does).
#include <gtest/gtest.h>

#include <chrono>

#include "property/check.hpp"

namespace pa {
namespace {

TEST(FixedPartitionCheck, TheBoundaryBugIsFoundWithinOneSecondEveryTime) {
  const KernelPtr k = load_plugin(PA_TK_SPLIT512_BUG_SO).at(0);
  ASSERT_EQ(k->info().capability.fixed_partition, 512);
  for (uint64_t seed : {1, 2, 3, 4, 5, 6, 7, 8}) {
    prop::CheckOptions o;
    o.seed = seed;
    o.properties = {"reference"};
    o.capture = false;
    o.device = device_mi300x();
    const auto t0 = std::chrono::steady_clock::now();
    const prop::CheckReport r = prop::check_kernel(k, {k}, o);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_EQ(r.results.size(), 1u);
    const prop::PropertyResult& p = r.results[0];
    EXPECT_FALSE(p.passed) << "seed " << seed << ": " << p.cases << " cases passed";
    EXPECT_LT(s, 1.0) << "seed " << seed;
    if (!p.passed && p.minimal) {
      bool multiple = false;
      for (int32_t ctx : p.minimal->context_lens) multiple = multiple || (ctx > 0 && ctx % 512 == 0);
      EXPECT_TRUE(multiple) << "seed " << seed << ": " << vars(*p.minimal);
    }
  }
}

// The correct two-stage kernel passes the same check: the failure above is the bug's.
TEST(FixedPartitionCheck, TheCorrectTwoStageKernelPasses) {
  const KernelPtr k = load_plugin(PA_TK_SPLIT512_SO).at(0);
  prop::CheckOptions o;
  o.seed = 1;
  o.properties = {"reference"};
  o.capture = false;
  o.device = device_mi300x();
  const prop::CheckReport r = prop::check_kernel(k, {k}, o);
  ASSERT_EQ(r.results.size(), 1u);
  EXPECT_TRUE(r.results[0].passed) << r.results[0].message;
}

}  // namespace
}  // namespace pa
