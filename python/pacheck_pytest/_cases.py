"""pacheck's cases as pytest parameters: `pacheck cases --json` read once per suite."""
import json
import re

from ._run import run


class Case:
    """One case of a suite: pacheck's JSON for it and the names pacheck gives it.

    `slug` is the test id (stable: it encodes the configuration and a hash of every field, seed
    included); `json` is what `pacheck run --case` reads; `replay` is the line that re-runs it.
    """

    __slots__ = ("index", "slug", "name", "vars", "json", "replay", "siblings")

    def __init__(self, index, slug, name, vars, json, replay, siblings=None):
        self.index, self.slug, self.name, self.vars = index, slug, name, vars
        self.json, self.replay = json, replay
        # The list this case came from: judge() runs the cases after it in the same pacheck run.
        self.siblings = siblings

    def __repr__(self):
        return "Case(%s)" % (self.name or self.slug)


def load_cases(suite="smoke", regression=None, seed=None, device=None, pacheck=None):
    """The cases of a built-in suite (smoke, ci, nightly), or of a regression folder, in pacheck's order."""
    args = ["cases", "--json"] + (["--regression", regression] if regression else ["--suite", suite])
    if seed is not None:
        args += ["--seed", seed]
    if device:
        args += ["--device", device]
    _, out, _ = run(pacheck, args)
    entries = json.loads(out)
    cases = []
    for e in entries:
        cases.append(Case(e["index"], e["slug"], e["name"], e["vars"], e["case"], e["replay"], cases))
    return cases


def cases(suite="smoke", regression=None, seed=None, device=None, pacheck=None):
    """pytest parameters, one per case, each with the case's slug as its id.

    Use with `@pytest.mark.parametrize("case", pacheck_pytest.cases("ci"))`; `-k`, `-x` and `--lf`
    then select cases by slug. `device` (mi300x, mi355x, h100) picks the suite's fp8 flavour: give
    the same one to the Kernel that judges them.
    """
    import pytest

    return [pytest.param(c, id=c.slug) for c in load_cases(suite, regression, seed, device, pacheck)]


def properties(pacheck=None):
    """The property names `pacheck check --properties` takes, read from its help text."""
    _, out, _ = run(pacheck, ["check", "--help"])
    m = re.search(r"--properties\s+LIST.*\(default all\):\s*([a-z_,]+)", out)
    if not m:
        raise ValueError("`pacheck check --help` names no property list (looked for "
                         "'--properties LIST ... (default all): a,b,...'):\n" + out)
    return m.group(1).split(",")
