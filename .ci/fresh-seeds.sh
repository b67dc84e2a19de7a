#!/usr/bin/env bash
# Runs the planted-bug shrink tests N times, each with a fresh seed (PACHECK_FRESH_SEEDS=1), and
# counts the runs where a bug was missed or did not shrink to at most 2 sequences x 2 pages. CI
# pins one seed per test; this is how a shrink that sticks for 1 seed in 600 is found.
#   bash .ci/fresh-seeds.sh N [BUILD_DIR] [GTEST_FILTER]
#     defaults: build/host, 'Planted/ShrinkToMinimal.*'; -j: FRESH_SEEDS_JOBS (default 1)
# Exit 1 when any run failed; each failing run's output (with its seed, which RC_PARAMS="seed=S"
# replays) is kept under BUILD_DIR/fresh-seeds/.
set -euo pipefail
n=${1:?usage: fresh-seeds.sh N [BUILD_DIR] [GTEST_FILTER]}
build=${2:-build/host}
filter=${3:-Planted/ShrinkToMinimal.*}
jobs=${FRESH_SEEDS_JOBS:-1}
bin=$build/property/property_mutant_shrink_test
[ -x "$bin" ] || { echo "fresh-seeds: $bin not built (cmake --build --preset host --target property_mutant_shrink_test)" >&2; exit 2; }
out=$build/fresh-seeds
rm -rf "$out"
mkdir -p "$out"
one() {  # run index
  local log=$out/run_$1.log
  if PACHECK_FRESH_SEEDS=1 "$bin" --gtest_filter="$filter" --gtest_brief=1 > "$log" 2>&1; then
    grep -h '^\[ seed' "$log" >> "$out/seeds_$1.txt" || true
    rm -f "$log"
  fi
}
export -f one
export out bin filter
start=$(date +%s)
seq 1 "$n" | xargs -P "$jobs" -I{} bash -c 'one {}'
seeds=$(find "$out" -name 'seeds_*.txt' -exec cat {} + | wc -l)
failed=$(find "$out" -name 'run_*.log' | wc -l)
echo "fresh-seeds: $n runs of '$filter' ($seeds seeded test runs passed) in $(( $(date +%s) - start )) s: $failed failed"
if [ "$failed" -gt 0 ]; then
  find "$out" -name 'run_*.log' -exec grep -h -E '^\[ (seed|minimal)|Failure' {} + | head -20 >&2
  exit 1
fi
