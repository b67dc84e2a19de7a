// `pacheck bench` judges each kernel before its timing loop and again after it (label unit): the
// known-bad kernel that answers differently once it has been called before -- a kernel that passes
// its check and then serves another answer to the timed launches -- is reported Fail, named, and
// left out of the records; a built-in kernel that answers the same stays Ok.
#include <gtest/gtest.h>

#include "bench/bench.hpp"
#include "testing/known_bad/known_bad.hpp"

namespace pa {
namespace {

TEST(BenchRecheck, AKernelThatChangesAfterItsTimingLoopIsAFailNotATime) {
  KernelPtr bad;
  for (const KnownBad& kb : known_bad_host())
    if (std::string(kb.bug) == "second_call_differs") bad = std::make_shared<AbiKernel>(kb.kernel, "known-bad");
  ASSERT_TRUE(bad);
  const KernelPtr good = builtin_kernels(Backend::host).get("v1");
  Case c;
  c.name = "recheck";
  c.num_seqs = 2;
  c.num_q_heads = 8;
  c.num_kv_heads = 1;
  c.head_size = 128;
  c.context_lens = {200, 200};
  c.kv_layout = KvLayout::nhd;
  bench::Options o;
  o.timing.warmup = 1;
  o.timing.repetitions = 3;
  for (const KernelPtr& k : {bad, good}) {
    SCOPED_TRACE(k->name() + " from " + k->info().source);
    const std::vector<bench::PointResult> r = bench::run({{"recheck", c}}, {k}, device_mi300x(), o);
    ASSERT_EQ(r.size(), 1u);
    ASSERT_EQ(r[0].kernels.size(), 1u);
    const bench::KernelPoint& kp = r[0].kernels[0];
    if (k == bad) {
      EXPECT_EQ(kp.status, Status::Fail) << kp.message;
      EXPECT_NE(kp.message.find("changed after its timing loop"), std::string::npos) << kp.message;
      EXPECT_TRUE(bench::records(r).empty());
    } else {
      EXPECT_EQ(kp.status, Status::Ok) << kp.message;
      EXPECT_EQ(bench::records(r).size(), 1u);
    }
  }
}

}  // namespace
}  // namespace pa
