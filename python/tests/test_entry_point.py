"""The pytest entry point itself: a planted bug fails the test with a replay line that fails again,
pytest's -k / -x / --lf select cases by their slugs, check() fails with pacheck's minimal case, a
suite is judged in few pacheck runs, and a missing program is named with every place tried."""
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

import pacheck_pytest as pp
from pacheck_pytest import _binary, _kernel

HERE = pathlib.Path(__file__).resolve().parent
ADAPTER = HERE.parents[1] / "adapters" / "numpy_reference.py"
PACHECK = pp.find_pacheck()


def pytest_run(args, tmp_path, plant_bug):
    """Runs pytest on test_numpy_reference.py's smoke cases in a fresh process; (exit code, output)."""
    env = dict(os.environ, PACHECK=PACHECK)
    env.pop("PACHECK_PLANT_BUG", None)
    if plant_bug:
        env["PACHECK_PLANT_BUG"] = "1"
    cmd = [sys.executable, "-m", "pytest", str(HERE / "test_numpy_reference.py"), "-q", "-p", "no:randomly",
           "-o", "cache_dir=" + str(tmp_path / "cache"), "-k", "test_smoke"] + args
    proc = subprocess.run(cmd, cwd=str(HERE.parent), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    return proc.returncode, proc.stdout


def replay(line, plant_bug):
    """Runs a printed replay line (`[VAR=value ...] pacheck replay ...`) with the same program."""
    argv = shlex.split(line)
    env = dict(os.environ)
    env.pop("PACHECK_PLANT_BUG", None)
    while "=" in argv[0]:
        k, v = argv.pop(0).split("=", 1)
        env[k] = v
    if plant_bug:
        env["PACHECK_PLANT_BUG"] = "1"
    assert argv[:2] == ["pacheck", "replay"], line
    env.setdefault("PACHECK_PYTHON", sys.executable)
    return subprocess.run([PACHECK] + argv[1:], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)


def test_planted_bug_fails_with_a_replay_line_that_fails_again(tmp_path):
    rc, out = pytest_run(["-x"], tmp_path, plant_bug=True)
    assert rc == 1, out
    assert "1 failed" in out and "stopping after 1 failures" in out, out  # -x stopped at the first
    assert "metric=" in out and "kernel=numpy_reference status=Fail" in out, out
    lines = re.findall(r"replay: (pacheck replay .*)$", out, re.M)
    assert lines, out
    failed_id = re.search(r"FAILED \S+::test_smoke\[(\w+)\]", out).group(1)
    assert failed_id in out.split("replay:")[0], "the failure names the case's slug"
    r = replay(lines[0], plant_bug=True)
    assert r.returncode == 1, "the replay line must fail again on the planted bug:\n" + r.stdout
    r = replay(lines[0], plant_bug=False)
    assert r.returncode == 0, "the same case passes without the planted bug:\n" + r.stdout

    # --lf re-runs exactly the failed case by its id; fixed (no planted bug), it passes.
    rc, out = pytest_run(["--lf"], tmp_path, plant_bug=False)
    assert rc == 0 and re.search(r"\b1 passed\b", out) and "deselected" in out, out

    # -k selects one case by its slug.
    rc, out = pytest_run(["-k", failed_id, "-rf"], tmp_path, plant_bug=True)
    assert rc == 1 and re.search(r"\b1 failed\b", out) and "passed" not in out, out
    assert "pacheck replay" in out, out


def test_check_fails_with_the_minimal_case_and_replay_line():
    kernel = pp.Kernel(ADAPTER, env={"PACHECK_PLANT_BUG": "1"})
    with pytest.raises(AssertionError) as e:
        kernel.check(properties=["reference"], cases=20, seed=3)
    text = str(e.value)
    assert "minimal case: S=" in text and "metric=" in text, text
    line = re.search(r"replay: (.*pacheck replay .*)$", text, re.M).group(1)
    assert line.startswith("PACHECK_PLANT_BUG=1 pacheck replay"), line
    assert replay(line, plant_bug=False).returncode == 1, "the printed line carries the planted bug's switch"


def test_a_property_that_does_not_apply_is_a_skip():
    # numpy_reference declares no split-K partition: pacheck checks nothing (and exits 1 for it).
    with pytest.raises(pytest.skip.Exception, match="split n/a: the kernel declares no split-K partition"):
        pp.Kernel(ADAPTER).check(properties=["split"], cases=5, seed=1)


def test_a_declined_case_is_a_skip_naming_the_reason():
    e5m2 = [c for c in pp.load_cases("smoke") if c.json["kv_dtype"] == "fp8_e5m2"]
    assert e5m2, "smoke has an fp8_e5m2 case, which numpy_reference does not declare"
    with pytest.raises(pytest.skip.Exception, match="NotSupported: .*kv_dtype=fp8_e5m2 not in"):
        pp.Kernel(ADAPTER, batch=1).judge(e5m2[0])


def test_a_suite_is_judged_in_batches(monkeypatch):
    calls = []
    real_run = _kernel.run
    monkeypatch.setattr(_kernel, "run", lambda *a, **k: calls.append(a[1][0]) or real_run(*a, **k))
    kernel = pp.Kernel(ADAPTER, batch=4)
    cases = pp.load_cases("smoke")
    for c in cases[:6]:
        try:
            kernel.judge(c)
        except pytest.skip.Exception:  # a case the kernel declines is judged all the same
            pass
    assert calls == ["run", "run"], "cases 0-3 in one run, 4-7 in the next: %s" % calls


def test_ids_are_the_case_slugs():
    params = pp.cases("smoke")
    ids = [p.id for p in params]
    assert ids == [c.slug for c in pp.load_cases("smoke")]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"\w+", i) for i in ids)


def test_a_missing_program_names_every_place_tried(monkeypatch, tmp_path):
    monkeypatch.delenv("PACHECK", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    (tmp_path / "src" / "python" / "pacheck_pytest").mkdir(parents=True)  # looks like a checkout
    monkeypatch.setattr(_binary, "_SOURCE_ROOT", str(tmp_path / "src"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(pp.PacheckNotFound) as e:
        pp.find_pacheck()
    text = str(e.value)
    for tried in ("$PACHECK (not set)", "on PATH (%s)" % (tmp_path / "bin"),
                  str(tmp_path / "src" / "build" / "host" / "tools" / "pacheck"),
                  str(tmp_path / "build" / "host" / "tools" / "pacheck")):
        assert tried in text, text

    monkeypatch.setenv("PACHECK", str(tmp_path / "nope"))
    with pytest.raises(pp.PacheckNotFound, match=r"\$PACHECK names '.*nope', which is not an executable"):
        pp.find_pacheck()
    with pytest.raises(pp.PacheckNotFound, match="the pacheck= argument names 'elsewhere'"):
        pp.find_pacheck("elsewhere")


def test_a_missing_adapter_is_named():
    with pytest.raises(FileNotFoundError, match="no_such_adapter.py"):
        pp.Kernel("no_such_adapter.py")


def test_the_package_installs_offline(tmp_path):
    """`pip install --no-build-isolation ./python` needs only Debian's setuptools; the installed copy
    works outside the checkout. Built from a copy, so no build folder lands in the source tree."""
    import shutil

    # Asked in a child: importing setuptools here, after pytest loaded distutils, trips its shim.
    if subprocess.run([sys.executable, "-c", "import setuptools, pip"]).returncode != 0:
        pytest.skip("%s has no pip or no setuptools (Debian: python3-pip, python3-setuptools)" % sys.executable)

    src = tmp_path / "src"
    shutil.copytree(str(HERE.parent), str(src), ignore=shutil.ignore_patterns("tests", ".pytest_cache", "build",
                                                                              "*.egg-info", "__pycache__"))
    target = tmp_path / "site"
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--quiet",
                           "--target", str(target), str(src)], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    assert proc.returncode == 0, "pip exited %d:\n%s" % (proc.returncode, proc.stdout)
    code = "import pacheck_pytest as pp; print(pp.__file__); print(pp.find_pacheck())"
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=str(target),
                          PACHECK=PACHECK), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.splitlines() == [str(target / "pacheck_pytest" / "__init__.py"), PACHECK], proc.stdout
