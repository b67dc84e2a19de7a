#!/usr/bin/env bash
# Proves that .ci/html-check.sh fails on a broken page with this Chromium, rather than passing
# everything: a report page is broken three ways (a network fetch the page policy blocks, a chart
# without data, an uncaught exception) and each must be named in the check's failure output.
#
# Usage: html_check_selftest.sh HTML_CHECK GOOD_REPORT.html OUTDIR
set -euo pipefail
check=$1
good=$2
outdir=$3
mkdir -p "$outdir"
broken=$outdir/broken.html

python3 - "$good" "$broken" <<'PY'
import sys
page = open(sys.argv[1], encoding="utf-8").read()
data = '<script type="application/json" id="pacheck-data">'
js = "<script>\n// Draws the pacheck HTML report"
assert page.count(data) == 1 and page.count(js) == 1, "template changed: update this self-test"
page = page.replace(data, '<img src="https://example.invalid/pixel.png" alt="">\n'
                          '<div style="height:200px"><canvas id="broken-chart"></canvas></div>\n' + data)
page = page.replace(js, '<script>new Chart(document.getElementById("broken-chart"), {type: "line", '
                        'data: {labels: [], datasets: [{label: "none", data: []}]}});\n'
                        'throw new Error("deliberate failure");</script>\n' + js)
open(sys.argv[2], "w", encoding="utf-8").write(page)
PY

set +e
out=$("$check" "$broken" "$outdir/broken-out" 2>&1)
rc=$?
set -e
echo "$out"
if [[ $rc -ne 1 ]]; then
  echo "html_check_selftest: expected exit 1 on the broken page, got $rc" >&2
  exit 1
fi
for expected in "example.invalid" "broken-chart: no data points" "deliberate failure"; do
  if ! grep -qF "$expected" <<<"$out"; then
    echo "html_check_selftest: the check did not report '$expected'" >&2
    exit 1
  fi
done
echo "html_check_selftest: the check caught all three breakages"
