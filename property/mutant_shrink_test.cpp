// The property suite catches a planted bug and shrinks it to a minimal, replayable case (issue 6).
// Linked against the test-only mutant build (core/mutants.hpp). With the V layout index of the
// hip host twin planted wrong, "path matches reference" must fail, shrink to at most 2 sequences
// and a context of at most 2 pages, save the case, and its replay line must reproduce the failure
// (and only with the mutant planted).
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/mutants.hpp"
#include "property/generators.hpp"
#include "property/harness.hpp"
#include "regression/corpus.hpp"

namespace pa {
namespace {

std::optional<std::string> hip_matches_reference(const Case& c) {
  const Inputs in = make_inputs(c);
  return prop::judge(PathId::hip, in, pack(in), reference_attention(in), device_mi300x());
}

// The replay line is `pacheck replay --case '<json>' --paths hip`: take the JSON back out.
Case case_from_replay(const std::string& line) {
  const size_t a = line.find('\''), b = line.rfind('\'');
  return case_from_json(nlohmann::json::parse(line.substr(a + 1, b - a - 1)));
}

class ShrinkToMinimal : public ::testing::TestWithParam<Mutant> {};

TEST_P(ShrinkToMinimal, FailsShrinksAndReplays) {
  const auto dir = std::filesystem::temp_directory_path() / (std::string("pacheck_mutant_capture_") + to_string(GetParam()));
  std::filesystem::remove_all(dir);
  prop::CheckOptions opt;
  opt.cases = 200;
  opt.replay_paths = {PathId::hip};
  opt.capture_dir = dir.string();
  opt.device = device_mi300x();
  prop::CheckResult r;
  {
    PlantedMutant planted(GetParam());
    r = prop::check_cases(std::string("mutant/") + to_string(GetParam()),
                          gen::case_in(PathId::hip, device_mi300x(), gen::Limits()), hip_matches_reference, opt);
  }
  ASSERT_FALSE(r.passed) << "the planted " << to_string(GetParam()) << " survived " << r.cases << " cases";
  ASSERT_TRUE(r.minimal.has_value());
  const Case& m = *r.minimal;
  std::cout << "[ minimal  ] " << vars(m) << "\n[ message  ] " << r.message << "\n[ replay   ] " << r.replay << "\n";
  EXPECT_LE(m.num_seqs, 2) << vars(m);
  EXPECT_LE(m.max_context(), 2 * m.block_size) << vars(m);
  EXPECT_NE(r.message.find("path=hip"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("metric="), std::string::npos) << r.message;

  // Saved as a regression case that loads and names the failing path.
  ASSERT_FALSE(r.captured_file.empty());
  const RegressionCase saved = load_regression_case(r.captured_file);
  EXPECT_EQ(vars(saved.c), vars(m));
  ASSERT_EQ(saved.must_pass.size(), 1u);
  EXPECT_EQ(saved.must_pass[0], PathId::hip);

  // The replay line reproduces the failure, and only the mutant makes it fail.
  const Case replayed = case_from_replay(r.replay);
  EXPECT_EQ(vars(replayed), vars(m));
  {
    PlantedMutant planted(GetParam());
    EXPECT_TRUE(hip_matches_reference(replayed).has_value()) << "replay did not reproduce the failure";
  }
  EXPECT_FALSE(hip_matches_reference(replayed).has_value()) << "the unmutated hip twin fails the replayed case";
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Mutants, ShrinkToMinimal,
                         ::testing::Values(Mutant::v_layout_index, Mutant::token_scale_logical_index,
                                           Mutant::merge_without_rescale, Mutant::gqa_h_mod_hkv),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace pa
