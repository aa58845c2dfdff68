"""Progress of long work, on stderr, hidden when stderr is not a terminal.

A thin layer over tqdm so every long loop (a report's derivations and matrix checks, a
proof of every parameter, finite differences) shows the same bar.  Ctrl-C stops the work
between steps; the command line then exits 130 without writing its output.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from tqdm import tqdm

from .interrupts import stop_if_interrupted

__all__ = ["progress"]


class _Bar(tqdm):
    """tqdm that stops between steps once a Ctrl-C was recorded (one that landed in JAX or
    PyTorch is only recorded there: see :mod:`symprop.interrupts`)."""

    def __iter__(self):
        for item in super().__iter__():
            stop_if_interrupted()
            yield item

    def update(self, n=1):
        stop_if_interrupted()
        return super().update(n)


def progress(iterable: Iterable | None = None, *, what: str, total: int | None = None) -> tqdm:
    """``iterable`` with a bar described by ``what`` (or a bar to ``update()`` by hand).

    The bar goes to stderr, and only when stderr is a terminal (tqdm's ``disable=None``),
    so redirected output, pipes and CI logs stay clean; it is removed when done.
    """
    return _Bar(iterable, desc=what, total=total, file=sys.stderr, disable=None, leave=False,
                unit="step", dynamic_ncols=True)
