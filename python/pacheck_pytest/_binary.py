"""Finding the pacheck program: an argument, $PACHECK, PATH, then the build folders of a checkout."""
import glob
import os
import shutil

# The checkout this package sits in when used in place (python/pacheck_pytest/ -> the repository).
_SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class PacheckNotFound(FileNotFoundError):
    """No pacheck program where we looked; the message lists every place tried."""


def _executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _build_dirs(root):
    # build/host first (the host preset), then any other preset's build folder, in name order.
    first = os.path.join(root, "build", "host", "tools", "pacheck")
    rest = sorted(p for p in glob.glob(os.path.join(root, "build", "*", "tools", "pacheck")) if p != first)
    return [first] + rest


def _roots():
    # The checkout holding this package (used in place; installed, it sits in site-packages), then
    # the working directory and its parents (a test run from inside a checkout).
    in_place = os.path.isdir(os.path.join(_SOURCE_ROOT, "python", "pacheck_pytest"))
    roots, d = [_SOURCE_ROOT] if in_place else [], os.getcwd()
    while True:
        if d not in roots:
            roots.append(d)
        parent = os.path.dirname(d)
        if parent == d:
            return roots
        d = parent


def find_pacheck(pacheck=None):
    """The path of the pacheck program.

    An explicit `pacheck` argument, else $PACHECK, must name an executable: a wrong one is an error,
    never silently replaced by another binary. Without either: `pacheck` on PATH, then
    build/host/tools/pacheck and build/*/tools/pacheck under this package's checkout and under the
    working directory and its parents.
    """
    for value, source in ((pacheck, "the pacheck= argument"), (os.environ.get("PACHECK"), "$PACHECK")):
        if value:
            path = shutil.which(value) if os.sep not in str(value) else str(value)
            if path and _executable(path):
                return os.path.abspath(path)
            raise PacheckNotFound("%s names '%s', which is not an executable file" % (source, value))
    tried = ["the pacheck= argument (not given)", "$PACHECK (not set)"]
    on_path = shutil.which("pacheck")
    if on_path:
        return on_path
    tried.append("`pacheck` on PATH (%s)" % (os.environ.get("PATH") or "PATH empty"))
    for root in _roots():
        for candidate in _build_dirs(root):
            if _executable(candidate):
                return candidate
            if candidate not in tried:
                tried.append(candidate)
    raise PacheckNotFound(
        "pacheck program not found; tried:\n  " + "\n  ".join(tried)
        + "\nbuild it (cmake --preset host && cmake --build --preset host --target pacheck), or pass "
          "pacheck=PATH, or set PACHECK=PATH")
