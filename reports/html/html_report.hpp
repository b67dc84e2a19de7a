#pragma once
// `pacheck report r.json [more.json ...] -o report.html`: one self-contained HTML page (no network
// access) from one or more reports. Several reports are a nightly history, oldest first: the page
// shows the newest in detail and the trend over all of them.
//
// The page is a template file (report.html.in) with report.js and Debian's Chart.js inlined into
// it, and one JSON data blob (html_data()) that the JS draws everything from. The C++ side only
// derives what the JS cannot know from the report model (feature classes, distance to the
// tolerance edge, coordinates) and fills the template; all layout lives in the template.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reports/report.hpp"

namespace pa::report {

/// The files a page is assembled from. Read at render time, so a missing one is an InputError
/// naming it rather than a silently broken page.
struct HtmlAssets {
  std::string template_path;  // the page, with {{title}}, {{chart_js}}, {{report_js}}, {{data}}
  std::string script_path;    // report.js, drawing the page from the data blob
  std::string chart_js_path;  // Chart.js UMD build from Debian's libjs-chart.js
};

/// The paths configured at build time (the source tree and the Chart.js CMake found).
HtmlAssets default_html_assets();

/// The data blob the page draws from: the newest report in detail (context, summary, every
/// record's status and feature classes, every failure, bench records) and per-kernel counts of
/// every report for the trend. @pre names.size() == reports.size(), reports not empty.
nlohmann::json html_data(const std::vector<Report>& reports, const std::vector<std::string>& names);

/// Serializes JSON for a <script> element: '<', '>' and '&' become \u003c, \u003e, \u0026 (valid
/// JSON escapes), so no string in a report can close the element or open a comment.
std::string json_for_script(const nlohmann::json& j);

/// Renders one self-contained HTML page from one or more reports (several = nightly history,
/// oldest first). Throws InputError naming the file when the template, report.js or Chart.js
/// cannot be read, and when `reports` is empty or `names` does not match it.
std::string render_html(const std::vector<Report>& reports, const std::vector<std::string>& names,
                        const HtmlAssets& assets = default_html_assets());

/// The CLI entry: loads each input (final or .partial, see load_report), renders the page and
/// writes `out` atomically (core/output_file.hpp: a new file renamed over a regular file only; a
/// symbolic link is written through only with follow_symlink). Returns 0; throws InputError naming
/// the bad input or output file and, for a write, the OS's reason.
int write_html_report(const std::vector<std::string>& inputs, const std::string& out,
                      const HtmlAssets& assets = default_html_assets(), bool follow_symlink = false);

}  // namespace pa::report
