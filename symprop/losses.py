"""Per-sample losses C_0: one table entry each, a SymPy expression per output node.

C_0 = sum_j loss(a_j^{(L)}, y_j).  Derivatives come from SymPy, never from this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy

__all__ = ["A_OUT", "LOSSES", "Y_OUT", "LossRule"]

#: The per-node variables a loss expression is written in.
A_OUT = sympy.Symbol("a", real=True)
Y_OUT = sympy.Symbol("y", real=True)


@dataclass(frozen=True)
class LossRule:
    """One row of the loss table: the term of output node j, given a, y and the width n."""

    name: str
    term: Callable[[sympy.Expr, sympy.Expr, int], sympy.Expr]
    #: The loss takes log(a) (or log(1 - a)), so a must be a probability.
    needs_probabilities: bool = False
    description: str = ""


LOSSES: dict[str, LossRule] = {
    rule.name: rule
    for rule in [
        LossRule("sse", lambda a, y, n: (a - y) ** 2,
                 description="sum of squared errors, C_0 = sum_j (a_j - y_j)^2"),
        LossRule("half_sse", lambda a, y, n: (a - y) ** 2 / 2,
                 description="half the sum of squared errors"),
        LossRule("mse", lambda a, y, n: (a - y) ** 2 / n,
                 description="mean squared error over the output nodes"),
        LossRule("cross_entropy", lambda a, y, n: -y * sympy.log(a), needs_probabilities=True,
                 description="cross-entropy, C_0 = -sum_j y_j log a_j"),
        LossRule("binary_cross_entropy",
                 lambda a, y, n: -(y * sympy.log(a) + (1 - y) * sympy.log(1 - a)),
                 needs_probabilities=True,
                 description="binary cross-entropy, -sum_j [y_j log a_j + (1 - y_j) log(1 - a_j)]"),
    ]
}
