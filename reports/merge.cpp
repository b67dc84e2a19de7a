#include "reports/merge.hpp"

#include <algorithm>
#include <cstdio>
#include <set>

namespace pa::report {

std::pair<int, int> parse_shard(const std::string& text) {
  int i = -1, n = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%d/%d%c", &i, &n, &tail) != 2 || n < 1 || i < 0 || i >= n)
    throw InputError("--shard " + text + ": expected i/n with 0 <= i < n (e.g. 0/4)");
  return {i, n};
}

Report merge_reports(const std::vector<Report>& shards, const std::vector<std::string>& names) {
  if (shards.empty()) throw InputError("merge needs at least one report");
  Report out;
  out.context = shards.front().context;
  const auto same = [&](size_t k, const std::string& field, const std::string& a, const std::string& b) {
    if (a != b)
      throw InputError(names[k] + ": context." + field + " is '" + b + "' but " + names[0] + " has '" + a +
                       "': the reports are not shards of one run");
  };
  std::set<int> seen_shards;
  int count = 0;
  for (size_t k = 0; k < shards.size(); ++k) {
    const Context& c = shards[k].context;
    same(k, "suite", out.context.suite, c.suite);
    same(k, "seed", std::to_string(out.context.seed), std::to_string(c.seed));
    same(k, "git_commit", out.context.git_commit, c.git_commit);
    same(k, "backend", out.context.backend, c.backend);
    if (!c.shard.empty()) {
      const auto [i, n] = parse_shard(c.shard);
      if (count && n != count) throw InputError(names[k] + ": context.shard " + c.shard + " is of another shard count");
      count = n;
      if (!seen_shards.insert(i).second) throw InputError(names[k] + ": shard " + c.shard + " is given twice");
    }
    out.cases.insert(out.cases.end(), shards[k].cases.begin(), shards[k].cases.end());
    out.bench.insert(out.bench.end(), shards[k].bench.begin(), shards[k].bench.end());
    out.complete = out.complete && shards[k].complete && shards[k].summary.complete;
    out.summary.elapsed_ms = std::max(out.summary.elapsed_ms, shards[k].summary.elapsed_ms);
    out.summary.interrupted = out.summary.interrupted || shards[k].summary.interrupted;
  }
  // A missing shard would pass silently (diff does not gate removed records): name it instead.
  std::string missing;
  for (int i = 0; i < count; ++i)
    if (!seen_shards.count(i)) missing += (missing.empty() ? "" : ", ") + std::to_string(i) + "/" + std::to_string(count);
  if (!missing.empty())
    throw InputError("shard " + missing + " missing: a sharded run merges whole (a shard that failed to start or "
                     "was cut off must be rerun)");
  // Within a case the testbed's record order is kept (stable sort on the case index alone).
  std::stable_sort(out.cases.begin(), out.cases.end(),
                   [](const Record& a, const Record& b) { return a.case_index < b.case_index; });
  std::set<std::pair<int64_t, std::string>> keys;
  for (const Record& r : out.cases)
    if (!keys.insert({r.case_index, r.key()}).second)
      throw InputError("record " + r.key() + " of case " + std::to_string(r.case_index) +
                       " appears in two reports: overlapping shards");
  out.context.shard = "";
  const double elapsed = out.summary.elapsed_ms;
  const bool interrupted = out.summary.interrupted;
  out.summary = summarize(out.cases);
  out.summary.elapsed_ms = elapsed;  // the slowest shard: shards run side by side
  out.summary.interrupted = interrupted;
  out.summary.complete = out.complete && !interrupted;
  out.complete = out.summary.complete;
  return out;
}

}  // namespace pa::report
