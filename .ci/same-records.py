#!/usr/bin/env python3
"""Whether two pacheck reports hold the same records, bit for bit, but for the timings and the
run's clock: the check of a refactoring that must not change a verdict, a metric or a message.

    python3 .ci/same-records.py BEFORE.json AFTER.json

Exit 0 when every record is identical (same count, same order), 1 otherwise (the first five
differing records are named, field by field), 2 on unreadable input."""
import json
import sys

DROP = {"timings", "elapsed_ms", "wall_ms"}


def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in DROP}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        a, b = (json.load(open(p)) for p in argv[1:3])
        ra, rb = strip(a["cases"]), strip(b["cases"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        print("same-records: %s" % e, file=sys.stderr)
        return 2
    diff = [(i, x, y) for i, (x, y) in enumerate(zip(ra, rb)) if x != y]
    print("%d vs %d records; %d differ" % (len(ra), len(rb), len(diff)))
    for i, x, y in diff[:5]:
        for k in sorted(set(x) | set(y)):
            if x.get(k) != y.get(k):
                print("  record %d field %s: %s != %s" % (i, k, str(x.get(k))[:150], str(y.get(k))[:150]))
    return 0 if len(ra) == len(rb) and not diff else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
