"""Numerically stable forms: a table of identities applied to SymPy expressions before printing.

An activation's definition is written for readers (``1/(1 + exp(-x))``); evaluated as written
in floating point it overflows for large |z|.  Each rule below is an identity (SymPy checks
every rewritten activation against the original at random points, see
:func:`symprop.codegen.rules.stable_activation`), replacing a subexpression by a function
whose NumPy form cannot overflow:

* ``1/(1 + exp(-u))`` -> :class:`Sigmoid` ``(u)``, printed as ``(1 + tanh(u/2))/2``;
* ``log(1 + exp(u))`` -> :class:`Softplus` ``(u)``, printed as ``logaddexp(0, u)``;
* ``exp(u) - 1`` -> ``expm1(u)``;
* ``log(sigma(u))`` -> ``-softplus(-u)`` and ``log(1 - sigma(u))`` -> ``-softplus(u)``
  (what makes sigmoid + binary cross-entropy finite at |z| = 1e3);
* ``log(softmax(u))`` -> :class:`LogSoftmax` ``(u)``, printed as ``u - logsumexp(u)``.

Derivatives of the new functions are their own ``fdiff`` (sigma' = sigma(1 - sigma),
softplus' = sigma), so ``sympy.diff`` of a rewritten definition stays stable too.
"""

from __future__ import annotations

import sympy
from sympy import Function, Wild
from sympy.codegen.cfunctions import expm1

__all__ = [
    "LOG_RULES",
    "REWRITES",
    "LogSoftmax",
    "RowSum",
    "Sigmoid",
    "SoftmaxRow",
    "Softplus",
    "rewrite_stable",
]

_u = Wild("u")


class Sigmoid(Function):
    """sigma(u) = 1/(1 + e^{-u})."""

    nargs = 1

    def fdiff(self, argindex=1):
        return self * (1 - self)

    def _eval_rewrite_as_exp(self, u, **kwargs):
        return 1 / (1 + sympy.exp(-u))


class Softplus(Function):
    """softplus(u) = log(1 + e^u)."""

    nargs = 1

    def fdiff(self, argindex=1):
        return Sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, u, **kwargs):
        return sympy.log(1 + sympy.exp(u))


class SoftmaxRow(Function):
    """softmax over the nodes of a layer, applied to each sample (row) of a matrix."""

    nargs = 1


class LogSoftmax(Function):
    """log(softmax(u)) row by row, computed without forming softmax."""

    nargs = 1


class RowSum(Function):
    """Sum over the nodes of a layer, one value per sample: shape (batch, 1)."""

    nargs = 1

    @classmethod
    def eval(cls, arg):
        """Pull constant factors out (the sum is linear), so printed code sums once."""
        coeff, rest = arg.as_coeff_Mul()
        if coeff != 1:
            return coeff * cls(rest)
        return None


#: (what it is, pattern, replacement); applied in order, repeatedly until nothing changes.
REWRITES: tuple[tuple[str, sympy.Expr, sympy.Expr], ...] = (
    ("sigmoid", 1 / (1 + sympy.exp(-_u)), Sigmoid(_u)),
    ("sigmoid", sympy.exp(_u) / (1 + sympy.exp(_u)), Sigmoid(_u)),
    ("softplus", sympy.log(1 + sympy.exp(_u)), Softplus(_u)),
    ("expm1", sympy.exp(_u) - 1, expm1(_u)),
)

#: Logarithms of probabilities, rewritten through the pre-activation.
LOG_RULES: tuple[tuple[str, sympy.Expr, sympy.Expr], ...] = (
    ("log sigmoid", sympy.log(Sigmoid(_u)), -Softplus(-_u)),
    ("log(1 - sigmoid)", sympy.log(1 - Sigmoid(_u)), -Softplus(_u)),
    ("log softmax", sympy.log(SoftmaxRow(_u)), LogSoftmax(_u)),
)


def rewrite_stable(expr: sympy.Expr, rules=REWRITES + LOG_RULES) -> sympy.Expr:
    """Apply the rewrite table until the expression stops changing."""
    for _ in range(10):
        before = expr
        for _name, pattern, replacement in rules:
            expr = expr.replace(pattern, replacement)
        if expr == before:
            return expr
    return expr
