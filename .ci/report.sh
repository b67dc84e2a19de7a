#!/usr/bin/env bash
# The HTML report as a person sees it: a report of the host `ci` suite plus a `--quick` bench,
# rendered by `pacheck report` and loaded in headless Chromium (.ci/html-check.sh): no console
# errors, every chart drawn with data, a screenshot. Artifacts land in ci-artifacts/ (ignored by
# git): the reports, report.html and report.png.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
P=${PACHECK:-build/host/tools/pacheck}
OUT=${1:-ci-artifacts}
mkdir -p "$OUT"
start=$(date +%s)
rc=0
"$P" run --suite ci --backend host --quiet --report "$OUT/ci.json" > "$OUT/ci.txt" 2>&1 || rc=$?
[ $rc -eq 0 ] || { tail -20 "$OUT/ci.txt"; echo "report: the ci suite failed (exit $rc)" >&2; exit 1; }
"$P" bench --quick --backend host --report "$OUT/bench.json" > "$OUT/bench.txt" 2>&1
# One page with both: the ci records and the bench records in one report (bench[] is additive).
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
ci = json.load(open(out + "/ci.json"))
ci["bench"] = json.load(open(out + "/bench.json")).get("bench", [])
json.dump(ci, open(out + "/ci_and_bench.json", "w"))
PY
"$P" report "$OUT/ci_and_bench.json" -o "$OUT/report.html"
bash .ci/html-check.sh "$OUT/report.html" "$OUT"
echo "report: ci suite + quick bench rendered and checked in headless Chromium in $(( $(date +%s) - start )) s; screenshot $OUT/report.png"
