#pragma once
// Runs one property over generated cases with a fixed case count and a known seed, and makes
// every failure replayable: RapidCheck shrinks it, the minimal case is printed as a one-line
// `pacheck replay` command and saved as JSON under regression/captured/, where the regression
// runner picks it up forever. (RapidCheck's own reproduce string goes stale when generators
// change; the decoded case does not.)
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <rapidcheck.h>

#include "core/case.hpp"
#include "core/device.hpp"
#include "core/metrics.hpp"
#include "kernels/kernel.hpp"
#include "reference/attention.hpp"

namespace pa::prop {

/// A property body: nullopt when the property holds for the case, else a one-line failure
/// message naming the kernel, the metric and the numbers. It may discard a case with RC_PRE.
using CaseProperty = std::function<std::optional<std::string>(const Case&)>;

/// What one property concluded about one kernel.
struct PropertyResult {
  std::string name;
  bool applicable = true;        // false: the property's precondition does not hold (message says why)
  bool passed = false;           // meaningful only when applicable
  int cases = 0;                 // cases that ran (successes, plus the failing one)
  int discarded = 0;             // draws thrown away (outside the kernel's supports(), RC_PRE)
  uint64_t seed = 0;             // the RapidCheck seed this property ran with
  std::optional<Case> minimal;   // the shrunk failing case
  std::string message;           // failure message, or why not applicable, or a note
  std::string replay;            // one command line reproducing the failure
  std::string captured_file;     // where it was saved (empty if capture disabled)
};

/// How check_cases runs and reports one property.
struct RunSettings {
  int cases = 100;
  uint64_t seed = 1;                       // RapidCheck's seed (deterministic)
  std::string kernel;                      // named in the replay line (--paths) and must_pass
  std::string property;                    // the property checked: "reference" (or "") replays
                                           // with `pacheck replay`, any other with `pacheck check`
  std::string kernel_spec;                 // "" for built-ins, else "--kernel PATH.so:NAME"
  bool capture = true;                     // save the minimal failing case (see capture_dir)
  std::string capture_dir;                 // empty = regression/captured of this checkout
  std::function<Device(const Case&)> device_of;  // the device a case ran on (recorded, replayed)
};

/// Runs `prop` on `settings.cases` draws of `gen`, shrinking any failure. Draws the generator
/// cannot make (rc::GenerationFailure) and RC_PRE rejections are discards. The property passes
/// only when all `settings.cases` cases ran and held: when RapidCheck gives up on too many
/// discards -- every draw discarded, or a single case out of hundreds -- the result is a failure
/// naming how many ran and the last discard reason. (A property whose precondition cannot hold for
/// a kernel says so before any draw, as PropertySpec::not_applicable.)
PropertyResult check_cases(const std::string& name, const rc::Gen<Case>& gen, const CaseProperty& prop,
                           const RunSettings& settings);

/// The cases plainly simpler than `c`, simplest first: one sequence fewer, one sequence with fewer
/// query tokens (1, half), one option or feature off (window, soft-cap, ALiBi, sinks, custom
/// scale, page padding, LLM-like values, table pads, Dv), then each context shorter (the
/// sequence's new tokens, one page, two pages, half, one page less, one token less).
/// The second shrink pass tries them (under the case's own input seed and seeds 1..3) after
/// RapidCheck's, and keeps any that still fails, so a minimal case is a local minimum of these.
std::vector<Case> simpler_cases(const Case& c);

/// The replay line of a failing case: `pacheck replay [SPEC] --case '<json>' --paths K
/// [--device D]` (the device only when it is a model other than the default mi300x). A property
/// other than "reference" replays as that same check on that case: `pacheck check [SPEC] --case
/// '<json>' --paths K --properties P --no-capture [--device D]`.
std::string replay_command(const Case& c, const std::string& kernel, const std::string& kernel_spec,
                           const Device& dev, const std::string& property = "");

/// Case count after PACHECK_PROPERTY_SCALE (a positive multiplier; nightly sets it higher).
int scaled_count(int base);

/// The backend the gtest suite checks: the GPU when PACHECK_PROPERTY_BACKEND=gpu (or auto with a
/// GPU present), else the host twins.
Backend property_backend();

/// The reference the properties judge against: the fp64 CPU oracle, or with
/// PACHECK_PROPERTY_REFERENCE=gpu the fp64 GPU oracle (reference_attention_device, held to
/// kOracleAgreement of the CPU one), for nightly sizes where the CPU oracle dominates the run.
/// A GPU request without a GPU throws InputError.
ReferenceResult reference(const Inputs& in);

/// The one judge (testbed/testbed.hpp judge()) of `out` against `ref` for kernel `k` on `c`, as
/// a property failure: nullopt when it passes, else "kernel=K metric=M (relation): message".
std::optional<std::string> judged(const Kernel& k, const Case& c, const KernelOutput& out, const ReferenceResult& ref,
                                  const std::string& relation);

/// `got` against `base` (two runs of one kernel that must agree) within the kernel's tolerance
/// on `in`'s case. Bitwise-equal outputs agree without computing the reference; otherwise the
/// reference's stats set the tolerance. nullopt when they agree, else
/// "kernel=K metric=M (relation): ...".
std::optional<std::string> agree(const Kernel& k, const Inputs& in, const KernelOutput& got, const KernelOutput& base,
                                 const std::string& relation);
/// "kernel=K did not run: ..." when either output is not Ok, else nullopt.
std::optional<std::string> did_not_run(const Kernel& k, const KernelOutput& a, const KernelOutput& b);

}  // namespace pa::prop
