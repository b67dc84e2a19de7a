#!/usr/bin/env bash
# The numpy adapter through the real program: `pacheck run --suite ci` passes on it; with its
# planted bug (PACHECK_PLANT_BUG=1: per-token scales read by the logical page) `pacheck check`
# fails, shrinks to at most 2 sequences, and the replay line it prints fails again.
#   bash adapters/tests/cli_test.sh PACHECK PYTHON
set -uo pipefail
PACHECK=${1:?pacheck binary}
export PACHECK_PYTHON=${2:?python3 with numpy}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
adapter="py:$here/numpy_reference.py"
fail() { echo "adapters cli: FAILED: $*" >&2; exit 1; }

"$PACHECK" run --kernel "$adapter" --suite ci --quiet --report "$tmp/ci.json" > "$tmp/run.txt" 2>&1
rc=$?
[ $rc -eq 0 ] || { tail -20 "$tmp/run.txt"; fail "run --suite ci exited $rc, expected 0"; }
grep -q " 0 Fail" "$tmp/run.txt" || fail "the ci run has Fail records"

PACHECK_PLANT_BUG=1 "$PACHECK" check --kernel "$adapter" --properties reference --seed 3 --cases 100 --no-capture \
  > "$tmp/check.txt" 2>&1
rc=$?
[ $rc -eq 1 ] || { cat "$tmp/check.txt"; fail "check on the planted bug exited $rc, expected 1"; }
minimal=$(grep -m1 "minimal case:" "$tmp/check.txt")
seqs=$(sed -n 's/.*minimal case: S=\([0-9]*\) .*/\1/p' <<< "$minimal")
[ -n "$seqs" ] && [ "$seqs" -le 2 ] || fail "not shrunk to <= 2 sequences: $minimal"
replay=$(grep -m1 "replay: pacheck replay" "$tmp/check.txt" | sed 's/^ *replay: pacheck //')
[ -n "$replay" ] || fail "no replay line printed"
PACHECK_PLANT_BUG=1 eval "\"$PACHECK\" $replay" > "$tmp/replay.txt" 2>&1
rc=$?
[ $rc -eq 1 ] || { cat "$tmp/replay.txt"; fail "the replay line exited $rc, expected 1 (it must reproduce the failure)"; }
eval "\"$PACHECK\" $replay" > "$tmp/replay_clean.txt" 2>&1
rc=$?
[ $rc -eq 0 ] || { cat "$tmp/replay_clean.txt"; fail "the same replay without the planted bug exited $rc, expected 0"; }
echo "adapters cli: ci suite passes; planted bug caught, shrunk to $seqs sequence(s): $minimal"
echo "1 passed, 0 failed"
