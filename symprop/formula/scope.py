"""The values a formula is read with: which letters are bound to which numbers (a
:class:`Scope`), and the SymPy functions that stand for sums over a batch's samples."""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from .tokens import FormulaError

__all__ = ["AtSample", "BatchSum", "FreeIndexError", "Scope"]


class BatchSum(sympy.Function):
    """The sum over the samples of a batch of its argument (evaluated sample by sample)."""

    nargs = 1


class AtSample(sympy.Function):
    """``AtSample(s, expr)``: ``expr`` evaluated at sample s of the batch (C_1, ...)."""

    nargs = 2


class FreeIndexError(FormulaError):
    """A letter index or layer that no sum binds and the left side does not name."""

    def __init__(self, letter: str, *args, **kwargs):
        self.letter = letter
        super().__init__(*args, **kwargs)


@dataclass(frozen=True)
class Scope:
    """Letters bound to numbers (sum indices, free indices of the left side), and the sample."""

    bound: dict[str, int] = field(default_factory=dict)
    sample: str | None = None
    #: Inside a summation bound, where n is the width of the layer the index runs over.
    in_bounds: bool = False

    def bind(self, letter: str, value: int) -> Scope:
        return Scope({**self.bound, letter: value}, self.sample)
