"""adapters/numpy_reference.py under pacheck from pytest: the example of adapters/README.md.

Every smoke case is one test (id: the case's slug) judged by pacheck's oracle and verdict, and a
few properties of the property suite run on generated cases. With PACHECK_PLANT_BUG=1 in the
environment the adapter's planted bug makes these tests fail with the replay line
(test_entry_point.py checks that).
"""
import pathlib

import pytest

import pacheck_pytest as pp

ADAPTER = pathlib.Path(__file__).resolve().parents[2] / "adapters" / "numpy_reference.py"
KERNEL = pp.Kernel(ADAPTER)


@pytest.mark.parametrize("case", KERNEL.cases("smoke"))
def test_smoke(case):
    KERNEL.judge(case)


@pytest.mark.parametrize("prop", ["reference", "relocation", "kv_scale"])
def test_property(prop):
    KERNEL.check(properties=[prop], cases=10, seed=3)
