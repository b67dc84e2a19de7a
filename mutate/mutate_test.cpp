// The mutation score as a library function: the case generator stays inside a kernel's
// declaration, findings split into their fields, and the score of the built-in set and of a
// plug-in (a kernel the corpus does not address by name) catches every mutant but the aggregate
// ones, naming where.
#include <gtest/gtest.h>

#include <iostream>
#include <set>
#include <sstream>

#include "mutate/mutate.hpp"

namespace pa {
namespace {

const std::vector<RegressionCase>& corpus() {
  static const std::vector<RegressionCase> all = load_corpus(corpus_dir());
  return all;
}

// A plug-in as pacheck sees one: the v1 host twin's descriptor under a name no corpus case
// expects, so only cases drawn inside its declaration exercise it.
KernelPtr plugin() {
  static const pacheck_kernel desc = [] {
    pacheck_kernel d = *host_twin_descriptors()[0];
    EXPECT_STREQ(d.name, "v1");
    d.name = "my_plugin";
    return d;
  }();
  return std::make_shared<AbiKernel>(&desc, "test plug-in");
}

TEST(GeneratedCases, StayInsideTheDeclarationAndRepeat) {
  const Registry builtin = builtin_kernels(Backend::host);
  for (const KernelPtr& k : builtin.all()) {
    const std::vector<RegressionCase> a = generated_cases(*k, 60, 7), b = generated_cases(*k, 60, 7);
    ASSERT_EQ(a.size(), 60u) << k->name();
    std::set<int32_t> ctx_mod_b;
    int mtp = 0, strided = 0, multi_seq = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(vars(a[i].c), vars(b[i].c));
      EXPECT_TRUE(validate(a[i].c).empty()) << a[i].file;
      EXPECT_FALSE(k->decline_reason(a[i].c, a[i].device)) << a[i].file << ": " << *k->decline_reason(a[i].c, a[i].device);
      EXPECT_EQ(a[i].must_pass, std::vector<std::string>{k->name()});
      for (int32_t c : a[i].c.context_lens) ctx_mod_b.insert(c % a[i].c.block_size);
      mtp += a[i].c.q_len > 1;
      strided += a[i].c.page_pad > 0;
      multi_seq += a[i].c.num_seqs > 1;
    }
    EXPECT_TRUE(ctx_mod_b.count(0) && ctx_mod_b.count(1)) << k->name() << ": page boundaries are drawn";
    EXPECT_GT(mtp, 0) << k->name();
    EXPECT_GT(strided, 0) << k->name();
    EXPECT_GT(multi_seq, 0) << k->name();
    EXPECT_NE(vars(generated_cases(*k, 1, 8)[0].c), vars(a[0].c)) << "the seed picks the cases";
  }
}

// Every KV dtype a kernel declares is drawn, each on a device model that decodes it: fp8_e5m2
// (v1 declares it) and both e4m3 flavours (on MI300X's and MI355X's models).
TEST(GeneratedCases, DrawEveryDeclaredKvDtype) {
  const Registry builtin = builtin_kernels(Backend::host);
  for (const KernelPtr& k : builtin.all()) {
    std::set<DType> declared, drawn;
    for (int t = 0; t < kDTypeCount; ++t)
      if (DType(t) != DType::fp32 && (k->info().capability.kv_dtypes & bit(DType(t)))) declared.insert(DType(t));
    for (const RegressionCase& r : generated_cases(*k, 20, 3)) {
      drawn.insert(r.c.kv_dtype);
      EXPECT_FALSE(k->decline_reason(r.c, r.device)) << r.file << " on " << r.device.name;
    }
    EXPECT_EQ(drawn, declared) << k->name();
  }
  EXPECT_TRUE(builtin.get("v1")->info().capability.kv_dtypes & bit(DType::fp8_e5m2));
}

TEST(Findings, SplitIntoTheirFields) {
  const Finding f = parse_finding(
      "/x/regression/cases/a.json: path=hip backend=host metric=outside_tolerance: 3/8 elements outside"
      "\n    replay: pacheck replay --case '{}' --paths hip");
  EXPECT_EQ(f.file, "/x/regression/cases/a.json");
  EXPECT_EQ(f.path, "hip");
  EXPECT_EQ(f.backend, "host");
  EXPECT_EQ(f.metric, "outside_tolerance");
  EXPECT_EQ(f.message, "3/8 elements outside");
  EXPECT_EQ(f.replay, "pacheck replay --case '{}' --paths hip");
  const Finding d = parse_finding("b.json: path=auto metric=decision: expected hip, chose asm (rule)");
  EXPECT_EQ(d.path, "auto");
  EXPECT_EQ(d.metric, "decision");
  EXPECT_TRUE(d.backend.empty());
  EXPECT_EQ(d.message, "expected hip, chose asm (rule)");
}

void expect_every_mutant_caught_but_the_aggregate_ones(const MutationReport& rep) {
  EXPECT_TRUE(rep.clean) << (rep.not_clean.empty() ? "" : rep.not_clean.front());
  for (const MutantResult& r : rep.results) {
    // An aggregate mutant may hide on one kernel whose declared numerics (P rounded to the q dtype)
    // widen the bias bound; the catalogue test requires each one caught in the built-in set.
    if (r.aggregate && !r.caught) continue;
    EXPECT_TRUE(r.caught) << r.name << " in " << r.kernel << " survived " << r.cases_run << " cases";
    if (!r.caught) continue;
    EXPECT_FALSE(r.finding.file.empty());
    EXPECT_FALSE(r.finding.metric.empty());
    EXPECT_FALSE(r.finding.replay.empty());
  }
}

TEST(MutationScore, OfTheBuiltInHostSet) {
  MutationOptions o;
  o.generated_cases = 60;
  const MutationReport rep = mutation_score(builtin_kernels(Backend::host).all(), corpus(), o);
  std::ostringstream text;
  print_mutation_report(text, rep);
  std::cout << text.str();
  expect_every_mutant_caught_but_the_aggregate_ones(rep);
  EXPECT_EQ(rep.kernels, (std::vector<std::string>{"v1", "hip", "asm", "unified", "unified_split", "mla", "mla_split"}));
  EXPECT_NE(text.str().find("contract mutants that apply to asm"), std::string::npos);
}

TEST(MutationScore, OfAPlugInComesFromGeneratedCases) {
  const KernelPtr k = plugin();
  const MutationReport rep = mutation_score({k}, corpus());
  std::ostringstream text;
  print_mutation_report(text, rep);
  std::cout << text.str();
  expect_every_mutant_caught_but_the_aggregate_ones(rep);
  int generated = 0;
  for (const MutantResult& r : rep.results) generated += r.source == "generated";
  EXPECT_GT(generated, 0);
  EXPECT_NE(text.str().find("contract mutants that apply to my_plugin"), std::string::npos);
}

TEST(MutationScore, NamesAnUnknownTarget) {
  MutationOptions o;
  o.targets = {"nope"};
  try {
    (void)mutation_score(builtin_kernels(Backend::host).all(), corpus(), o);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pa
