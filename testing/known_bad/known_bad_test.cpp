// The known-bad kernels are wrong only where their bug bites: on a corpus case the bug cannot
// touch each one passes, so the mutation test's catch is the planted bug's doing and not an
// unrelated slip in a small kernel.
#include <gtest/gtest.h>

#include <algorithm>

#include "mutate/mutate.hpp"
#include "regression/corpus_check.hpp"
#include "testing/known_bad/known_bad.hpp"

namespace pa {
namespace {

RegressionCase corpus_case(const std::string& name) {
  return load_regression_case(corpus_dir() + "/" + name + ".json");
}

void expect_clean_where_the_bug_cannot_bite(const char* bug, const char* file, const char* why) {
  for (const KnownBad& kb : known_bad_host()) {
    if (std::string(kb.bug) != bug) continue;
    const KernelPtr k = std::make_shared<AbiKernel>(kb.kernel, "known-bad");
    const RegressionCase r = corpus_case(file);
    const std::vector<std::string> f = corpus_findings(r, with_replaced(builtin_kernels(Backend::host).all(), k));
    EXPECT_TRUE(f.empty()) << bug << " on " << file << " (" << why << "): " << f.front();
    return;
  }
  FAIL() << "no known-bad kernel " << bug;
}

TEST(KnownBad, MergeWithoutRescaleIsRightOnOnePartition) {
  expect_clean_where_the_bug_cannot_bite("merge_without_rescale", "gqa_head_mapping", "context 90 < partition 256");
}
TEST(KnownBad, CausalMaskIgnoredIsRightWithoutMtp) {
  expect_clean_where_the_bug_cannot_bite("causal_mask_ignored", "gqa_head_mapping", "q_len 1");
}
TEST(KnownBad, PaddedHeadsWrittenIsRightWhenGFillsTheTile) {
  expect_clean_where_the_bug_cannot_bite("padded_heads_written", "per_token_scale_physical_slot_asm", "G 8 = tile 8");
}

// Each known-bad kernel takes the cases its namesake takes, judged against data written apart from
// any descriptor: the incident corpus. A case whose dispatcher must choose the namesake, or that
// the namesake must pass, is admitted; a case every path must refuse is declined. (Comparing the
// two descriptors' declarations would compare an object with itself: both point at the same
// built-in table.)
TEST(KnownBad, TakesTheCorpusCasesItsNamesakeTakes) {
  const std::vector<RegressionCase> corpus = load_corpus(corpus_dir());
  for (const KnownBad& kb : known_bad_host()) {
    const AbiKernel k(kb.kernel, "known-bad");
    EXPECT_EQ(k.info().memory, Memory::host) << kb.bug;
    int admitted = 0, refused = 0;
    for (const RegressionCase& r : corpus) {
      const bool must_take = (r.expect_path && *r.expect_path == k.name()) ||
                             std::find(r.must_pass.begin(), r.must_pass.end(), k.name()) != r.must_pass.end();
      const bool all_refuse = !r.expect_path && r.must_pass.empty();
      const auto why = k.decline_reason(r.c, r.device);
      if (must_take) {
        ++admitted;
        EXPECT_FALSE(why.has_value()) << kb.bug << " declines " << r.file << ", which " << k.name() << " takes: " << *why;
      } else if (all_refuse) {
        ++refused;
        EXPECT_TRUE(why.has_value()) << kb.bug << " takes " << r.file << ", which every path must refuse";
      }
    }
    EXPECT_GT(admitted, 0) << "no corpus case names " << k.name() << ": nothing to compare " << kb.bug << " with";
    EXPECT_GT(refused, 0) << "no corpus refusal to compare " << kb.bug << " with";
  }
}

}  // namespace
}  // namespace pa
