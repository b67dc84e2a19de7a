#include <algorithm>
#include "reports/reporter.hpp"

#include <cstdio>

namespace pa::report {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string fmt_seconds(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.1fs", s);
  else std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  return buf;
}

}  // namespace

std::string summary_line(const Summary& s) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%lld cases, %lld records: %lld Ok, %lld Fail, %lld NotSupported, %lld Skipped (%s)%s",
                (long long)s.cases, (long long)s.records, (long long)s.ok, (long long)s.fail,
                (long long)s.not_supported, (long long)s.skipped, fmt_seconds(s.elapsed_ms / 1000).c_str(),
                s.interrupted ? " [interrupted]" : "");
  return buf;
}

std::string families_line(const Summary& s) {
  const auto n = [&](const std::string& k) {
    const auto it = s.families.find(k);
    return it == s.families.end() ? int64_t(0) : it->second;
  };
  if (n("ragged") + n("page_table csr") + n("head_size_v") + n("empty_rows") == 0) return "";
  std::string line = "ragged family: " + std::to_string(n("ragged")) + " ragged cases (with decode rows " +
                     std::to_string(n("ragged q_len decode"));
  for (const char* c : {"mtp 2-4", "mtp 5-8", "mtp 9-16", "extend"})
    line += std::string(", ") + c + " " + std::to_string(n(std::string("ragged q_len ") + c));
  return line + "); page tables: padded " + std::to_string(n("page_table padded")) + ", csr " +
         std::to_string(n("page_table csr")) + "; Dv != D " + std::to_string(n("head_size_v")) + "; empty rows " +
         std::to_string(n("empty_rows"));
}

ConsoleReporter::ConsoleReporter(std::ostream& out, ConsoleOptions options) : out_(out), opt_(options) {}

void ConsoleReporter::begin(const Context& c, int64_t total_cases) {
  total_ = total_cases;
  start_ = last_progress_ = std::chrono::steady_clock::now();
  out_ << "pacheck " << c.pacheck_version << " (" << c.git_commit << "), suite " << c.suite << ", seed "
       << c.seed << ", " << total_cases << " cases\n"
       << "backend " << c.backend << " (" << c.backend_reason << "), routing for " << c.device.name << " ("
       << c.device.arch << ", " << c.device.cu_count << " CUs, " << to_string(c.device.native_fp8) << ")\n";
  out_.flush();
}

void ConsoleReporter::on_case(const std::vector<Record>& records) {
  ++done_;
  bool failed = false;
  for (const Record& r : records) failed |= r.status == Status::Fail;
  failed_cases_ += failed;
  if (opt_.tty && progress_shown_) out_ << "\r\033[K";  // the case line replaces the progress line
  if (!records.empty() && (!opt_.quiet || failed)) {
    const Record& first = records.front();
    char head[32];
    std::snprintf(head, sizeof head, "[%*lld/%lld] ", int(std::to_string(total_).size()),
                  (long long)done_, (long long)total_);
    out_ << head << first.slug;
    if (!first.name.empty()) out_ << " (" << first.name << ")";
    for (const Record& r : records) {
      out_ << "  " << r.path;
      if (r.path == "auto") out_ << "->" << (r.ran.empty() ? "none" : r.ran);
      out_ << ":" << to_string(r.status);
    }
    out_ << "\n";
    if (opt_.detail) out_ << "    " << first.vars << "\n";
    // The dispatcher's decision, with each declining path's reason (the facts a routing incident
    // needs), on every case line unless --quiet.
    const DecisionInfo& d = first.decision;
    // No "auto" record means no routing rule covers these kernels (plug-ins): nothing to say.
    const bool routed = std::any_of(records.begin(), records.end(), [](const Record& r) { return r.path == "auto"; });
    if (!opt_.quiet && routed) {
      if (!d.chosen.empty()) out_ << "    route: " << d.chosen << " (" << d.why << ")\n";
      else out_ << "    route: none: " << d.error << "\n";
    }
    if (opt_.detail) detail(records);
    for (const Record& r : records) {
      if (r.status != Status::Fail) continue;
      out_ << "    FAIL " << r.path << (r.metric.empty() ? "" : " [" + r.metric + "]") << ": " << r.message << "\n";
      out_ << "    replay: " << r.replay << "\n";
    }
  }
  progress(false);
  out_.flush();
}

// One line per record with what the verdict saw: the metrics against the tolerance, the kernel
// time, and why it refused or was skipped.
void ConsoleReporter::detail(const std::vector<Record>& records) {
  for (const Record& r : records) {
    char line[512];
    std::snprintf(line, sizeof line, "    %-5s %-12s", r.path.c_str(), to_string(r.status));
    out_ << line;
    if (r.status == Status::Ok || (r.status == Status::Fail && r.metrics.count > 0)) {
      const Metrics& m = r.metrics;
      std::snprintf(line, sizeof line,
                    " max_err_norm=%.3g rel_rms=%.3g cosine=%.6f outside=%lld/%lld nan=%lld%s%s atol=%.3g rtol=%.3g %.3f ms",
                    m.max_err_norm, m.rel_rms, m.cosine, (long long)m.outside, (long long)m.count,
                    (long long)m.nan_count, m.degenerate.empty() ? "" : " degenerate=", m.degenerate.c_str(),
                    r.tolerance.atol, r.tolerance.rtol, r.timings.path_ms);
      out_ << line;
    }
    out_ << "\n";
    if (!r.message.empty() && r.status != Status::Ok && r.status != Status::Fail) out_ << "          " << r.message << "\n";
  }
}

void ConsoleReporter::progress(bool force) {
  const double el = seconds_since(start_);
  const double eta = done_ > 0 ? el / double(done_) * double(total_ - done_) : 0;
  char buf[200];
  std::snprintf(buf, sizeof buf, "progress %lld/%lld cases, %lld failing, elapsed %s, ETA %s",
                (long long)done_, (long long)total_, (long long)failed_cases_, fmt_seconds(el).c_str(),
                fmt_seconds(eta).c_str());
  if (opt_.tty) {
    if (done_ < total_) {
      out_ << buf;
      progress_shown_ = true;
    } else {
      progress_shown_ = false;
    }
    return;
  }
  // Plain lines (logs, CI): every ~10% of the cases or every 5 s, whichever comes first.
  const int64_t decile = total_ > 0 ? done_ * 10 / total_ : 0;
  if (force || decile > last_decile_ || seconds_since(last_progress_) >= 5.0) {
    last_decile_ = decile;
    last_progress_ = std::chrono::steady_clock::now();
    if (done_ < total_ || force) out_ << buf << "\n";
  }
}

void ConsoleReporter::end(const Summary& s) {
  if (opt_.tty && progress_shown_) out_ << "\r\033[K";
  out_ << summary_line(s) << "\n";
  if (const std::string f = families_line(s); !f.empty()) out_ << f << "\n";
  out_ << s.ok << " passed, " << s.fail << " failed\n";
  out_.flush();
}

void JsonReporter::begin(const Context& c, int64_t) { writer_ = std::make_unique<ReportWriter>(path_, c, follow_symlink_); }

void JsonReporter::on_case(const std::vector<Record>& records) {
  for (const Record& r : records) writer_->add(r);
}

void JsonReporter::end(const Summary& s) { writer_->finish(s); }

}  // namespace pa::report
