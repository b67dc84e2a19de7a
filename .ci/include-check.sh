#!/usr/bin/env bash
# Include-direction check. Every `#include "..."` in the C, C++ and HIP sources must run the way
# the folder table of docs/architecture.md allows: the table (folder -> may include), the
# test-file patterns and the temporary exceptions are read from that file, between its
# `include-check` markers, so the rules have one home and the doc cannot drift from the check.
#
#   bash .ci/include-check.sh [ROOT] [--rules FILE]    check ROOT (default: this checkout)
#   bash .ci/include-check.sh [ROOT] --list-files      print the files it would read, one a line
#
# Rules (docs/architecture.md, "Allowed directions"):
#  * a production file in folder X may include its own folder and the folders of X's row;
#  * test files (the patterns of the test-file table) are exempt from the table, but no
#    production file may include a test file;
#  * an exception row lets one file include one header; an exception no include needs any more
#    is an error, so the list only shrinks.
# Exit: 0 all includes allowed, 1 violations (one `file:line: ...` line each), 2 usage or a
# missing/malformed table.
set -euo pipefail

usage() { sed -n '7,8p' "$0" | sed 's/^# \{0,1\}//'; }

root="" rules="" list_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rules) [ $# -ge 2 ] || { usage >&2; exit 2; }; rules=$2; shift 2 ;;
    --rules=*) rules=${1#*=}; shift ;;
    --list-files) list_only=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "include-check: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    *) [ -z "$root" ] || { echo "include-check: one ROOT only (got '$root' and '$1')" >&2; exit 2; }
       root=$1; shift ;;
  esac
done
root=$(cd "${root:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd)
rules=${rules:-$root/docs/architecture.md}

# The scan runs in one python3 process: forking grep, sed and realpath per include took ~48 s of
# wall time on a loaded 2-core machine; this takes well under a second.
exec python3 - "$root" "$rules" "$list_only" <<'PY'
import fnmatch, os, re, sys

root, rules, list_only = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
rules_name = rules[len(root) + 1:] if rules.startswith(root + "/") else rules
EXTS = (".h", ".hpp", ".c", ".cc", ".cpp", ".hip", ".cu", ".cuh")

# ---- the files ----------------------------------------------------------------------------------
# Every C/C++/HIP source under ROOT, except hidden folders (.git, .ci, ...), the usual in-tree build
# folders and any folder holding a CMakeCache.txt (a CMake build tree under another name).
def hidden(name):
    return name.startswith(".") and len(name) > 1

def list_files():
    caches, files = [], []
    for d, dirs, names in os.walk(root):
        dirs[:] = [x for x in dirs if not hidden(x)]
        rel = os.path.relpath(d, root)
        if "CMakeCache.txt" in names and rel != ".":
            caches.append(rel + "/")
        if rel == ".":
            dirs[:] = [x for x in dirs if x not in ("build", "out")]
        for n in names:
            if hidden(n) or not n.endswith(EXTS):
                continue
            full = os.path.join(d, n)
            if os.path.isfile(full) and not os.path.islink(full):
                files.append(n if rel == "." else rel + "/" + n)
    files = [f for f in files if not any(f.startswith(c) for c in caches)]
    return sorted(files, key=lambda f: f.encode())

if list_only:
    for f in list_files():
        print(f)
    sys.exit(0)

# ---- the rules (docs/architecture.md) -----------------------------------------------------------
if not os.path.isfile(rules):
    print(f"include-check: {rules_name} not found", file=sys.stderr)
    sys.exit(2)
with open(rules, encoding="utf-8", errors="surrogateescape") as fh:
    doc = fh.read().split("\n")

def trim(s):
    return s.strip(" \t\r")

# Data rows of the markdown table between `<!-- include-check:NAME -->` and
# `<!-- /include-check:NAME -->`: non-empty cells, backticks and padding removed.
def table(name):
    b, e = f"<!-- include-check:{name} -->", f"<!-- /include-check:{name} -->"
    on = seen = closed = False
    row, out = 0, []
    for line in doc:
        if trim(line) == b:
            on = seen = True
            continue
        if trim(line) == e:
            on, closed = False, True
            continue
        if on and re.match(r"[ \t]*\|", line):
            t = trim(line)[1:]
            if t.endswith("|"):
                t = t[:-1]
            cells = t.split("|")
            if re.fullmatch(r":?-+:?", trim(cells[0])):
                continue
            row += 1
            if row == 1:
                continue
            out.append([c for c in (trim(c.replace("`", "")) for c in cells) if c])
    if not (seen and closed):
        print(f"include-check: {rules_name} has no complete '{name}' table (markers <!-- include-check:{name} --> ... "
              f"<!-- /include-check:{name} -->)", file=sys.stderr)
        sys.exit(2)
    return out

allowed = {}  # folder -> folders it may include besides itself
for cell in table("rules"):
    if len(cell) < 2:
        print(f"include-check: {rules_name}: rules row '{' '.join(cell)}' needs a folder and a 'may include' cell",
              file=sys.stderr)
        sys.exit(2)
    folder = cell[0][:-1] if cell[0].endswith("/") else cell[0]
    deps = [d[:-1] if d.endswith("/") else d for d in cell[-1].replace(",", " ").split()
            if d not in ("—", "-", "nothing", "(nothing)")]
    allowed[folder] = deps
if not allowed:
    print(f"include-check: {rules_name}: the rules table is empty", file=sys.stderr)
    sys.exit(2)

test_names, test_dirs = [], []
for cell in table("test-files"):
    if cell:
        (test_dirs.append(cell[0][:-1]) if cell[0].endswith("/") else test_names.append(cell[0]))

exception, used = {}, set()  # (file, header) -> reason
for cell in table("exceptions"):
    if len(cell) >= 2:
        exception[(cell[0], cell[1])] = cell[2] if len(cell) > 2 else ""

# ---- helpers ------------------------------------------------------------------------------------
def is_test(path):
    base = path.rsplit("/", 1)[-1]
    d = "/" + path.rsplit("/", 1)[0] + "/" if "/" in path else "/"
    return any(fnmatch.fnmatchcase(base, p) for p in test_names) or any(f"/{p}/" in d for p in test_dirs)

def show(folders):
    return ", ".join(folders) or "nothing"

test_rule = " ".join(test_names + [d + "/" for d in test_dirs])
real_root = os.path.realpath(root)

def rel(path):
    return os.path.relpath(os.path.realpath(path), real_root)

# The root-relative path an include names, as the compiler finds it: beside the including file,
# then from the repository root, then from include/. An include that exists nowhere still maps to
# a folder when its first component is one ("dispatch/select.hpp"). "" = cannot tell.
def resolve(f, inc):
    d = f.rsplit("/", 1)[0] if "/" in f else "."
    for base in (os.path.join(root, d), root, os.path.join(root, "include")):
        if os.path.exists(os.path.join(base, inc)):
            return rel(os.path.join(base, inc))
    if "/" in inc and inc.split("/", 1)[0] in allowed:
        return rel(os.path.join(root, inc))
    return ""

# ---- the check ----------------------------------------------------------------------------------
violations = 0
def bad(msg):
    global violations
    print(msg)
    violations += 1

files = list_files()
for f in files:
    if is_test(f):
        continue  # test files: exempt from the table
    if "/" not in f:
        bad(f"{f}: a source file outside every folder (the table in {rules_name} lists where code lives)")
        continue
    folder = f.split("/", 1)[0]
    if folder not in allowed:
        bad(f"{f}: folder {folder} has no row in the table of {rules_name} (add one: its responsibility and what it may include)")

INCLUDE = re.compile(rb'^[ \t\n\r\f\v]*#[ \t\n\r\f\v]*include[ \t\n\r\f\v]*"([^"]*)"')
nincludes = 0
for f in files:
    try:
        with open(os.path.join(root, f), "rb") as fh:
            lines = fh.read().split(b"\n")
    except OSError:
        continue
    for n, text in enumerate(lines, 1):
        m = INCLUDE.match(text)
        if not m:
            continue
        inc = m.group(1).decode("utf-8", "surrogateescape")
        nincludes += 1
        if is_test(f) or "/" not in f:
            continue
        folder = f.split("/", 1)[0]
        if folder not in allowed:
            continue  # already reported above
        target = resolve(f, inc)
        if not target:
            bad(f'{f}:{n}: cannot tell which folder "{inc}" is in (write includes from the repository root, e.g. "core/case.hpp")')
            continue
        to = target.split("/", 1)[0] if "/" in target else "(top level)"
        key = (f, target)
        if is_test(target):
            if key in exception:
                used.add(key)
                continue
            bad(f"{f}:{n}: production file may not include test file {target} (test files: {test_rule})")
            continue
        if to == folder or to in allowed[folder]:
            continue
        if key in exception:
            used.add(key)
            continue
        if to in allowed:
            bad(f"{f}:{n}: folder {folder} may not include folder {to} (allowed: {show(allowed[folder])})")
        else:
            bad(f"{f}:{n}: folder {folder} may not include folder {to} ({to} has no row in the table of {rules_name}; "
                f"allowed: {show(allowed[folder])})")

for key in exception:
    if key not in used:
        bad(f"{rules_name}: exception '{key[0]} -> {key[1]}' is not needed by any include any more: delete its row")

sys.stdout.flush()
if violations:
    print(f"include-check: {violations} violation(s) of the table in {rules_name}", file=sys.stderr)
    sys.exit(1)
print(f"include-check: {len(files)} files, {nincludes} includes, {len(used)} temporary exception(s): ok")
PY
