#pragma once
// What running one regression case must show: the dispatcher's decision matches the file's
// expectation, every must_pass path passes, and no path that runs the case fails. The corpus test
// and the mutation test both judge with this function, so "caught" means the same thing in both.
#include <string>
#include <vector>

#include "kernels/paths.hpp"
#include "regression/corpus.hpp"

namespace pa {

/// One line per finding, each naming the file, the path, the backend and the metric, e.g.
/// "regression/cases/x.json: path=hip backend=host metric=outside_tolerance: 12/4096 elements ...".
/// Empty = the case is clean on every backend given.
std::vector<std::string> corpus_findings(const RegressionCase& r, const std::vector<Backend>& backends);

/// host, plus gpu when a GPU is present.
std::vector<Backend> available_backends();

}  // namespace pa
