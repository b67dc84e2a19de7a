// The property suite over pacheck's own kernels: one test per (built-in kernel, property), each a
// thin call of check_kernel (property/check.hpp), the same code `pacheck check --kernel X` runs.
// Host twins by default; PACHECK_PROPERTY_BACKEND=gpu checks the GPU kernels instead. Case counts
// scale with PACHECK_PROPERTY_SCALE / PACHECK_PROPERTY_LEVEL=nightly. Seeds come from the test
// name, so CI draws the same cases on every run of a commit and a red test is red again when
// rerun; RC_PARAMS="seed=N" overrides that, and the nightly level draws fresh seeds (printed).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <iostream>

#include <rapidcheck/detail/Configuration.h>

#include "inputs/inputs.hpp"
#include "core/prng.hpp"
#include "property/check.hpp"

namespace pa {
namespace {

const gen::Limits kLimits = gen::limits_from_env();

// Cases per property at ci level. Chosen so the whole property label stays near a minute on two
// cores: the comparison with the reference gets the most, the relations fewer.
int base_cases(const std::string& property) {
  if (property == "reference") return 300;
  if (property == "split") return 150;
  if (property == "dispatcher") return 100;
  if (property == "refusal") return 100;
  if (property == "gqa") return 60;
  return 70;  // relocation, kv_scale, poison
}

bool nightly() {
  const char* level = std::getenv("PACHECK_PROPERTY_LEVEL");
  return level && std::string(level) == "nightly";
}

// The test's seed: RC_PARAMS's when it names one, fresh at nightly level, else from the name.
uint64_t seed_for(const std::string& test) {
  const char* rc_params = std::getenv("RC_PARAMS");
  if (rc_params && std::string(rc_params).find("seed") != std::string::npos)
    return rc::detail::configuration().testParams.seed;
  if (nightly()) return 0;
  return fnv1a(test);
}

Backend backend() { return prop::property_backend(); }

// The kernels under test, built once (registration parses and checks every descriptor).
const Registry& kernels() {
  static const Registry r = builtin_kernels(backend());
  return r;
}

Device device_of_backend() { return backend() == Backend::gpu ? gpu_device() : device_mi300x(); }

struct Param {
  std::string kernel, property;
};
std::ostream& operator<<(std::ostream& os, const Param& p) { return os << p.kernel << "/" << p.property; }

std::vector<Param> params() {
  std::vector<Param> out;
  for (const KernelPtr& k : kernels().all())
    for (const std::string& p : prop::property_names()) out.push_back({k->name(), p});
  return out;
}

class KernelProperty : public ::testing::TestWithParam<Param> {};

TEST_P(KernelProperty, Holds) {
  const Param& p = GetParam();
  std::string why;
  if (backend() == Backend::gpu && !gpu_available(&why)) GTEST_SKIP() << "PACHECK_PROPERTY_BACKEND=gpu: " << why;
  prop::CheckOptions o;
  o.cases = prop::scaled_count(base_cases(p.property));
  o.seed = seed_for(p.kernel + "/" + p.property);
  o.properties = {p.property};
  o.device = device_of_backend();
  o.every_device_model = backend() == Backend::host;  // the twins model both fp8 flavours
  o.limits = kLimits;
  const prop::CheckReport rep = prop::check_kernel(kernels().get(p.kernel), kernels().all(), o);
  prop::print_check_report(std::cout, rep);
  ASSERT_EQ(rep.results.size(), 1u);
  const prop::PropertyResult& r = rep.results[0];
  if (!r.applicable) GTEST_SKIP() << "not applicable: " << r.message;
  EXPECT_TRUE(r.passed) << r.message << "\nminimal case: " << (r.minimal ? vars(*r.minimal) : "?")
                        << "\nreplay: " << r.replay << "\nsaved: " << r.captured_file
                        << "\nrerun these draws: RC_PARAMS=\"seed=" << rep.seed << "\" with this test's filter";
}

INSTANTIATE_TEST_SUITE_P(Builtin, KernelProperty, ::testing::ValuesIn(params()),
                         [](const ::testing::TestParamInfo<Param>& info) {
                           std::string n = info.param.kernel + "_" + info.param.property;
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(KernelProperty);

}  // namespace
}  // namespace pa
