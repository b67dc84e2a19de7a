#pragma once
// Shard reports back into one (`pacheck merge`): a run split with `--shard i/n` writes one report
// per shard, each record keeping its case's index in the whole run, so merging is a union sorted
// by case index that equals the unsharded report record for record, timings apart.
#include <string>
#include <vector>

#include "reports/report.hpp"

namespace pa::report {

/// Merges shard reports. Throws InputError naming the file and the field when they do not belong
/// to one run (another suite, seed, commit or shard count) or when a record appears twice.
/// `names` are the files, for messages.
Report merge_reports(const std::vector<Report>& shards, const std::vector<std::string>& names);

/// Writes a report atomically (core/output_file.hpp: a new file renamed over a regular file only;
/// a symbolic link is written through only with follow_symlink). Throws InputError with the OS's reason.
void write_report(const Report& r, const std::string& path, bool follow_symlink = false);

/// "i/n" -> {i, n} with 0 <= i < n; InputError naming the value otherwise.
std::pair<int, int> parse_shard(const std::string& text);

}  // namespace pa::report
