"""Shared fixtures and the one marker for optional parts.

A test that needs a program outside Python (pdflatex, chromium) says so with
``@pytest.mark.needs("pdflatex")``: it skips, with the reason, when the program is not on
PATH, so README's test command passes on a machine that has only Python.  With
SYMPROP_REQUIRE_ALL=1 (set by .ci/run, which installs every part) a missing program, JAX or
PyTorch is a failure instead of a skip.
"""

import os
import shutil

import pytest

REQUIRE_ALL = os.environ.get("SYMPROP_REQUIRE_ALL") == "1"


def need(module: str):
    """Import ``module`` or skip (fail under SYMPROP_REQUIRE_ALL=1)."""
    try:
        return __import__(module)
    except ImportError:
        if REQUIRE_ALL:
            pytest.fail(f"{module} is required in CI but is not installed")
        pytest.skip(f"{module} is not installed")


def assert_near_autodiff(report, rtol: float = 1e-10) -> None:
    """Every comparison of ``report`` against JAX or PyTorch within ``rtol`` of the largest
    reference entry, or within 1e-12 (a loss of 3e6 is right to 3e-9)."""
    for c in report.comparisons:
        if c.against in ("jax", "torch"):
            assert c.max_abs_error <= 1e-12 or c.max_rel_error <= rtol, c


def need_program(name: str) -> str:
    """The path of an installed program (pdflatex, chromium) or skip (fail in CI)."""
    path = shutil.which(name)
    if path is None:
        if REQUIRE_ALL:
            pytest.fail(f"{name} is required in CI but is not installed")
        pytest.skip(f"{name} is not installed")
    return path


#: Headless Chromium as the HTML tests run it: no network of its own, no first-run work.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(program, ...): the test runs the named programs "
                                       "(pdflatex, chromium); skipped when one is missing")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs"):
        for program in mark.args:
            need_program(program)


@pytest.fixture
def tutorial():
    from symprop import tutorial_spec

    return tutorial_spec()
