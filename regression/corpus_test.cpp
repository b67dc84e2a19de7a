// The regression runner as a test: every case in regression/cases (incidents, model configs) and
// regression/captured (failures the property suite shrank and saved) runs through the testbed on
// every path, on the host backend in CI (and on the GPU too when one is present). Each file's
// expected dispatcher decision holds, each must_pass path passes, and every other path either
// passes or declines: a path that runs a case it supports and gets it wrong fails here, naming
// the file, the path and the metric.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "regression/corpus.hpp"
#include "regression/corpus_check.hpp"
#include "testbed/testbed.hpp"
#include "testing/input_error.hpp"

namespace pa {
namespace {

std::vector<RegressionCase> all_cases() {
  std::vector<RegressionCase> all = load_corpus(corpus_dir());
  if (std::filesystem::is_directory(captured_dir()))
    for (auto& r : load_corpus(captured_dir())) all.push_back(std::move(r));
  return all;
}

class Corpus : public ::testing::TestWithParam<RegressionCase> {};

TEST_P(Corpus, DecisionAndEveryPathMatchTheReference) {
  std::string all;
  for (const auto& kernels : available_kernel_sets())
    for (const auto& f : corpus_findings(GetParam(), kernels)) all += "\n" + f;
  EXPECT_TRUE(all.empty()) << all;
}

INSTANTIATE_TEST_SUITE_P(Regression, Corpus, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) { return info.param.name; });

TEST(CorpusFiles, MissingOrCorruptFilesAreClearErrorsNamingTheFile) {
  const auto dir = std::filesystem::temp_directory_path() / "pacheck_corpus_test";
  std::filesystem::create_directories(dir);
  const std::string bad = (dir / "bad.json").string();
  for (const char* text : {"{oops", "{\"case\": {\"num_seqs\": 0, \"context_lens\": []}}",
                           "{\"case\": {}, \"expect\": {\"path\": 3}}", "{\"case\": {}, \"expect\": {\"path\": \"\"}}",
                           "{\"case\": {}, \"device\": \"mi999\"}"}) {
    std::ofstream(bad) << text;
    const std::string e = test::input_error([&] { load_regression_case(bad); });
    EXPECT_NE(e.find(bad), std::string::npos) << "accepted, or an error not naming the file: " << text << ": " << e;
  }
  try {
    load_regression_case((dir / "absent.json").string());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("absent.json"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST(CorpusFiles, EveryIncidentOfTheDesignHasACase) {
  const auto all = load_corpus(corpus_dir());
  int incidents = 0, models = 0;
  for (const auto& r : all) {
    EXPECT_FALSE(r.description.empty()) << r.file;
    incidents += r.kind == "incident";
    models += r.kind == "model";
  }
  EXPECT_GE(incidents, 10);
  EXPECT_GE(models, 10);
}

TEST(CorpusFiles, CapturedCasesRoundTrip) {
  const auto dir = std::filesystem::temp_directory_path() / "pacheck_capture_test";
  Case c;
  c.context_lens = {5};
  const std::string f = capture_case(dir.string(), c, "test capture", device_mi355x(), {"hip"});
  const RegressionCase r = load_regression_case(f);
  EXPECT_EQ(vars(r.c), vars(c));
  EXPECT_EQ(r.device.name, "mi355x");
  ASSERT_EQ(r.must_pass.size(), 1u);
  EXPECT_EQ(r.must_pass[0], "hip");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pa
