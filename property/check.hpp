#pragma once
// `pacheck check`: the property suite against any registered kernel, built-in or plug-in.
// Each property is drawn inside (or, for refusals, outside) what the kernel declares, applied
// only where its precondition holds (otherwise reported as not applicable, never as passed),
// and judged through the one judge (testbed/testbed.hpp). A failure is shrunk by RapidCheck,
// saved under regression/captured/ and printed with a replay line that reproduces it.
//
// Properties (property_names(), in this order):
//   reference   kernel ~ fp64 reference on cases inside its capability
//   relocation  moving pages to other physical ids (block table with them) changes nothing
//   kv_scale    K*s stored with k_scale/s is the same logical K (kernels with a scale mode)
//   split       the split-K partition size changes nothing (PARTITION_OF_PAGES kernels)
//   gqa         GQA equals MHA with repeated KV heads (kernels taking G = 1 and G > 1)
//   poison      poisoned padding, free pages and unused slots never reach the output
//   repeat      launches leave no state: the case, other values in the same buffers, the case again
//               (each judged; the two runs on the same inputs agree)
//   batch       (RAGGED kernels) a batch split into two launches, its sequences permuted, gives
//               the same rows
//   extend      (RAGGED kernels) an extend row equals the decode rows of its positions, one at a time
//   zero_q      (RAGGED kernels) zero queries give the mean of the visible V rows
//   plan        (kernels with a plan step) a plan gives the answer for its batch, for other values
//               and the shorter batches its declaration covers; a longer batch is refused or right,
//               other dtypes refused; a plan made at a padded batch (empty slots) is right
//   graph       (GRAPH_SAFE device kernels in this process) captured at a longer batch and replayed
//               on the case: its answer, and with DETERMINISTIC the eager launch's bits
//   refusal     outside the capability pacheck refuses cleanly: the testbed never launches the
//               kernel and the dispatcher forced to it refuses naming the reason
//   dispatcher  the dispatcher never selects a kernel whose capability excludes the case, and
//               whatever it routes to this kernel passes (kernels the routing rule names)
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "core/case.hpp"
#include "core/device.hpp"
#include "kernels/kernel.hpp"
#include "property/generators.hpp"
#include "property/harness.hpp"

namespace pa::prop {

struct CheckOptions {
  int cases = 100;                       // per property
  uint64_t seed = 0;                     // 0 = a fresh seed (printed in the report)
  std::vector<std::string> properties;   // empty = all; unknown names throw InputError
  Device device;                         // the device cases are drawn, routed and judged for
  /// Host-memory kernels only: draw the device model as well, one per fp8 flavour (MI300X's
  /// e4m3fnuz, MI355X's e4m3fn), each case judged on the model that reads its cache; the
  /// dispatcher property routes for every device model. Off: `device` alone.
  bool every_device_model = false;
  bool capture = true;                   // save minimal failing cases
  std::string capture_dir;               // empty = regression/captured of this checkout
  std::string kernel_spec;               // how to name the kernel in the replay line: "" for
                                         // built-ins, else "--kernel PATH.so:NAME"
  gen::Limits limits;
  /// Check this one case instead of generated ones (a replay line of a failed property).
  std::optional<Case> only;
  /// Polled between properties: true stops the check there (a Ctrl-C, a CI time limit); the
  /// report then holds the properties that ran and says it was interrupted.
  std::function<bool()> stop;
};

struct CheckReport {
  std::string kernel;
  std::string device;                    // the device (or "every device model")
  uint64_t seed = 0;                     // the seed used: --seed SEED reproduces the whole run
  int cases = 0;                         // per property, as asked
  std::vector<PropertyResult> results;
  bool interrupted = false;              // CheckOptions::stop ended it before every property ran
  /// Every applicable property passed (and at least one applied).
  bool passed() const;
};

/// The property names, in the order check_kernel runs them.
std::vector<std::string> property_names();

/// Runs the selected properties against `k`. `all_kernels` are the registered kernels the
/// dispatcher property routes over (`k` is added when missing). Property p runs with RapidCheck
/// seed mix(seed, p), so `--seed S --properties p` reproduces p alone. A device-memory kernel
/// without a GPU yields every property not applicable, naming why.
CheckReport check_kernel(const KernelPtr& k, const std::vector<KernelPtr>& all_kernels, const CheckOptions& o);

/// One line per property; a failure adds its minimal case, message, replay line and file.
void print_check_report(std::ostream& os, const CheckReport& r);

/// A seed nobody chose: clock and address bits through a mixer (never 0).
uint64_t fresh_seed();

/// The RapidCheck seed of property `name` in a run with seed `seed`.
uint64_t property_seed(uint64_t seed, const std::string& name);

}  // namespace pa::prop
