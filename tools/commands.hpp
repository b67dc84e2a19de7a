#pragma once
// The pacheck subcommands. Each takes the whole argv and the index of its first own argument and
// returns the process exit code: 0 all pass, 1 failures / regressions, 2 usage or input error,
// 130 interrupted (SIGINT) without failures.
#include <vector>

#include "regression/testbed.hpp"
#include "reports/report.hpp"

namespace pa::tools {

inline constexpr int kExitOk = 0, kExitFail = 1, kExitUsage = 2, kExitInterrupted = 130;

int cmd_run(int argc, char** argv, int begin);
int cmd_replay(int argc, char** argv, int begin);
int cmd_diff(int argc, char** argv, int begin);
int cmd_cases(int argc, char** argv, int begin);
int cmd_fixtures(int argc, char** argv, int begin);

/// One report record per path record of a case.
std::vector<report::Record> to_records(const CaseRecord& rec, int64_t case_index);

/// "v1,hip,asm" -> paths; throws InputError naming the flag and the bad entry.
std::vector<PathId> parse_paths(const std::string& list);

}  // namespace pa::tools
