// check_kernel's contract apart from any kernel's correctness: property selection, "not
// applicable" instead of "passed", kernels the routing rule does not name (plug-ins), device
// kernels without a GPU, seeds and the printed report.
#include <gtest/gtest.h>

#include <sstream>

#include "property/check.hpp"

namespace pa {
namespace {

// A built-in descriptor under another name (and optionally memory): what a plug-in looks like
// to pacheck -- same declaration, a name the dispatcher's rule does not know.
KernelPtr renamed_twin(const char* twin, const char* name, int32_t memory = PACHECK_MEMORY_HOST) {
  static std::vector<std::unique_ptr<pacheck_kernel>> keep;  // descriptors outlive their kernels
  for (const pacheck_kernel* d : host_twin_descriptors())
    if (std::string(d->name) == twin) {
      keep.push_back(std::make_unique<pacheck_kernel>(*d));
      keep.back()->name = name;
      keep.back()->memory = memory;
      return std::make_shared<AbiKernel>(keep.back().get(), "check_test");
    }
  return nullptr;
}

prop::CheckOptions quick(std::vector<std::string> properties) {
  prop::CheckOptions o;
  o.cases = 15;
  o.seed = 7;
  o.properties = std::move(properties);
  o.capture = false;
  return o;
}

const prop::PropertyResult& result(const prop::CheckReport& r, const std::string& name) {
  for (const auto& p : r.results)
    if (p.name == name) return p;
  throw std::runtime_error("no result for " + name);
}

TEST(CheckKernel, RunsTheSelectedPropertiesInCanonicalOrder) {
  const std::vector<std::string> all = prop::property_names();
  ASSERT_EQ(all.size(), 15u);
  EXPECT_EQ(all.front(), "reference");
  const Registry reg = builtin_kernels(Backend::host);
  const auto rep = prop::check_kernel(reg.get("v1"), reg.all(), quick({"poison", "reference"}));
  ASSERT_EQ(rep.results.size(), 2u);
  EXPECT_EQ(rep.results[0].name, "reference");
  EXPECT_EQ(rep.results[1].name, "poison");
  EXPECT_TRUE(rep.passed());
}

TEST(CheckKernel, UnknownPropertyIsAnInputErrorNamingTheKnownOnes) {
  const Registry reg = builtin_kernels(Backend::host);
  try {
    prop::check_kernel(reg.get("v1"), reg.all(), quick({"nonsense"}));
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("nonsense"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("relocation"), std::string::npos) << e.what();
  }
}

TEST(CheckKernel, APropertyWhosePreconditionFailsIsNotApplicableNotPassed) {
  const Registry reg = builtin_kernels(Backend::host);
  const auto rep = prop::check_kernel(reg.get("v1"), reg.all(), quick({"split"}));
  const auto& r = result(rep, "split");
  EXPECT_FALSE(r.applicable);
  EXPECT_FALSE(r.passed);
  EXPECT_NE(r.message.find("PARTITION_OF_PAGES"), std::string::npos) << r.message;
  EXPECT_FALSE(rep.passed()) << "nothing was checked";
  std::ostringstream os;
  prop::print_check_report(os, rep);
  EXPECT_NE(os.str().find("n/a"), std::string::npos) << os.str();
  EXPECT_NE(os.str().find("nothing checked"), std::string::npos) << os.str();
}

// A property that never saw a case has shown nothing: when every draw is discarded -- by the
// generator (it cannot make a case) or by the body's precondition (RC_PRE) -- it fails, naming
// the last reason, and is neither passed nor skipped as not applicable.
prop::RunSettings settings(int cases) {
  prop::RunSettings s;
  s.cases = cases;
  s.seed = 11;
  s.capture = false;
  return s;
}

TEST(CheckCases, EveryDrawDiscardedByTheGeneratorFails) {
  const rc::Gen<Case> never = rc::gen::exec([]() -> Case { throw rc::GenerationFailure("nothing drawable here"); });
  const prop::PropertyResult r =
      prop::check_cases("never", never, [](const Case&) { return std::optional<std::string>(); }, settings(50));
  EXPECT_TRUE(r.applicable) << "an empty generator is a failure of the check, not a skip";
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.cases, 0);
  EXPECT_GT(r.discarded, 0);
  EXPECT_NE(r.message.find("every one of"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("nothing drawable here"), std::string::npos) << r.message;
}

TEST(CheckCases, EveryDrawDiscardedByThePreconditionFails) {
  const prop::PropertyResult r = prop::check_cases(
      "pre", rc::gen::just(Case{}),
      [](const Case&) -> std::optional<std::string> {
        RC_PRE(false);
        return std::nullopt;
      },
      settings(50));
  EXPECT_TRUE(r.applicable);
  EXPECT_FALSE(r.passed);
  EXPECT_NE(r.message.find("every one of"), std::string::npos) << r.message;
}

TEST(CheckCases, OnePassingCaseOutOfThreeHundredIsNotAPass) {
  int calls = 0;
  const prop::PropertyResult r = prop::check_cases(
      "one", rc::gen::just(Case{}),
      [&calls](const Case&) -> std::optional<std::string> {
        RC_PRE(++calls == 1);  // only the first draw is kept
        return std::nullopt;
      },
      settings(300));
  EXPECT_EQ(r.cases, 1);
  EXPECT_FALSE(r.passed) << r.message;
  EXPECT_NE(r.message.find("only 1 of 300"), std::string::npos) << r.message;
  prop::CheckReport rep;
  rep.results = {r};
  EXPECT_FALSE(rep.passed());
}

TEST(CheckKernel, AKernelTheRoutingRuleDoesNotNameIsRefusedCleanlyAndNotDispatched) {
  const KernelPtr mine = renamed_twin("hip", "mine");
  const Registry reg = builtin_kernels(Backend::host);
  std::vector<KernelPtr> all = reg.all();
  all.push_back(mine);
  prop::CheckOptions o = quick({"reference", "refusal", "dispatcher"});
  o.kernel_spec = "--kernel ./libmine.so:mine";
  const auto rep = prop::check_kernel(mine, all, o);
  EXPECT_TRUE(result(rep, "reference").passed) << result(rep, "reference").message;
  EXPECT_TRUE(result(rep, "refusal").passed) << result(rep, "refusal").message;
  EXPECT_FALSE(result(rep, "dispatcher").applicable);
  EXPECT_NE(result(rep, "dispatcher").message.find("does not name mine"), std::string::npos);
  EXPECT_TRUE(rep.passed());
}

TEST(CheckKernel, ADeviceKernelWithoutAGpuIsNotApplicableNamingWhy) {
  if (gpu_available()) GTEST_SKIP() << "a GPU is present";
  const KernelPtr fake = renamed_twin("v1", "fake_gpu", PACHECK_MEMORY_DEVICE);
  const auto rep = prop::check_kernel(fake, {fake}, quick({}));
  ASSERT_EQ(rep.results.size(), prop::property_names().size());
  for (const auto& r : rep.results) {
    EXPECT_FALSE(r.applicable) << r.name;
    EXPECT_NE(r.message.find("no GPU"), std::string::npos) << r.message;
  }
  EXPECT_FALSE(rep.passed());
}

TEST(CheckKernel, SeedZeroDrawsAFreshSeedAndPropertySeedsDifferByName) {
  const Registry reg = builtin_kernels(Backend::host);
  prop::CheckOptions o = quick({"refusal"});
  o.seed = 0;
  const auto a = prop::check_kernel(reg.get("asm"), reg.all(), o);
  const auto b = prop::check_kernel(reg.get("asm"), reg.all(), o);
  EXPECT_NE(a.seed, 0u);
  EXPECT_NE(a.seed, b.seed);
  EXPECT_EQ(prop::property_seed(5, "gqa"), prop::property_seed(5, "gqa"));
  EXPECT_NE(prop::property_seed(5, "gqa"), prop::property_seed(5, "split"));
  EXPECT_NE(prop::property_seed(5, "gqa"), prop::property_seed(6, "gqa"));
  EXPECT_EQ(a.results.at(0).seed, prop::property_seed(a.seed, "refusal"));
}

}  // namespace
}  // namespace pa
