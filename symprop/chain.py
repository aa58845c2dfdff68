"""The chain rule's pieces, as data: factors, paths, sums of paths, and the batch average.

For dC_0/dw_jk^(l) seed 000 writes a product of three factors, each d(numerator)/d(denominator)
worked out from the numerator's definition; a hidden layer's first factor is a sum over the
next layer's nodes.  :class:`Factor`, :class:`Path` (one product) and :class:`ChainRule` (a
sum of products) hold every such step for the printers and the proofs; the engine that
builds them is :class:`symprop.derivation.Backprop`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sympy

if TYPE_CHECKING:
    from .derivation import Derivation

__all__ = ["BATCH_SIZE", "SAMPLE", "BatchAverage", "ChainRule", "Factor", "Path"]

#: Batch size n and sample index i of the batch average (seed 000: C = 1/n sum_i C_i).
BATCH_SIZE = sympy.Symbol("n", integer=True, positive=True)
SAMPLE = sympy.Symbol("i", integer=True, nonnegative=True)
_LOSS = sympy.IndexedBase("C")
_BATCH_LOSS = sympy.Symbol("C", real=True)


@dataclass(frozen=True)
class Factor:
    """One factor d(numerator)/d(denominator), worked out from the numerator's definition.

    ``terms`` is the definition's right-hand side split into its sum's terms, in node order;
    ``term_derivatives[i]`` is the derivative of ``terms[i]`` (a zero when the term does not
    contain the denominator).  These and the value may be built only when read: a z of a wide
    layer has thousands of terms, and a backward sum has thousands of factors, few of them
    printed.  ``backward`` is set instead when the numerator is C_0 and the
    denominator a hidden activation: that factor is a chain rule of its own.
    """

    numerator: sympy.Symbol
    denominator: sympy.Symbol
    #: The factor's value, or a function that computes it when :attr:`value` is first read.
    value_of: sympy.Expr | Callable[[], sympy.Expr] = field(repr=False)
    terms: Sequence[sympy.Expr] = ()
    term_derivatives: Sequence[sympy.Expr] = ()
    backward: Derivation | None = field(default=None, compare=False)

    @functools.cached_property
    def value(self) -> sympy.Expr:
        value = self.value_of
        return value if isinstance(value, sympy.Basic) else value()

    @property
    def definition(self) -> sympy.Expr | None:
        """The numerator's definition: the sum of ``terms``."""
        return sympy.Add(*self.terms) if self.terms else None

    @property
    def derivative(self) -> sympy.Derivative:
        """The factor as an unevaluated ``Derivative(numerator, denominator)``."""
        return sympy.Derivative(self.numerator, self.denominator)

    @property
    def vanishing(self) -> tuple[int, ...]:
        """Positions of the terms whose derivative is zero."""
        return tuple(i for i, d in enumerate(self.term_derivatives) if d == 0)

    @property
    def surviving(self) -> tuple[int, ...]:
        return tuple(i for i, d in enumerate(self.term_derivatives) if d != 0)


@dataclass(frozen=True)
class Path:
    """One product of factors: a path of arrows from the loss node to the target."""

    factors: tuple[Factor, ...]

    @property
    def value(self) -> sympy.Expr:
        return sympy.Mul(*[f.value for f in self.factors])


@dataclass(frozen=True)
class ChainRule:
    """d C_0 / d target as a sum over paths (one path when nothing is summed)."""

    target: sympy.Symbol
    paths: tuple[Path, ...]
    #: The index summed over and the layer it runs over, e.g. ("j", L); None for one path.
    sum_index: tuple[str, int] | None = None

    @property
    def value(self) -> sympy.Expr:
        return sympy.Add(*[p.value for p in self.paths])


@dataclass(frozen=True)
class BatchAverage:
    """dC/d(target) over a batch: (1/n) sum_i dC_i/d(target) for ``mean``, no 1/n for ``sum``."""

    target: sympy.Symbol
    reduction: str

    @property
    def lhs(self) -> sympy.Derivative:
        return sympy.Derivative(_BATCH_LOSS, self.target)

    @property
    def rhs(self) -> sympy.Expr:
        total = sympy.Sum(sympy.Derivative(_LOSS[SAMPLE], self.target),
                          (SAMPLE, 0, BATCH_SIZE - 1))
        return total / BATCH_SIZE if self.reduction == "mean" else total

    @property
    def equation(self) -> sympy.Eq:
        return sympy.Eq(self.lhs, self.rhs, evaluate=False)

    def combine(self, per_sample: list) -> object:
        """Apply the reduction to per-sample values (numbers or arrays)."""
        total = sum(per_sample[1:], per_sample[0])
        return total / len(per_sample) if self.reduction == "mean" else total
