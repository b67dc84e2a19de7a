// Mutation score of the regression corpus (issue 7). This executable is linked against the
// test-only mutant build (core/mutants.hpp): the host twins and select_path compiled with
// PACHECK_MUTANTS. For each planted bug the corpus runs until the first finding; every mutant must
// be caught, with a message naming the case file, the path and the metric. With no mutant planted
// the same build must be clean, so a catch is the mutant's doing and nothing else's.
// Built twice: mutation_test judges the host twins; mutation_gpu_test (PA_MUTATION_ON_GPU, label
// gpu) judges the GPU kernels, whose mutation points sit in attention.hip / gpu_paths.hip.
#include <gtest/gtest.h>

#include <iostream>

#include "core/mutants.hpp"
#include "regression/corpus_check.hpp"

namespace pa {
namespace {

const std::vector<RegressionCase>& corpus() {
  static const std::vector<RegressionCase> all = load_corpus(corpus_dir());
  return all;
}

#ifdef PA_MUTATION_ON_GPU
const std::vector<Backend> kBackends = {Backend::gpu};
#define PA_NEED_BACKEND() \
  do { std::string why; if (!gpu_available(&why)) GTEST_SKIP() << "no GPU: " << why; } while (0)
#else
const std::vector<Backend> kBackends = {Backend::host};
#define PA_NEED_BACKEND() do {} while (0)
#endif

TEST(Mutation, TheUnmutatedBuildIsClean) {
  PA_NEED_BACKEND();
  PlantedMutant none(Mutant::none);
  for (const auto& r : corpus()) {
    const auto f = corpus_findings(r, kBackends);
    EXPECT_TRUE(f.empty()) << f.front();
  }
}

class Mutation : public ::testing::TestWithParam<MutantInfo> {};

TEST_P(Mutation, IsCaughtByTheCorpusNamingPathCaseAndMetric) {
  PA_NEED_BACKEND();
  const MutantInfo& m = GetParam();
  PlantedMutant planted(m.id);
  std::string first;
  int checked = 0;
  for (const auto& r : corpus()) {
    ++checked;
    const auto f = corpus_findings(r, kBackends);
    if (!f.empty()) {
      first = f.front();
      break;
    }
  }
  ASSERT_FALSE(first.empty()) << "mutant " << m.name << " (" << m.incident_class
                              << ") survived all " << checked << " corpus cases";
  EXPECT_NE(first.find(".json: "), std::string::npos) << first;
  EXPECT_NE(first.find("path="), std::string::npos) << first;
  EXPECT_NE(first.find("metric="), std::string::npos) << first;
  // The catalogue table of the closing note: mutant, class, first catching case and message.
  std::cout << "[ caught   ] " << m.name << " (" << m.incident_class << ") after " << checked
            << " case(s): " << first.substr(first.rfind('/', first.find(".json")) + 1, 300) << "\n";
}

INSTANTIATE_TEST_SUITE_P(Catalogue, Mutation, ::testing::ValuesIn(mutant_catalogue()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace pa
