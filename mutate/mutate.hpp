#pragma once
// `pacheck mutate` as a library function: the mutation score of the regression corpus (plus
// cases generated inside each kernel's declaration) against a set of kernels under test. For
// every contract mutant that applies to a kernel, the kernel is wrapped (replaced by name in the
// set) and the cases run until the first finding; a mutant nothing finds is a hole in the
// corpus, a kernel-specific blind spot the generated cases did not reach either, or -- for the
// aggregate mutants -- a verdict without aggregate checks.
//
// Generated cases matter for plug-ins: the corpus is written for pacheck's own paths, so most of
// its cases lie outside a plug-in's capability and would leave every mutant alive.
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "kernels/kernel.hpp"
#include "mutate/contract_mutants.hpp"
#include "regression/corpus.hpp"

namespace pa {

/// One finding of corpus_findings, split into its fields.
struct Finding {
  std::string file;     // the case file, or "generated:<kernel>#<n>"
  std::string path;     // the kernel the finding names, or "auto" (the dispatcher's decision)
  std::string backend;  // "host" / "gpu"; empty for decision findings
  std::string metric;   // "decision", "outside_tolerance", "nan", "capability", ...
  std::string message;  // what the judge said
  std::string replay;   // one command line that reproduces the case
  std::string text;     // the whole finding as corpus_findings wrote it
};
Finding parse_finding(const std::string& text);

/// The first finding of `kernels` over `cases`, in order (nullopt: every case is clean).
/// `cases_run` (optional) receives how many cases ran, the finding's own included.
std::optional<Finding> first_finding(const std::vector<KernelPtr>& kernels, const std::vector<RegressionCase>& cases,
                                     int* cases_run = nullptr);

/// `set` with the kernel of `k`'s name replaced by `k` (appended when the set has none).
std::vector<KernelPtr> with_replaced(const std::vector<KernelPtr>& set, const KernelPtr& k);

/// `count` cases inside `k`'s declaration, drawn by the property suite's generator (gen::case_in)
/// from `seed` (the same seed gives the same cases everywhere): boundary context lengths (1, B-1,
/// B, B+1, 2B+1, partition +-1, ...), 1-3 sequences, GQA groups, MTP, strided pages, split-K
/// partitions and each declared option; the first draws cover every KV dtype `k` declares
/// (fp8_e5m2 included), each on the device model that decodes it. Each is a RegressionCase named
/// "generated:<kernel>#<n>" that `k` must pass and that makes no dispatcher claim.
std::vector<RegressionCase> generated_cases(const Kernel& k, int count, uint64_t seed = 1);

struct MutantResult {
  ContractMutant mutant{};
  std::string name, incident_class;
  bool aggregate = false;  // only aggregate checks of the verdict can see it
  std::string kernel;      // the kernel it was planted in
  bool caught = false;
  std::string source;      // "corpus" or "generated": where the first finding came from
  Finding finding;         // the first finding (when caught)
  int cases_run = 0;       // corpus + generated cases run until the first finding (or all)
};

struct MutationReport {
  std::vector<std::string> kernels;    // the kernels mutants were planted in
  bool clean = true;                   // the unmutated set passes every case
  std::vector<std::string> not_clean;  // its findings: with any, the score is not meaningful
  int corpus_cases = 0;
  int generated_per_kernel = 0;
  std::vector<MutantResult> results;   // one per (mutant, kernel it applies to)

  /// Over every kernel when `kernel` is empty.
  int caught(const std::string& kernel = "") const;
  int total(const std::string& kernel = "") const;
};

struct MutationOptions {
  std::vector<std::string> targets;     // kernels to plant mutants in; empty = every kernel under test
  std::vector<ContractMutant> mutants;  // empty = the whole catalogue
  int generated_cases = 100;            // per target kernel; 0 = the corpus only
  uint64_t seed = 1;
  std::function<void(const MutantResult&)> on_result;  // called as each mutant is decided
};

/// The mutation score of `corpus` plus generated cases against `kernels_under_test`. Throws
/// InputError for a target that is not in the set.
MutationReport mutation_score(const std::vector<KernelPtr>& kernels_under_test,
                              const std::vector<RegressionCase>& corpus, const MutationOptions& options = {});

/// One line per mutant (name, kernel, caught / SURVIVED, case file, metric) and per kernel the
/// catch rate: "caught 12/12 contract mutants that apply to hip".
void print_mutation_report(std::ostream& os, const MutationReport& report);

}  // namespace pa
