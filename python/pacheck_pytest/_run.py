"""Running the pacheck program: one place that builds the environment and reads the exit code."""
import os
import shlex
import subprocess
import sys

from ._binary import find_pacheck

# pacheck's exit codes (pacheck --help).
EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class PacheckError(RuntimeError):
    """pacheck refused its input (exit 2) or ended otherwise than pass/fail: not a kernel's verdict."""


def environment(extra=None):
    env = dict(os.environ)
    # The worker runs Python adapters under $PACHECK_PYTHON, else `python3` from PATH; under pytest
    # the interpreter running the tests is the one known to have the test's imports (numpy).
    env.setdefault("PACHECK_PYTHON", sys.executable)
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


def run(pacheck, args, env=None, timeout=None, ok=(EXIT_OK,)):
    """Runs `pacheck ARGS`; returns (exit code, stdout, stderr). An exit code outside `ok` raises."""
    binary = find_pacheck(pacheck)
    cmd = [binary] + [str(a) for a in args]
    proc = subprocess.run(cmd, env=environment(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout)
    if proc.returncode not in ok:
        raise PacheckError("`%s` exited %d:\n%s%s" % (" ".join(shlex.quote(c) for c in cmd), proc.returncode,
                                                      proc.stderr, proc.stdout[-4000:]))
    return proc.returncode, proc.stdout, proc.stderr
