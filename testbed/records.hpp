#pragma once
// The testbed's results in the report's own record type (reports/report.hpp): one place where a
// case's path records become report records, so `run`, `replay`, the reporters and the report
// file share one record and no command converts it by hand.
#include <cstdint>
#include <vector>

#include "reports/report.hpp"
#include "testbed/testbed.hpp"

namespace pa {

/// One report record per path record of a case (its routing decision on each).
std::vector<report::Record> report_records(const CaseRecord& rec, int64_t case_index);
/// The context block's entry for a kernel under test.
report::KernelInfoRecord kernel_record(const Kernel& k);

}  // namespace pa
