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
rules_name=${rules#"$root"/}

# ---- the files ----------------------------------------------------------------------------------
# Every C/C++/HIP source under ROOT, except hidden folders (.git, .ci, ...), the usual in-tree build
# folders and any folder holding a CMakeCache.txt (a CMake build tree under another name).
list_files() {
  local caches=() f c skip
  while IFS= read -r c; do caches+=("${c%/CMakeCache.txt}/"); done < <(
    cd "$root" && find . -name '.?*' -prune -o -name CMakeCache.txt -print | sed 's|^\./||')
  while IFS= read -r f; do
    skip=0
    for c in "${caches[@]+"${caches[@]}"}"; do [[ $f == "$c"* ]] && { skip=1; break; }; done
    [ $skip = 1 ] || printf '%s\n' "$f"
  done < <(cd "$root" && find . \( -name '.?*' -o -path ./build -o -path ./out \) -prune -o -type f \
             \( -name '*.h' -o -name '*.hpp' -o -name '*.c' -o -name '*.cc' -o -name '*.cpp' \
                -o -name '*.hip' -o -name '*.cu' -o -name '*.cuh' \) -print | sed 's|^\./||' | LC_ALL=C sort)
}
if [ $list_only = 1 ]; then list_files; exit 0; fi

# ---- the rules (docs/architecture.md) -----------------------------------------------------------
[ -f "$rules" ] || { echo "include-check: $rules_name not found" >&2; exit 2; }

# Data rows of the markdown table between `<!-- include-check:NAME -->` and
# `<!-- /include-check:NAME -->`, cells tab-separated, backticks and padding removed.
table() {
  awk -v b="<!-- include-check:$1 -->" -v e="<!-- /include-check:$1 -->" '
    function trim(s) { gsub(/^[ \t\r]+|[ \t\r]+$/, "", s); return s }
    trim($0) == b { on = 1; seen = 1; next }
    trim($0) == e { on = 0; closed = 1; next }
    on && /^[ \t]*\|/ {
      line = trim($0); sub(/^\|/, "", line); sub(/\|$/, "", line)
      n = split(line, cell, "|")
      if (trim(cell[1]) ~ /^:?-+:?$/) next           # separator row
      if (++row == 1) next                             # header row
      out = ""
      for (i = 1; i <= n; i++) { c = cell[i]; gsub(/`/, "", c); out = out (i > 1 ? "\t" : "") trim(c) }
      print out
    }
    END { if (!seen || !closed) exit 3 }' "$rules" || {
    echo "include-check: $rules_name has no complete '$1' table (markers <!-- include-check:$1 --> ... <!-- /include-check:$1 -->)" >&2
    exit 2
  }
}

declare -A allowed=()     # folder -> " a b c " (folders it may include besides itself)
declare -A exception=()   # "file<TAB>header" -> reason
declare -A used=()        # exceptions some include needed
test_names=() test_dirs=()

rows=$(table rules)
while IFS=$'\t' read -r -a cell; do
  [ ${#cell[@]} -ge 2 ] || { echo "include-check: $rules_name: rules row '${cell[*]}' needs a folder and a 'may include' cell" >&2; exit 2; }
  folder=${cell[0]%/}
  deps=${cell[${#cell[@]}-1]//,/ }
  list=" "
  for d in $deps; do
    case "$d" in —|-|nothing|"(nothing)") ;; *) list+="${d%/} " ;; esac
  done
  allowed[$folder]=$list
done <<< "$rows"
[ ${#allowed[@]} -gt 0 ] || { echo "include-check: $rules_name: the rules table is empty" >&2; exit 2; }

rows=$(table test-files)
while IFS=$'\t' read -r -a cell; do
  [ ${#cell[@]} -ge 1 ] && [ -n "${cell[0]}" ] || continue
  case "${cell[0]}" in */) test_dirs+=("${cell[0]%/}") ;; *) test_names+=("${cell[0]}") ;; esac
done <<< "$rows"

rows=$(table exceptions)
while IFS=$'\t' read -r -a cell; do
  [ ${#cell[@]} -ge 2 ] && [ -n "${cell[0]}" ] || continue
  exception["${cell[0]}"$'\t'"${cell[1]}"]=${cell[2]:-}
done <<< "$rows"

# ---- helpers ------------------------------------------------------------------------------------
is_test() {  # root-relative path
  local base=${1##*/} dir="/${1%/*}/" p
  [[ $1 == */* ]] || dir=/
  for p in "${test_names[@]+"${test_names[@]}"}"; do [[ $base == $p ]] && return 0; done
  for p in "${test_dirs[@]+"${test_dirs[@]}"}"; do [[ $dir == */"$p"/* ]] && return 0; done
  return 1
}
known() { [ -n "${allowed[$1]+x}" ]; }
show() {  # " a b " -> "a, b" or "nothing"
  local s; s=$(echo $1 | sed 's/ /, /g'); echo "${s:-nothing}"
}
test_rule="$(printf '%s ' "${test_names[@]+"${test_names[@]}"}" "${test_dirs[@]/%//}")"

# The root-relative path an include names, as the compiler finds it: beside the including file,
# then from the repository root, then from include/. An include that exists nowhere still maps to
# a folder when its first component is one ("dispatch/select.hpp"). Empty = cannot tell.
resolve() {  # file inc
  local dir=${1%/*} first=${2%%/*}
  [[ $1 == */* ]] || dir=.
  if [ -e "$root/$dir/$2" ]; then realpath -m --relative-to="$root" "$root/$dir/$2"
  elif [ -e "$root/$2" ]; then realpath -m --relative-to="$root" "$root/$2"
  elif [ -e "$root/include/$2" ]; then realpath -m --relative-to="$root" "$root/include/$2"
  elif [[ $2 == */* ]] && known "$first"; then realpath -m --relative-to="$root" "$root/$2"
  fi
}

# ---- the check ----------------------------------------------------------------------------------
violations=0 nfiles=0 nincludes=0
bad() { echo "$1"; violations=$((violations + 1)); }

mapfile -t files < <(list_files)
nfiles=${#files[@]}
for f in "${files[@]+"${files[@]}"}"; do
  is_test "$f" && continue                       # test files: exempt from the table
  folder=${f%%/*}
  if [[ $f != */* ]]; then bad "$f: a source file outside every folder (the table in $rules_name lists where code lives)"; continue; fi
  known "$folder" || bad "$f: folder $folder has no row in the table of $rules_name (add one: its responsibility and what it may include)"
done

while IFS= read -r hit; do
  f=${hit%%:*}; rest=${hit#*:}; line=${rest%%:*}; text=${rest#*:}
  inc=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]*)".*/\1/' <<< "$text")
  nincludes=$((nincludes + 1))
  is_test "$f" && continue
  folder=${f%%/*}
  [[ $f == */* ]] && known "$folder" || continue   # already reported above
  target=$(resolve "$f" "$inc")
  if [ -z "$target" ]; then
    bad "$f:$line: cannot tell which folder \"$inc\" is in (write includes from the repository root, e.g. \"core/case.hpp\")"
    continue
  fi
  to=${target%%/*}
  [[ $target == */* ]] || to="(top level)"
  if is_test "$target"; then
    key="$f"$'\t'"$target"
    if [ -n "${exception[$key]+x}" ]; then used[$key]=1; continue; fi
    bad "$f:$line: production file may not include test file $target (test files: ${test_rule% })"
    continue
  fi
  [ "$to" = "$folder" ] && continue
  [[ ${allowed[$folder]} == *" $to "* ]] && continue
  key="$f"$'\t'"$target"
  if [ -n "${exception[$key]+x}" ]; then used[$key]=1; continue; fi
  if known "$to"; then
    bad "$f:$line: folder $folder may not include folder $to (allowed: $(show "${allowed[$folder]}"))"
  else
    bad "$f:$line: folder $folder may not include folder $to ($to has no row in the table of $rules_name; allowed: $(show "${allowed[$folder]}"))"
  fi
done < <(
  if [ $nfiles -gt 0 ]; then
    cd "$root" && printf '%s\0' "${files[@]}" |
      xargs -0 grep -HnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]*"' || true
  fi)

for key in "${!exception[@]}"; do
  [ -n "${used[$key]+x}" ] && continue
  bad "$rules_name: exception '${key%%$'\t'*} -> ${key#*$'\t'}' is not needed by any include any more: delete its row"
done

if [ $violations -gt 0 ]; then
  echo "include-check: $violations violation(s) of the table in $rules_name" >&2
  exit 1
fi
echo "include-check: $nfiles files, $nincludes includes, ${#used[@]} temporary exception(s): ok"
