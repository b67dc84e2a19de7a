#!/usr/bin/env bash
# CTest's entry to the pytest tests of the entry point, in place (no install):
#   bash python/tests/ctest_pytest.sh PYTHON PACHECK
# Exit 77 (CTest: skipped) when PYTHON has no pytest: that is a missing package, not a failure.
set -uo pipefail
python=${1:?python3 with numpy and pytest}
export PACHECK=${2:?pacheck binary}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if ! "$python" -c 'import pytest' 2>/dev/null; then
  echo "python_pytest: skipped: $python cannot import pytest (Debian: apt-get install python3-pytest;" \
       "tools/bootstrap.sh installs it)"
  exit 77
fi
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
unset PACHECK_PLANT_BUG  # the tests switch the planted bug on themselves, where they mean to
# No .pytest_cache in the source tree; the --lf test keeps its own in a temp folder.
exec "$python" -m pytest "$here/tests" -q -p no:cacheprovider
