#pragma once
// The call around a launch (ABI minor 3), checked by the testbed on every launch of a kernel that
// declares it, after its verdict passed:
//   - a kernel with a plan step is judged through a plan made for the case; when that fails and
//     its plain launch passes, the plan is at fault (metric plan);
//   - a plan its declaration says serves the case (PLAN_COVERS_SHORTER: one made for the longer
//     capture batch) must give the case's answer (metric plan);
//   - the plan this thread made for the previous case is reused on this one, as an engine reuses
//     a plan across layers and steps: the kernel refuses it, or it gives the case's answer, and a
//     plan made for other dtypes must be refused (metric plan; the replay line names the plan's
//     case with --plan-from);
//   - a GRAPH_SAFE device kernel in this process is captured in a graph at the capture batch and
//     replayed on the case in the same buffers: the replay gives the case's answer, and with
//     DETERMINISTIC the eager launch's bits, twice (metric graph).
#include <optional>
#include <vector>

#include "core/case.hpp"
#include "inputs/inputs.hpp"
#include "kernels/kernel.hpp"
#include "reference/attention.hpp"

namespace pa {

struct PathRecord;
struct RunOptions;

/// The batch of a case as a plan step reads it (views of `b`, the case's batch arrays, and of its
/// context lengths; valid while both are).
PlanBatch plan_batch(const Case& c, const BatchArrays& b);

/// The batch a graph is captured at for case `c`: every sequence one page longer (an empty one
/// given a page), so that `c` replays as a batch of shorter, and emptied, sequences.
Case capture_batch(const Case& c);

/// Whether a plan made for `planned` serves `c` by the kernel's declaration: the same batch (values,
/// seed, pool size and table padding aside), or with `covers_shorter` each context at most the
/// planned one.
bool plan_covers(const Case& planned, const Case& c, bool covers_shorter);

/// The checks above for kernel `k` on case `c`, after `r` (its record from `eager`, the launch
/// judged against `ref`) passed: turns r into a Fail naming the metric on a finding. `plan_from`
/// (a replay's --plan-from) stands in for this thread's previous plan.
void check_call_contract(const Kernel& k, const Case& c, const KernelCall& call, const KernelOutput& eager,
                         const ReferenceResult& ref, const RunOptions& o, PathRecord& r);

/// After `r` failed its verdict on an Ok launch through a plan: whether the plain launch passes, in
/// which case r becomes metric plan.
void blame_plan(const Kernel& k, const Case& c, const KernelCall& call, const ReferenceResult& ref, const Device& dev,
                PathRecord& r);

}  // namespace pa
