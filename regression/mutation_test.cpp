// Mutation score of the regression corpus. Bugs are planted from outside: each contract mutant
// (mutate/) is wrapped around the built-in kernels it applies to, and each known-bad kernel
// (testing/known_bad/) replaces its namesake. For every one the corpus runs until the first
// finding, which must name the case file, the path and the metric. The unmutated set must be
// clean on the same corpus, so a catch is the planted bug's doing and nothing else's.
// Built twice: mutation_test judges the host twins; mutation_gpu_test (PA_MUTATION_ON_GPU, label
// gpu) the GPU kernels and the GPU known-bad kernels, skipping itself where there is no GPU.
#include <gtest/gtest.h>

#include <iostream>

#include "mutate/mutate.hpp"
#include "regression/corpus_check.hpp"
#include "testing/known_bad/known_bad.hpp"

namespace pa {

// Test names and failure messages show the bug, not the struct's bytes.
void PrintTo(const KnownBad& k, std::ostream* os) { *os << k.bug; }

namespace {

#ifdef PA_MUTATION_ON_GPU
constexpr Backend kBackend = Backend::gpu;
std::vector<KnownBad> known_bad() { return known_bad_gpu(); }
#define PA_NEED_BACKEND()                                       \
  do {                                                          \
    std::string why;                                            \
    if (!gpu_available(&why)) GTEST_SKIP() << "no GPU: " << why; \
  } while (0)
#else
constexpr Backend kBackend = Backend::host;
std::vector<KnownBad> known_bad() { return known_bad_host(); }
#define PA_NEED_BACKEND() \
  do {                    \
  } while (0)
#endif

const std::vector<RegressionCase>& corpus() {
  static const std::vector<RegressionCase> all = load_corpus(corpus_dir());
  return all;
}
std::vector<KernelPtr> builtin() { return builtin_kernels(kBackend).all(); }

/// The finding names the case file, the path and the metric, and tells how to replay it.
void expect_named(const Finding& f) {
  EXPECT_NE(f.file.find(".json"), std::string::npos) << f.text;
  EXPECT_FALSE(f.path.empty()) << f.text;
  EXPECT_FALSE(f.metric.empty()) << f.text;
  EXPECT_NE(f.replay.find("pacheck replay --case"), std::string::npos) << f.text;
}

/// The catalogue table of the closing note: what was planted and which case caught it how.
void print_caught(const std::string& name, const std::string& where, int checked, const Finding& f) {
  std::cout << "[ caught   ] " << name << " (" << where << ") after " << checked << " case(s): "
            << f.file.substr(f.file.rfind('/') + 1) << " path=" << f.path << " metric=" << f.metric << "\n";
}

TEST(Mutation, TheUnmutatedSetIsClean) {
  PA_NEED_BACKEND();
  for (const RegressionCase& r : corpus()) {
    const auto f = corpus_findings(r, builtin());
    EXPECT_TRUE(f.empty()) << f.front();
  }
}

class ContractMutation : public ::testing::TestWithParam<ContractMutantInfo> {};

TEST_P(ContractMutation, IsCaughtByTheCorpusNamingFilePathAndMetric) {
  PA_NEED_BACKEND();
  const ContractMutantInfo& m = GetParam();
  std::vector<KernelPtr> set = builtin();
  std::vector<std::string> wrapped;
  for (const KernelPtr& k : builtin())
    if (m.applies(k->info().capability)) {
      set = with_replaced(set, mutate(k, m.id));
      wrapped.push_back(k->name());
    }
  ASSERT_FALSE(wrapped.empty()) << m.name << " applies to no built-in kernel";
  int checked = 0;
  const std::optional<Finding> f = first_finding(set, corpus(), &checked);
  ASSERT_TRUE(f) << "mutant " << m.name << " (" << m.incident_class << ") in " << join(wrapped, ", ")
                 << " survived all " << checked << " corpus cases";
  expect_named(*f);
  print_caught(m.name, "in " + join(wrapped, ", "), checked, *f);
}

INSTANTIATE_TEST_SUITE_P(Catalogue, ContractMutation, ::testing::ValuesIn(contract_mutants()),
                         [](const auto& info) { return std::string(info.param.name); });

class KnownBadMutation : public ::testing::TestWithParam<KnownBad> {};

TEST_P(KnownBadMutation, SubstitutedForItsNamesakeIsCaught) {
  PA_NEED_BACKEND();
  const KnownBad& kb = GetParam();
  const KernelPtr bad = std::make_shared<AbiKernel>(kb.kernel, "known-bad");
  const std::vector<KernelPtr> set = with_replaced(builtin(), bad);
  int checked = 0;
  const std::optional<Finding> f = first_finding(set, corpus(), &checked);
  ASSERT_TRUE(f) << "known-bad " << bad->name() << " kernel " << kb.bug << " (" << kb.incident_class
                 << ") survived all " << checked << " corpus cases";
  EXPECT_EQ(f->path, bad->name()) << f->text;  // the finding names the kernel it replaced
  expect_named(*f);
  print_caught(kb.bug, "as " + bad->name(), checked, *f);
}

// A build without a GPU toolchain has no GPU known-bad kernels: the GPU suite is then empty.
INSTANTIATE_TEST_SUITE_P(Catalogue, KnownBadMutation, ::testing::ValuesIn(known_bad()),
                         [](const auto& info) { return std::string(info.param.bug); });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(KnownBadMutation);

}  // namespace
}  // namespace pa
