// Report files: reading a final report or a `.partial` file, and writing both (reports/SCHEMA.md,
// "Two on-disk forms").
#include <sstream>

#include "core/case.hpp"
#include "core/json_input.hpp"
#include "core/output_file.hpp"
#include "reports/report.hpp"

namespace pa::report {

using nlohmann::json;

namespace {
// Messages may carry bytes from kernels or files that are not UTF-8: replace them rather than lose
// the record.
std::string dump(const json& j, int indent = -1) { return j.dump(indent, ' ', false, json::error_handler_t::replace); }
}  // namespace

std::string unusable_as_whole(const Report& r, const std::string& name) {
  if (!r.complete)
    return name + ": an incomplete report (" +
           std::string(r.summary.interrupted ? "the run was interrupted" : "a .partial file: the run was cut off") +
           "); it does not stand for the whole run (--allow-partial uses it anyway)";
  if (r.cases.empty()) return name + ": a report with no record (--allow-partial uses it anyway)";
  return "";
}

Report load_report(const std::string& path) {
  const std::string text = read_file(path);
  try {
    return parse_report_text(text);
  } catch (const InputError& e) {
    throw InputError(path + ": " + e.what());
  }
}

Report parse_report_text(const std::string& text) {
  // A final report is one JSON document; anything else is tried as JSON Lines.
  const std::optional<json> whole = try_parse_json(text, "");
  if (whole && whole->is_object() && whole->contains("cases")) return report_from_json(*whole);
  Report rep;
  rep.complete = false;
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
  if (lines.empty()) throw InputError("empty file");
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string where = "line " + std::to_string(i + 1);
    const std::optional<json> j = try_parse_json(lines[i], where);
    if (!j) {
      if (i + 1 == lines.size() && i > 0) break;  // truncated by a crash mid-write
      throw InputError(where + ": not valid JSON");
    }
    if (i == 0) {
      if (!j->is_object() || !j->contains("context") || !j->contains("format") ||
          j->at("format") != "pacheck-report-partial")
        throw InputError("line 1: expected a report, or a .partial header with \"format\": "
                         "\"pacheck-report-partial\" and a \"context\"");
      rep.context = context_from_json(j->at("context"));
      continue;
    }
    try {
      if (j->is_object() && j->contains("bench") && !j->contains("case"))
        rep.bench.push_back(bench_record_from_json(j->at("bench")));
      else
        rep.cases.push_back(record_from_json(*j));
    } catch (const InputError& e) {
      throw InputError(where + ": " + e.what());
    }
  }
  rep.summary = summarize(rep.cases);
  rep.summary.complete = false;
  return rep;
}

// ---- writer ---------------------------------------------------------------------------------

ReportWriter::ReportWriter(std::string path, const Context& context, bool follow_symlink)
    : path_(std::move(path)), follow_symlink_(follow_symlink), context_(context) {
  // The last run's report must not outlive a run that dies: only this run's finish() puts one back.
  remove_previous_output(path_, follow_symlink_);
  partial_ = open_output_stream(partial_path());
  write_stream(partial_, dump(json{{"format", "pacheck-report-partial"}, {"context", to_json(context_)}}) + "\n",
               partial_path());
}

ReportWriter::~ReportWriter() {
  if (partial_) std::fclose(partial_);
}

void ReportWriter::add(const Record& r) {
  records_.push_back(r);
  if (partial_) write_stream(partial_, dump(to_json(r)) + "\n", partial_path());
}

void ReportWriter::add_bench(const BenchRecord& b) {
  bench_.push_back(b);
  if (partial_) write_stream(partial_, dump(json{{"bench", to_json(b)}}) + "\n", partial_path());
}

void ReportWriter::finish(const Summary& summary) {
  Report rep;
  rep.context = context_;
  rep.cases = records_;
  rep.summary = summary;
  rep.summary.complete = summary.complete && !summary.interrupted;
  rep.bench = bench_;
  write_file_atomic(path_, dump(to_json(rep), 1) + "\n", follow_symlink_);
  if (partial_) {
    const bool closed = std::fclose(partial_) == 0;
    partial_ = nullptr;
    if (!closed) throw InputError(partial_path() + ": close failed");
  }
  std::remove(partial_path().c_str());
}

void write_report(const Report& r, const std::string& path, bool follow_symlink) {
  write_file_atomic(path, dump(to_json(r), 1) + "\n", follow_symlink);
}

}  // namespace pa::report
