// A failed check prints a line that runs that same check again: a metamorphic relation or the
// dispatcher property replays as `pacheck check --properties P --case '<json>'`, not as a plain
// `pacheck replay` (which only compares the kernel with the oracle and may well pass). For each
// kind a bug is planted (a contract mutant), the property fails, and the printed line -- parsed
// back into its case and property -- fails again with the planted kernel and passes without it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "mutate/contract_mutants.hpp"
#include "property/check.hpp"

namespace pa {
namespace {

struct Kind {
  const char* property;  // the check that fails
  const char* mutant;    // the bug planted around the kernel
  const char* kernel;    // the built-in host twin it is planted in
};

prop::CheckOptions options(const std::string& property) {
  prop::CheckOptions o;
  o.cases = 200;
  o.seed = fnv1a(std::string("replay_lines/") + property);
  o.properties = {property};
  o.device = device_mi300x();
  o.capture = false;
  return o;
}

class ReplayLine : public ::testing::TestWithParam<Kind> {};

TEST_P(ReplayLine, RunsTheSameCheckAndFailsAgain) {
  const Kind& k = GetParam();
  const KernelPtr plain = builtin_kernels(Backend::host).get(k.kernel);
  const KernelPtr bad = mutate(plain, *parse_contract_mutant(k.mutant));
  const prop::CheckReport rep = prop::check_kernel(bad, {bad}, options(k.property));
  ASSERT_EQ(rep.results.size(), 1u);
  const prop::PropertyResult& r = rep.results[0];
  ASSERT_TRUE(r.applicable) << r.message;
  ASSERT_FALSE(r.passed) << k.mutant << " survived the " << k.property << " property";
  // The line: pacheck check --case '<json>' --paths K --properties P --no-capture
  const std::string& line = r.replay;
  EXPECT_EQ(line.rfind("pacheck check ", 0), 0u) << line;
  EXPECT_NE(line.find(" --properties " + std::string(k.property)), std::string::npos) << line;
  EXPECT_NE(line.find(" --paths " + bad->name()), std::string::npos) << line;
  const size_t a = line.find('\''), b = line.rfind('\'');
  ASSERT_NE(a, b) << line;
  const Case c = case_from_json(nlohmann::json::parse(line.substr(a + 1, b - a - 1)));
  EXPECT_EQ(vars(c), vars(*r.minimal));

  // What the line runs: that property on that one case.
  prop::CheckOptions again = options(k.property);
  again.only = c;
  again.cases = 3;
  EXPECT_FALSE(prop::check_kernel(bad, {bad}, again).passed()) << "the printed line does not reproduce: " << line;
  EXPECT_TRUE(prop::check_kernel(plain, {plain}, again).passed()) << "the plain kernel fails the replayed case";
}

INSTANTIATE_TEST_SUITE_P(Kinds, ReplayLine,
                         ::testing::Values(Kind{"kv_scale", "per_tensor_scale_ignored", "v1"},
                                           Kind{"gqa", "gqa_h_mod_hkv", "hip"},
                                           Kind{"dispatcher", "v_layout_index", "hip"}),
                         [](const auto& info) { return std::string(info.param.property); });

// The plain comparison keeps `pacheck replay` (it shows every path's metrics).
TEST(ReplayLine, TheReferencePropertyReplaysWithReplay) {
  Case c;
  EXPECT_EQ(prop::replay_command(c, "hip", "", device_mi300x(), "reference").rfind("pacheck replay ", 0), 0u);
  const std::string w = prop::replay_command(c, "hip", "--kernel ./x.so:hip", device_mi355x(), "writer");
  EXPECT_EQ(w.rfind("pacheck check --kernel ./x.so:hip --case '", 0), 0u) << w;
  EXPECT_NE(w.find("--properties writer"), std::string::npos) << w;
  EXPECT_NE(w.find("--device mi355x"), std::string::npos) << w;
}

}  // namespace
}  // namespace pa
