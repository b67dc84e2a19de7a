#pragma once
// Runs a property over generated cases with a fixed case count, and makes every failure
// replayable: the minimal (shrunk) failing case is printed as a one-line `pacheck replay` command
// and saved as JSON under regression/captured/, where the regression runner picks it up forever.
// (RapidCheck's own reproduce string goes stale when generators change; the decoded case does not.)
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <rapidcheck.h>

#include "core/case.hpp"
#include "dispatch/capability.hpp"
#include "kernels/paths.hpp"
#include "reference/attention.hpp"

namespace pa::prop {

/// A property body: nullopt when the property holds for the case, else a one-line failure message
/// naming the path, the metric and the numbers.
using CaseProperty = std::function<std::optional<std::string>(const Case&)>;

struct CheckResult {
  bool passed = true;
  int cases = 0;                 // cases that ran (successes, plus the failing one)
  std::optional<Case> minimal;   // the shrunk failing case
  std::string message;           // its failure message
  std::string replay;            // one command line reproducing it
  std::string captured_file;     // where it was saved (empty if capture disabled)
};

struct CheckOptions {
  int cases = 100;                       // scaled by PACHECK_PROPERTY_SCALE (nightly: x10 default)
  std::vector<PathId> replay_paths;      // named in the replay line
  bool capture = true;                   // save the minimal failing case (see capture_dir)
  std::string capture_dir;               // empty = regression/captured of this checkout
  Device device;                         // recorded in the captured case
};

/// Runs `prop` on `cases` draws of `gen`, shrinking any failure.
CheckResult check_cases(const std::string& name, const rc::Gen<Case>& gen, const CaseProperty& prop,
                        const CheckOptions& opt);

/// Case count after PACHECK_PROPERTY_SCALE (a positive multiplier; nightly sets it higher).
int scaled_count(int base);

/// The backend properties run on: the GPU when PACHECK_PROPERTY_BACKEND=gpu (or auto with a GPU
/// present), else the host twins.
Backend property_backend();

/// The reference the properties judge against: the fp64 CPU oracle, or with
/// PACHECK_PROPERTY_REFERENCE=gpu the GPU reference kernel (fp32, one thread per row, checked
/// against the CPU oracle in gpu_test and against the goldens), for nightly sizes where the CPU
/// reference dominates the run. Its stats are bounds computed from the inputs and it has no
/// `uniform` (the v_mean flag is off). A GPU request without a GPU throws InputError.
ReferenceResult reference(const Inputs& in);
/// tolerance_for(em, ref.stats), widened by the reference's own rounding when it has any.
Tolerance tolerance(ErrorModel em, const ReferenceResult& ref);

/// Runs path p (on property_backend()) and judges it against the reference with the tolerance
/// model. nullopt when it passes; else "path=hip metric=outside_tolerance: ...".
std::optional<std::string> judge(PathId p, const Inputs& in, const PhysicalKv& kv,
                                 const ReferenceResult& ref, const Device& dev,
                                 const PathOutput* precomputed = nullptr);

}  // namespace pa::prop
