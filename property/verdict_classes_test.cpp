// The bug classes that hide inside the elementwise bound or in the LSE -- an output scaled by
// 1.03, truncated instead of rounded, an LSE off by log 2 -- and the one that needs LLM-like
// inputs to show -- a softmax without the running-max subtraction -- are each caught by
// `pacheck check` (the "reference" property, the one judge) on every built-in host twin they
// apply to, named by their metric, and shrunk to at most 2 sequences of at most 2 pages (or,
// where no 2-page case shows the class, to a case no plainly simpler case of which fails). The time
// each check takes is printed (a measurement, not an assertion).
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <stdexcept>

#include "inputs/inputs.hpp"
#include "mutate/contract_mutants.hpp"
#include "property/check.hpp"
#include "property/harness.hpp"
#include "testbed/testbed.hpp"
#include "testing/known_bad/known_bad.hpp"

namespace pa {
namespace {

// (bug, kernel): a contract mutant around a built-in host twin, or a known-bad kernel (kernel "").
// Built lazily, inside the test: the registries are not ready during static initialisation.
struct Planted {
  std::string bug, kernel;
  std::string property = "reference";  // the property that must catch it
};

// nullptr only when a contract mutant does not apply to that twin. A known-bad kernel the list
// names but the build lacks (renamed, removed) throws naming the known ones, so its class fails
// instead of being skipped forever.
KernelPtr build(const Planted& p) {
  if (p.kernel.empty()) {
    std::string known;
    for (const KnownBad& b : known_bad_host()) {
      if (p.bug == b.bug) return std::make_shared<AbiKernel>(b.kernel, "test-only known-bad kernel");
      known += std::string(known.empty() ? "" : ", ") + b.bug;
    }
    throw std::runtime_error("no known-bad kernel '" + p.bug + "' in testing/known_bad (known: " + known + ")");
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
  // The ragged family's bug classes, each a known-bad unified kernel.
  for (const char* b : {"packed_offset_ignored", "v_with_qk_head_size", "empty_row_finite_lse",
                        "last_page_padding_attended", "csr_last_page_len_ignored", "lse_base2_declared_natural"})
    v.push_back({b, ""});
  // The MLA family's bug classes, each a known-bad mla or mla_split kernel.
  for (const char* b : {"mla_v_from_rope", "mla_rope_dropped", "mla_scale_default", "mla_merge_without_rescale",
                        "mla_fp8_scale_ignored", "mla_padded_heads_written"})
    v.push_back({b, ""});
  // The anti-gaming classes: state kept from launch to launch.
  for (const char* b : {"cached_by_pointer", "second_call_differs"}) v.push_back({b, "", "repeat"});
  return v;
}

Status judged(const Kernel& k, const Case& c, const Device& dev) {
  const Inputs in = make_inputs(c);
  const PhysicalKv kv = pack(in);
  return run_and_judge(k, c, make_call(in, kv), reference_attention(in), dev).status;
}

// The whole check of one class: plant, check, expect it caught, named and shrunk.
void check_class(const Planted& p) {
  KernelPtr kernel;
  try {
    kernel = build(p);
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  if (!kernel) GTEST_SKIP() << p.bug << " does not apply to " << p.kernel;
  prop::CheckOptions o;
  o.cases = 200;
  o.seed = fnv1a("verdict_class/" + p.bug + "/" + p.kernel);  // fixed: the same shrink every run
  o.properties = {p.property};
  o.device = device_mi300x();
  o.capture = false;
  const auto t0 = std::chrono::steady_clock::now();
  const prop::CheckReport rep = prop::check_kernel(kernel, {kernel}, o);
  if (p.property != "reference") {  // a class of launch state: caught, named, with its replay line
    ASSERT_EQ(rep.results.size(), 1u);
    const prop::PropertyResult& r = rep.results[0];
    ASSERT_TRUE(r.applicable) << r.message;
    ASSERT_FALSE(r.passed) << kernel->name() << " survived " << r.cases << " cases";
    ASSERT_TRUE(r.minimal.has_value());
    std::cout << "[ caught   ] " << kernel->name() << " (" << p.bug << ") by " << p.property << " after " << r.cases
              << " case(s): " << r.message.substr(0, 160) << "\n[ minimal  ] " << vars(*r.minimal) << "\n";
    EXPECT_LE(r.minimal->num_seqs, 2) << vars(*r.minimal);
    EXPECT_NE(r.message.find("metric="), std::string::npos) << r.message;
    EXPECT_NE(r.replay.find("--properties " + p.property), std::string::npos) << r.replay;
    return;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(rep.results.size(), 1u);
  const prop::PropertyResult& r = rep.results[0];
  ASSERT_TRUE(r.applicable) << r.message;
  ASSERT_FALSE(r.passed) << kernel->name() << " survived " << r.cases << " cases";
  ASSERT_TRUE(r.minimal.has_value());
  std::cout << "[ caught   ] " << kernel->name() << " after " << r.cases << " case(s), " << s << " s with shrinking: "
            << r.message.substr(0, r.message.find(':')) << "\n[ minimal  ] " << vars(*r.minimal) << "\n";
  EXPECT_LE(r.minimal->num_seqs, 2) << vars(*r.minimal);
  if (r.minimal->max_context() > 2 * r.minimal->block_size) {
    // Longer than two pages only where no plainly simpler case fails: a statistical class under
    // noisy numerics (a truncation's half-ulp bias under asm's bf16 P needs a long context and
    // thousands of elements to stand out of the declared noise) has no 2-page witness.
    for (Case d : prop::simpler_cases(*r.minimal)) {
      if (!validate(d).empty() || kernel->decline_reason(d, o.device).has_value()) continue;
      for (const uint64_t seed : {r.minimal->seed, uint64_t(1), uint64_t(2), uint64_t(3)}) {
        d.seed = seed;
        EXPECT_EQ(judged(*kernel, d, o.device), Status::Ok)
            << "the minimal case " << vars(*r.minimal) << " is not minimal: " << vars(d) << " fails too";
      }
    }
  }
  EXPECT_NE(r.message.find("metric="), std::string::npos) << r.message;
  EXPECT_NE(r.replay.find("pacheck replay"), std::string::npos) << r.replay;
  // What the replay line runs -- the minimal case, judged again -- fails again.
  EXPECT_EQ(judged(*kernel, *r.minimal, o.device), Status::Fail) << "the minimal case passed when replayed: "
                                                                  << vars(*r.minimal);
}

class VerdictClass : public ::testing::TestWithParam<Planted> {};

TEST_P(VerdictClass, CheckCatchesAndShrinks) { check_class(GetParam()); }

// A known-bad kernel renamed in testing/known_bad (or dropped from the build) makes its class
// fail, not skip: the class list names it, the build no longer has it.
TEST(VerdictClassList, ARenamedKnownBadKernelFailsTheClass) {
  EXPECT_FATAL_FAILURE(check_class({"max_not_subtracted_renamed", ""}), "no known-bad kernel 'max_not_subtracted_renamed'");
}

INSTANTIATE_TEST_SUITE_P(Classes, VerdictClass, ::testing::ValuesIn(planted()),
                         [](const auto& info) { return info.param.bug + (info.param.kernel.empty() ? "" : "_" + info.param.kernel); });

}  // namespace
}  // namespace pa
