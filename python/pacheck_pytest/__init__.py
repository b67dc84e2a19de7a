"""pacheck from pytest: a kernel's test file gets pacheck's cases as parameters and pacheck's
verdict on each, by driving the `pacheck` program (its oracle, its verdict, its report JSON).

    import pytest
    import pacheck_pytest as pp

    KERNEL = pp.Kernel("adapters/my_adapter.py")       # the adapter contract of adapters/README.md

    @pytest.mark.parametrize("case", KERNEL.cases("ci"))  # ids are the cases' slugs
    def test_ci(case):
        KERNEL.judge(case)                                 # fails with the case, metric and replay line

    @pytest.mark.parametrize("prop", pp.properties())
    def test_property(prop):
        KERNEL.check(properties=[prop], cases=50, seed=1)  # fails with the minimal case and replay line
"""
from ._binary import PacheckNotFound, find_pacheck
from ._cases import Case, cases, load_cases, properties
from ._kernel import DEFAULT_BATCH, Kernel, kernel_spec
from ._run import PacheckError

__all__ = ["Case", "Kernel", "PacheckError", "PacheckNotFound", "cases", "check", "find_pacheck", "judge",
           "kernel_spec", "load_cases", "properties", "DEFAULT_BATCH"]
__version__ = "0.1.0"


def judge(case, kernel, **options):
    """Kernel(kernel, **options).judge(case); reuse one Kernel to judge a suite in few pacheck runs."""
    __tracebackhide__ = True
    return _kernel_for(kernel, options).judge(case)


def check(kernel, properties=None, cases=100, seed=None, capture=False, **options):
    """Kernel(kernel, **options).check(properties, cases, seed, capture)."""
    __tracebackhide__ = True
    return _kernel_for(kernel, options).check(properties, cases, seed, capture)


# One Kernel per (kernel, options): judge() called case by case still runs a suite in batches.
_kernels = {}


def _kernel_for(kernel, options):
    if isinstance(kernel, Kernel) and not options:
        return kernel
    key = (kernel_spec(kernel.spec if isinstance(kernel, Kernel) else kernel), repr(sorted(options.items())))
    if key not in _kernels:
        _kernels[key] = Kernel(key[0], **options)
    return _kernels[key]
