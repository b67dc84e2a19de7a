#!/usr/bin/env bash
# Tests of .ci/include-check.sh: the real tree passes, and wrong-way includes planted in a copy of
# it (its sources and docs/architecture.md, nothing else) fail with exit 1 and a line naming the
# file, the line and both folders. Each scenario starts from a fresh copy.
#   bash .ci/include-check-test.sh [ROOT]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "${1:-$here/..}" && pwd)
check="$here/include-check.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failures=0
ok() { echo "ok   - $1"; }
not_ok() { echo "FAIL - $1"; [ -z "${2:-}" ] || sed 's/^/       | /' <<< "$2"; failures=$((failures + 1)); }

fresh_copy() {  # prints the path of a new copy of ROOT's sources and table
  local dest
  dest=$(mktemp -d "$tmp/tree.XXXX")
  mkdir -p "$dest/docs"
  cp "$root/docs/architecture.md" "$dest/docs/"
  bash "$check" "$root" --list-files | (cd "$root" && tar -cf - -T -) | tar -xf - -C "$dest"
  echo "$dest"
}
plant() {  # file include: appends the include to file (created if missing); prints its line number
  mkdir -p "$(dirname "$1")"
  echo "#include \"$2\"" >> "$1"
  wc -l < "$1" | tr -d ' '
}
run() {  # tree: runs the check, sets $rc and $out
  set +e
  out=$(bash "$check" "$1" 2>&1)
  rc=$?
  set -e
}
expect() {  # name wanted-rc wanted-violation-count [substring...]
  local name=$1 want_rc=$2 want_n=$3 s count
  shift 3
  count=$(grep -cE '^[^ ]+:[0-9]+: |^[^ :]+: (folder|a source)|exception ' <<< "$out" || true)
  if [ "$rc" != "$want_rc" ]; then not_ok "$name: exit $rc, expected $want_rc" "$out"; return; fi
  if [ "$want_n" != - ] && [ "$count" != "$want_n" ]; then
    not_ok "$name: $count violation line(s), expected $want_n" "$out"; return
  fi
  for s in "$@"; do
    grep -qF -- "$s" <<< "$out" || { not_ok "$name: output does not contain: $s" "$out"; return; }
  done
  ok "$name"
}

# 1. This checkout passes.
run "$root"
expect "the real tree passes" 0 0 "include-check: "

# 2. Wrong-way includes in production files are named: file, line, both folders, what is allowed.
t=$(fresh_copy)
l1=$(plant "$t/kernels/planted_wrong_way.hpp" "dispatch/select.hpp")
l2=$(plant "$t/reference/attention.cpp" "kernels/paths.hpp")
l3=$(plant "$t/reports/planted_wrong_way.cpp" "../testbed/testbed.hpp")   # relative spelling
run "$t"
expect "planted wrong-way includes fail, each named" 1 3 \
  "kernels/planted_wrong_way.hpp:$l1: folder kernels may not include folder dispatch (allowed: core, inputs, include)" \
  "reference/attention.cpp:$l2: folder reference may not include folder kernels (allowed: core, inputs, include)" \
  "reports/planted_wrong_way.cpp:$l3: folder reports may not include folder testbed (allowed: core, include)"

# 3. Test files may include any folder; production files may not include test files.
t=$(fresh_copy)
mkdir -p "$t/kernels/testing"
echo '#include "reference/attention.hpp"' > "$t/kernels/testing/judge.hpp"       # a test helper
plant "$t/core/planted_test.cpp" "tools/commands.hpp" > /dev/null                # a test: exempt
plant "$t/core/planted_test.cpp" "kernels/testing/judge.hpp" > /dev/null
l1=$(plant "$t/kernels/planted.cpp" "kernels/testing/judge.hpp")                 # production
run "$t"
expect "production may not include test code; tests may include anything" 1 1 \
  "kernels/planted.cpp:$l1: production file may not include test file kernels/testing/judge.hpp"

# 4. A folder without a row, and an include the check cannot place, fail.
t=$(fresh_copy)
plant "$t/newfolder/thing.cpp" "core/case.hpp" > /dev/null
l1=$(plant "$t/dispatch/planted.cpp" "nowhere/unknown.hpp")
run "$t"
expect "unknown folders and unplaceable includes fail" 1 2 \
  "newfolder/thing.cpp: folder newfolder has no row in the table" \
  "dispatch/planted.cpp:$l1: cannot tell which folder \"nowhere/unknown.hpp\" is in"

# 5. An exception that no include needs fails (the list only shrinks).
t=$(fresh_copy)
sed -i 's#^<!-- /include-check:exceptions -->#| `core/gone.hpp` | `dispatch/select.hpp` | test row |\n&#' "$t/docs/architecture.md"
run "$t"
expect "a stale exception fails" 1 1 "exception 'core/gone.hpp -> dispatch/select.hpp' is not needed"

# 6. Without its table the check refuses to run (exit 2), it does not pass.
t=$(fresh_copy)
sed -i '/include-check:rules -->/d' "$t/docs/architecture.md"
run "$t"
expect "a missing table is an error" 2 - "has no complete 'rules' table"

if [ $failures -gt 0 ]; then
  echo "include-check-test: $failures scenario(s) failed" >&2
  exit 1
fi
echo "include-check-test: all scenarios passed"
