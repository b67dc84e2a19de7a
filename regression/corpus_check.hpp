#pragma once
// What running one regression case must show: the dispatcher's decision matches the file's
// expectation, every must_pass kernel passes, and no kernel that runs the case fails. The corpus
// test, the mutation test and `pacheck mutate` all judge with this function, so "caught" means
// the same thing in each.
#include <string>
#include <vector>

#include "kernels/kernel.hpp"
#include "regression/corpus.hpp"

namespace pa {

/// One line per finding, each naming the file, the kernel, the backend and the metric, e.g.
/// "regression/cases/x.json: path=hip backend=host metric=outside_tolerance: 12/4096 elements ...".
/// Empty = the case is clean on `kernels`. The decision is checked only when `kernels` holds a
/// kernel of every name the dispatcher's rule routes to (the built-in set, or a mutant of it).
std::vector<std::string> corpus_findings(const RegressionCase& r, const std::vector<KernelPtr>& kernels);

/// The kernel sets pacheck's own corpus runs on: the host twins, plus the GPU kernels when a GPU
/// is present.
std::vector<std::vector<KernelPtr>> available_kernel_sets();

}  // namespace pa
