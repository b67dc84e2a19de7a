// The known-bad kernels are wrong only where their bug bites: on a corpus case the bug cannot
// touch each one passes, so the mutation test's catch is the planted bug's doing and not an
// unrelated slip in a small kernel.
#include <gtest/gtest.h>

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

TEST(KnownBad, DescriptorsCarryTheirNamesakesDeclaration) {
  const Registry builtin = builtin_kernels(Backend::host);
  for (const KnownBad& kb : known_bad_host()) {
    const AbiKernel k(kb.kernel, "known-bad");
    const KernelPtr twin = builtin.get(k.name());
    EXPECT_EQ(describe(k.info().capability), describe(twin->info().capability)) << kb.bug;
    EXPECT_EQ(k.info().memory, Memory::host);
  }
}

}  // namespace
}  // namespace pa
