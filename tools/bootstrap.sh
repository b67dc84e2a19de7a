#!/usr/bin/env bash
# One entry point for a fresh Debian machine (README quick start):
#   bash tools/bootstrap.sh run  [pacheck run flags]   install what is missing, build, run pacheck
#   bash tools/bootstrap.sh test [ctest flags]         install what is missing, build, run all tests
# `run` uses the best backend present (NVIDIA via nvcc + a visible GPU, AMD via a ROCm hipcc +
# /dev/kfd), falling back to the host backend (host twins of every path) everywhere else.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode="${1:-}"
[ $# -gt 0 ] && shift
case "$mode" in
  run|test) ;;
  -h|--help|help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: bash tools/bootstrap.sh run|test [args...]  (got '${mode}')" >&2; exit 2 ;;
esac

# --- 1. packages (Debian only; nothing is downloaded at configure or build time) ---------------
pkgs=(cmake ninja-build g++ pkg-config git libgtest-dev libgmock-dev librapidcheck-dev
      libeigen3-dev nlohmann-json3-dev libcli11-dev libbenchmark-dev libjs-chart.js python3 python3-numpy
      python3-pytest)
# The test job also checks the HTML report in a headless browser.
[ "$mode" = test ] && pkgs+=(chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. pick the preset -------------------------------------------------------------------------
preset=host
if [ "$mode" = run ]; then
  if command -v nvcc >/dev/null && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    preset=cuda
  elif command -v hipconfig >/dev/null && [ -e /dev/kfd ]; then
    preset=rocm
  fi
fi
if [ "$preset" != host ] && ! grep -q "\"name\": \"$preset\"" CMakePresets.json; then preset=host; fi
echo "bootstrap: preset '$preset'"

# --- 3. build -------------------------------------------------------------------------------------
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"

# --- 4. run ---------------------------------------------------------------------------------------
if [ "$mode" = run ]; then
  [ $# -eq 0 ] && set -- --suite smoke --report pacheck-report.json
  exec "build/$preset/tools/pacheck" run "$@"
else
  exec ctest --preset "$preset" "$@"
fi
