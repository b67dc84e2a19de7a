// Assembles the HTML page: the template file with Chart.js, report.js and the data blob inlined.
#include "reports/html/html_report.hpp"

#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/case.hpp"
#include "core/output_file.hpp"

#ifndef PACHECK_HTML_TEMPLATE
#define PACHECK_HTML_TEMPLATE "reports/html/report.html.in"
#endif
#ifndef PACHECK_HTML_SCRIPT
#define PACHECK_HTML_SCRIPT "reports/html/report.js"
#endif
#ifndef PACHECK_CHART_JS
#define PACHECK_CHART_JS "/usr/share/javascript/chart.js/chart.min.js"
#endif

namespace pa::report {

namespace {

std::string read_asset(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path + ": cannot read the " + std::string(what) + " of the HTML report");
  std::ostringstream s;
  s << f.rdbuf();
  if (!f.good() && !f.eof()) throw InputError(path + ": read failed");
  return s.str();
}

// An inlined script ends at the first "</script" whatever the JS means by it; "<\/script" is the
// same text to JS (in strings, regexes and comments alike) but not to the HTML parser.
std::string script_safe(std::string js) {
  for (size_t i = 0; (i = js.find("</", i)) != std::string::npos; i += 2) {
    std::string tag = js.substr(i + 2, 6);
    for (char& c : tag) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (tag == "script") js.replace(i, 2, "<\\/");
  }
  return js;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string page_title(const Report& latest, size_t count) {
  const Context& c = latest.context;
  std::string t = "pacheck report: " + (c.suite.empty() ? std::string("run") : c.suite) + " @ " +
                  c.git_commit + " on " + c.device.name + " (" + c.backend + ")";
  if (count > 1) t += ", " + std::to_string(count) + " reports";
  return t;
}

// Fills {{key}} placeholders in one pass over the template, so text inside a substituted value
// (a failure message quoting "{{data}}") is never substituted again.
std::string fill(const std::string& tmpl, const std::string& template_path,
                 const std::vector<std::pair<std::string, std::string>>& values) {
  std::string out;
  out.reserve(tmpl.size());
  std::vector<bool> used(values.size(), false);
  size_t pos = 0;
  while (true) {
    const size_t open = tmpl.find("{{", pos);
    if (open == std::string::npos) break;
    const size_t close = tmpl.find("}}", open + 2);
    if (close == std::string::npos) break;
    const std::string key = tmpl.substr(open + 2, close - open - 2);
    size_t k = 0;
    while (k < values.size() && values[k].first != key) ++k;
    if (k == values.size()) {  // not ours (e.g. "{{" in the template's JS): keep it
      out.append(tmpl, pos, open + 2 - pos);
      pos = open + 2;
      continue;
    }
    out.append(tmpl, pos, open - pos);
    out += values[k].second;
    used[k] = true;
    pos = close + 2;
  }
  out.append(tmpl, pos, std::string::npos);
  for (size_t k = 0; k < values.size(); ++k)
    if (!used[k]) throw InputError(template_path + ": placeholder {{" + values[k].first + "}} is missing");
  return out;
}

}  // namespace

HtmlAssets default_html_assets() {
  return {PACHECK_HTML_TEMPLATE, PACHECK_HTML_SCRIPT, PACHECK_CHART_JS};
}

std::string json_for_script(const nlohmann::json& j) {
  // Non-UTF-8 bytes from kernels or files are replaced rather than losing the page.
  const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size() + text.size() / 16);
  // Outside strings JSON never contains these characters, so escaping every one is safe.
  for (char c : text) {
    switch (c) {
      case '<': out += "\\u003c"; break;
      case '>': out += "\\u003e"; break;
      case '&': out += "\\u0026"; break;
      default: out += c;
    }
  }
  return out;
}

std::string render_html(const std::vector<Report>& reports, const std::vector<std::string>& names,
                        const HtmlAssets& assets) {
  const nlohmann::json data = html_data(reports, names);  // checks the arguments first
  const std::string tmpl = read_asset(assets.template_path, "template");
  const std::string script = read_asset(assets.script_path, "script");
  const std::string chart = read_asset(assets.chart_js_path, "Chart.js (Debian package libjs-chart.js)");
  return fill(tmpl, assets.template_path,
              {{"title", html_escape(page_title(reports.back(), reports.size()))},
               {"chart_js", script_safe(chart)},
               {"report_js", script_safe(script)},
               {"data", json_for_script(data)}});
}

int write_html_report(const std::vector<std::string>& inputs, const std::string& out,
                      const HtmlAssets& assets, bool follow_symlink) {
  if (inputs.empty()) throw InputError("report: no input report given");
  if (out.empty()) throw InputError("report: no output file given (-o report.html)");
  std::vector<Report> reports;
  for (const std::string& in : inputs) reports.push_back(load_report(in));  // names the bad file
  const std::string html = render_html(reports, inputs, assets);
  write_file_atomic(out, html, follow_symlink);
  return 0;
}

}  // namespace pa::report
