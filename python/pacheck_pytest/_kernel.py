"""A kernel under test, judged by the pacheck program: `pacheck run` for suite cases (its JSON
report read back), `pacheck check` for the property suite. No verdict is computed here."""
import json
import os
import re
import shlex
import tempfile

from ._binary import find_pacheck
from ._cases import Case, load_cases
from ._run import EXIT_FAIL, EXIT_OK, PacheckError, run

# Cases judged in one `pacheck run` when a test asks for one: the worker and the adapter start once
# per run (~0.3 s), the numpy reference judges a smoke case in a few ms.
DEFAULT_BATCH = 32


def kernel_spec(kernel):
    """pacheck's --kernel SPEC for an adapter module, a path to one, `py:PATH` or a plug-in PATH.so[:NAME]."""
    if hasattr(kernel, "__file__") and not isinstance(kernel, (str, bytes, os.PathLike)):
        kernel = kernel.__file__  # an imported adapter module
    spec = os.fspath(kernel)
    if spec.startswith("py:"):
        path = spec[3:]
    elif spec.endswith(".py"):
        path = spec
    else:  # a C plug-in: PATH.so or PATH.so:NAME, or whatever else pacheck's --kernel takes
        return os.path.abspath(spec) if os.path.exists(spec) else spec
    if not os.path.isfile(path):
        raise FileNotFoundError("adapter '%s' (from kernel=%r): no such file (relative to %s)"
                                % (path, kernel, os.getcwd()))
    return "py:" + os.path.abspath(path)


class Kernel:
    """One kernel (or a family in one adapter module) under pacheck's test.

    kernel:  the adapter module, its path, `py:PATH`, or a C plug-in `PATH.so[:NAME]`.
    pacheck: the program (else $PACHECK, PATH, build/*/tools/pacheck; see find_pacheck).
    device:  device model (mi300x, mi355x, h100) for routing and the suite's fp8 flavour.
    env:     extra environment for pacheck and its worker (it is also written before the replay line).
    batch:   how many of a suite's cases one `pacheck run` judges (1: one run per case).
    timeout: --kernel-timeout, seconds one launch may take.
    """

    def __init__(self, kernel, pacheck=None, device=None, env=None, batch=DEFAULT_BATCH, timeout=None):
        self.spec = kernel_spec(kernel)
        self.pacheck, self.device, self.env = pacheck, device, dict(env or {})
        self.batch, self.timeout = max(1, int(batch)), timeout
        self._records = {}  # case slug -> that case's report records

    def __repr__(self):
        return "Kernel(%s)" % self.spec

    # ---- suites -------------------------------------------------------------------------------
    def cases(self, suite="smoke", regression=None, seed=None):
        """pytest parameters for the suite's cases (ids: slugs), with this kernel's device model."""
        import pytest

        return [pytest.param(c, id=c.slug) for c in load_cases(suite, regression, seed, self.device, self.pacheck)]

    def judge(self, case):
        """Judges one case with pacheck's oracle and verdict.

        Returns the case's report records when the kernel passes; skips the test (pytest.skip)
        when every record is a refusal (NotSupported) or Skipped; raises AssertionError naming the
        kernel, the case, the metric and the replay line on a Fail.
        """
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        records = self._judged(case)
        failed = [r for r in records if r.get("status") == "Fail"]
        if failed:
            raise AssertionError("\n".join(self._failure(r) for r in failed))
        if records and not any(r.get("status") == "Ok" for r in records):
            import pytest

            pytest.skip("; ".join("%s %s: %s" % (r.get("path"), r.get("status"), r.get("message")) for r in records))
        return records

    def _judged(self, case):
        if not isinstance(case, Case):  # a case's JSON (dict or text), e.g. from a report
            return self._run_cases([json.loads(case) if isinstance(case, str) else case], None)[None]
        if case.slug not in self._records:
            batch = [case]
            if case.siblings is not None:  # the cases after it in its list, not judged yet
                pos = next(i for i, c in enumerate(case.siblings) if c is case)
                batch += [c for c in case.siblings[pos + 1:] if c.slug not in self._records][: self.batch - 1]
            self._records.update(self._run_cases([c.json for c in batch], [c.slug for c in batch]))
        return self._records[case.slug]

    def _run_cases(self, case_jsons, slugs):
        """Runs the cases in one `pacheck run`; their records by slug (all under None when slugs is None)."""
        with tempfile.TemporaryDirectory(prefix="pacheck-pytest-") as tmp:
            case_file, report_file = os.path.join(tmp, "cases.json"), os.path.join(tmp, "report.json")
            with open(case_file, "w") as f:
                json.dump(case_jsons, f)
            args = ["run", "--case", case_file, "--kernel", self.spec, "--no-dispatch", "--quiet",
                    "--report", report_file] + self._common_args()
            run(self.pacheck, args, self.env, ok=(EXIT_OK, EXIT_FAIL))
            with open(report_file) as f:
                report = json.load(f)
        if slugs is None:
            return {None: report["cases"]}
        by_slug = {s: [] for s in slugs}
        for r in report["cases"]:
            by_slug.setdefault(r["case"]["slug"], []).append(r)
        missing = [s for s in slugs if not by_slug[s]]
        if missing:
            raise PacheckError("pacheck's report holds no record of case(s) %s" % ", ".join(missing))
        return by_slug

    def _common_args(self):
        args = []
        if self.device:
            args += ["--device", self.device]
        if self.timeout is not None:
            args += ["--kernel-timeout", self.timeout]
        return args

    def _replay(self, line):
        if self.device and "--device" not in line:
            line += " --device " + self.device
        prefix = "".join("%s=%s " % (k, shlex.quote(str(v))) for k, v in sorted(self.env.items()))
        return prefix + line

    def _failure(self, r):
        c = r.get("case", {})
        return ("pacheck: kernel %s fails case %s (%s)\n"
                "  case: %s\n"
                "  kernel=%s status=%s metric=%s: %s\n"
                "  replay: %s\n"
                "  (pacheck is %s)" % (
                    r.get("path"), c.get("name") or c.get("slug"), c.get("slug"), c.get("vars"), r.get("path"),
                    r.get("status"), r.get("metric"), r.get("message"), self._replay(r.get("replay", "")),
                    find_pacheck(self.pacheck)))

    # ---- the property suite -------------------------------------------------------------------
    def check(self, properties=None, cases=100, seed=None, capture=False):
        """Runs `pacheck check` on this kernel.

        properties: names (see pacheck_pytest.properties()), default all. seed: default fresh
        (pacheck prints it). Returns pacheck's summary text when every applicable property holds;
        skips when every named property is not applicable; raises AssertionError with pacheck's
        minimal case, metric and replay line when one fails. capture=True also saves the minimal
        case under regression/captured/ as the CLI does.
        """
        __tracebackhide__ = True
        args = ["check", "--kernel", self.spec, "--cases", cases] + self._common_args()
        if properties:
            args += ["--properties", ",".join([properties] if isinstance(properties, str) else properties)]
        if seed is not None:
            args += ["--seed", seed]
        if not capture:
            args.append("--no-capture")
        rc, out, err = run(self.pacheck, args, self.env, ok=(EXIT_OK, EXIT_FAIL))
        outcomes = re.findall(r"^  (\w+)\s+(passed|FAILED|n/a)\s+(.*)$", out, re.M)
        if outcomes and all(o[1] == "n/a" for o in outcomes):
            # pacheck exits 1 when nothing was checked; for one property's test that is a skip
            # naming why, as a declined case is.
            import pytest

            pytest.skip("; ".join("%s n/a: %s" % (o[0], o[2]) for o in outcomes))
        if rc == EXIT_FAIL:
            text = out
            if self.env:  # the replay lines hold only the command: name the environment they need
                text = re.sub(r"replay: (pacheck replay .*)", lambda m: "replay: " + self._replay(m.group(1)), text)
            raise AssertionError("pacheck check failed (pacheck is %s):\n%s" % (find_pacheck(self.pacheck), text))
        return out
