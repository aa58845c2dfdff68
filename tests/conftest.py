"""Shared fixtures.  With SYMPROP_REQUIRE_ALL=1 (set by .ci/run) a test that needs JAX,
PyTorch or another real part fails instead of skipping when the part is missing."""

import os

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


@pytest.fixture
def tutorial():
    from symprop import tutorial_spec

    return tutorial_spec()


def need_program(name: str) -> str:
    """The path of an installed program (pdflatex, chromium) or skip (fail in CI)."""
    import shutil

    path = shutil.which(name)
    if path is None:
        if REQUIRE_ALL:
            pytest.fail(f"{name} is required in CI but is not installed")
        pytest.skip(f"{name} is not installed")
    return path
