#!/usr/bin/env bash
# Loads a pacheck HTML report in headless Chromium and fails (exit 1) unless
#   * the page logs nothing to the console (the page itself never logs, so any console line is an
#     error, a warning or a blocked network request: the page's policy forbids every fetch),
#   * report.js finished and wrote its self-check into <pre id="pacheck-check">,
#   * every chart has data points and drew pixels, and no error was recorded on the page.
# Then writes OUTDIR/report.png (a full-page screenshot), OUTDIR/dom.html (the DOM after drawing)
# and OUTDIR/chromium.log (Chromium's stderr) for a look by eye and for debugging.
#
# Usage: .ci/html-check.sh REPORT.html OUTDIR
# Needs bash, python3 (stdlib) and Debian's chromium. Exit 0 ok, 1 check failed, 2 usage/setup.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 REPORT.html OUTDIR" >&2
  exit 2
fi
report=$1
outdir=$2
if [[ ! -f $report ]]; then
  echo "html-check: $report: no such file" >&2
  exit 2
fi
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [[ -z $chromium ]]; then
  echo "html-check: chromium not found (install the Debian package chromium, or set CHROMIUM=/path)" >&2
  exit 2
fi
mkdir -p "$outdir"
url="file://$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT

# Flags: no sandbox (containers, root), no GPU, nothing that phones home, logs (including the
# page's console, as INFO:CONSOLE lines) on stderr. Virtual time lets the page finish drawing
# before the DOM is dumped, without a fixed sleep.
run_chromium() {  # run_chromium LOG [extra flags...]; stdout is the dumped DOM
  local log=$1
  shift
  timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --disable-quic --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --disable-extensions --user-data-dir="$profile" \
    --enable-logging=stderr --v=0 --virtual-time-budget=10000 --hide-scrollbars "$@" "$url" 2>"$log"
}

# Pass 1: the DOM after drawing, with the self-check and the page height.
if ! run_chromium "$outdir/chromium.log" --window-size=1400,1000 --dump-dom >"$outdir/dom.html"; then
  echo "html-check: chromium failed on $report (see $outdir/chromium.log)" >&2
  tail -n 20 "$outdir/chromium.log" >&2
  exit 1
fi

verdict=$(python3 - "$outdir/dom.html" "$outdir/chromium.log" <<'PY'
import html, json, re, sys

dom = open(sys.argv[1], encoding="utf-8", errors="replace").read()
log = open(sys.argv[2], encoding="utf-8", errors="replace").read().splitlines()
problems = []
# Chromium prints the page's console as `[pid:tid:time:LEVEL:CONSOLE:line] "text", source: url (line)`.
console = [l for l in log if re.search(r":CONSOLE[:(]", l)]
problems += ["console: " + l.split("] ", 1)[-1] for l in console]
m = re.search(r'<pre id="pacheck-check"[^>]*>(.*?)</pre>', dom, re.S)
check = {}
if not m or not m.group(1).strip():
    problems.append("the page did not write its self-check (#pacheck-check is empty): report.js did not finish")
else:
    try:
        check = json.loads(html.unescape(m.group(1)))
    except ValueError as e:
        problems.append("the self-check is not JSON (%s): %.200s" % (e, m.group(1)))
    problems += ["page error: " + e for e in check.get("errors", [])]
    problems += ["empty chart: " + e for e in check.get("empty", [])]
    if check.get("charts", 0) + check.get("tables", 0) == 0:
        problems.append("no chart was drawn")
for p in problems:
    print("FAIL " + p)
print("HEIGHT %d" % max(800, min(int(check.get("height", 3000)) + 40, 16000)))
print("SUMMARY charts=%s tables=%s records=%s failures=%s chart.js=%s" % (
    check.get("charts"), check.get("tables"), check.get("records"), check.get("failures"), check.get("chart_js")))
PY
)
height=$(sed -n 's/^HEIGHT //p' <<<"$verdict")

# Pass 2: a screenshot of the whole page (the window is as tall as the page).
if ! run_chromium "$outdir/chromium-screenshot.log" --window-size="1400,$height" \
    --screenshot="$(cd "$outdir" && pwd)/report.png" >/dev/null; then
  echo "html-check: chromium could not take the screenshot (see $outdir/chromium-screenshot.log)" >&2
  exit 1
fi
if [[ ! -s $outdir/report.png ]]; then
  echo "html-check: no screenshot written to $outdir/report.png" >&2
  exit 1
fi

if grep -q '^FAIL ' <<<"$verdict"; then
  echo "html-check: $report FAILED:" >&2
  sed -n 's/^FAIL /  /p' <<<"$verdict" >&2
  echo "  (DOM: $outdir/dom.html, log: $outdir/chromium.log, screenshot: $outdir/report.png)" >&2
  exit 1
fi
echo "html-check: $report ok: $(sed -n 's/^SUMMARY //p' <<<"$verdict"); screenshot $outdir/report.png"
