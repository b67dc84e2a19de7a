#!/usr/bin/env python3
"""How close correct kernels come to the aggregate and LSE thresholds.

    python3 .ci/metric-fractions.py REPORT.json...

For every judged record (Ok or Fail with metrics) of the given pacheck reports, the value of each
aggregate check as a fraction of its derived threshold -- rms, bias and scale (least-squares
alpha), as the verdict computes them -- and the LSE's worst element as a fraction of its bound. Prints the
record and case counts, the failures, and per metric the largest fraction (the verdict fails a
record above 1), where it was reached
and how many records exceeded 1/2. Exit 1 when any record failed.
"""
import json
import sys


def fractions(rec):
    m = rec.get("metrics", {})
    agg = m.get("aggregate", {})
    out = {}
    if "rms_fraction" in agg:
        out["rms"] = agg["rms_fraction"]
    if "bias_fraction" in agg:  # |bias - the declared rounding's bias| / limit
        out["bias"] = agg["bias_fraction"]
    if "scale_fraction" in agg:  # |alpha - the declared rounding's alpha| / limit
        out["scale"] = agg["scale_fraction"]
    lse = rec.get("lse") or {}
    if "worst_fraction" in lse:
        out["lse"] = lse["worst_fraction"]
    return out


def main(paths):
    records = cases = failed = 0
    worst = {}
    over_half = {}
    for p in paths:
        rep = json.load(open(p))
        seen = set()
        for rec in rep["cases"]:
            if rec["status"] not in ("Ok", "Fail"):
                continue
            records += 1
            seen.add(rec["case"].get("slug", json.dumps(rec["case"], sort_keys=True)))
            if rec["status"] == "Fail":
                failed += 1
                print("FAIL %s %s: %s" % (rec["path"], rec["case"].get("slug", ""), rec.get("message", "")[:300]))
            for k, v in fractions(rec).items():
                if v is None:
                    continue
                if k not in worst or v > worst[k][0]:
                    worst[k] = (v, rec["path"], rec["case"].get("slug", ""), p)
                over_half[k] = over_half.get(k, 0) + (v > 0.5)
        cases += len(seen)
    print("%d reports, %d cases, %d judged records, %d failed" % (len(paths), cases, records, failed))
    for k in sorted(worst):
        v, path, slug, rep = worst[k]
        print("  %-5s largest fraction of its threshold %.3f (%s, %s in %s); %d records above 0.5"
              % (k, v, path, slug, rep, over_half[k]))
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
