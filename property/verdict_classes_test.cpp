// The bug classes that hide inside the elementwise bound or in the LSE -- an output scaled by
// 1.03, truncated instead of rounded, an LSE off by log 2 -- and the one that needs LLM-like
// inputs to show -- a softmax without the running-max subtraction -- are each caught by
// `pacheck check` (the "reference" property, the one judge) on every built-in host twin they
// apply to, named by their metric, and shrunk to at most 2 sequences of at most 2 pages. The time
// each check takes is printed (a measurement, not an assertion).
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>

#include "mutate/contract_mutants.hpp"
#include "property/check.hpp"
#include "testing/known_bad/known_bad.hpp"

namespace pa {
namespace {

// (bug, kernel): a contract mutant around a built-in host twin, or a known-bad kernel (kernel "").
// Built lazily, inside the test: the registries are not ready during static initialisation.
struct Planted {
  std::string bug, kernel;
};

KernelPtr build(const Planted& p) {
  if (p.kernel.empty()) {
    for (const KnownBad& b : known_bad_host())
      if (p.bug == b.bug) return std::make_shared<AbiKernel>(b.kernel, "test-only known-bad kernel");
    return nullptr;
  }
  const KernelPtr k = builtin_kernels(Backend::host).get(p.kernel);
  const ContractMutant m = *parse_contract_mutant(p.bug);
  return applies(m, k->info().capability) ? mutate(k, m) : nullptr;
}

std::vector<Planted> planted() {
  std::vector<Planted> v;
  for (const char* m : {"output_scaled_1_03", "output_truncated", "lse_plus_log2"})
    for (const char* k : {"v1", "hip", "asm"}) v.push_back({m, k});
  v.push_back({"max_not_subtracted", ""});
  return v;
}

class VerdictClass : public ::testing::TestWithParam<Planted> {};

TEST_P(VerdictClass, CheckCatchesAndShrinks) {
  const Planted& p = GetParam();
  const KernelPtr kernel = build(p);
  if (!kernel) GTEST_SKIP() << p.bug << " does not apply to " << p.kernel;
  prop::CheckOptions o;
  o.cases = 200;
  o.seed = fnv1a("verdict_class/" + p.bug + "/" + p.kernel);  // fixed: the same shrink every run
  o.properties = {"reference"};
  o.device = device_mi300x();
  o.capture = false;
  const auto t0 = std::chrono::steady_clock::now();
  const prop::CheckReport rep = prop::check_kernel(kernel, {kernel}, o);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(rep.results.size(), 1u);
  const prop::PropertyResult& r = rep.results[0];
  ASSERT_TRUE(r.applicable) << r.message;
  ASSERT_FALSE(r.passed) << kernel->name() << " survived " << r.cases << " cases";
  ASSERT_TRUE(r.minimal.has_value());
  std::cout << "[ caught   ] " << kernel->name() << " after " << r.cases << " case(s), " << s << " s with shrinking: "
            << r.message.substr(0, r.message.find(':')) << "\n[ minimal  ] " << vars(*r.minimal) << "\n";
  EXPECT_LE(r.minimal->num_seqs, 2) << vars(*r.minimal);
  EXPECT_LE(r.minimal->max_context(), 2 * r.minimal->block_size) << vars(*r.minimal);
  EXPECT_NE(r.message.find("metric="), std::string::npos) << r.message;
  EXPECT_NE(r.replay.find("pacheck replay"), std::string::npos) << r.replay;
}

INSTANTIATE_TEST_SUITE_P(Classes, VerdictClass, ::testing::ValuesIn(planted()),
                         [](const auto& info) { return info.param.bug + (info.param.kernel.empty() ? "" : "_" + info.param.kernel); });

}  // namespace
}  // namespace pa
