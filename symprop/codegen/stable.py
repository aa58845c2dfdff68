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
* ``log(softmax(u))`` -> :class:`LogSoftmax` ``(u)``, printed as ``u - logsumexp(u)``;
* in a custom formula (:data:`FORMULA_RULES`), ``log(sum_k(exp(u)))`` -> :class:`LogSumExp`,
  printed as a log-sum-exp that shifts by the largest u, and written out for one node as
  :class:`LogAddExp` ``(u_0, u_1, ...)``.

Derivatives of the new functions are their own ``fdiff`` (sigma' = sigma(1 - sigma),
softplus' = sigma; a log-sum-exp's terms weighted by exp(u - logsumexp) <= 1), so
``sympy.diff`` of a rewritten definition stays stable too.
"""

from __future__ import annotations

import sympy
from sympy import Function, Wild
from sympy.codegen.cfunctions import expm1

from ..layers.letters import SumK

__all__ = [
    "FORMULA_RULES",
    "LOG_RULES",
    "REWRITES",
    "LogAddExp",
    "LogSoftmax",
    "LogSumExp",
    "RowSum",
    "Sigmoid",
    "SoftmaxRow",
    "Softplus",
    "join_exponentials",
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

    def _sympystr(self, printer):
        """In comments as the seed writes the sigmoid: sigma(u)."""
        return f"sigma({printer._print(self.args[0])})"


class Softplus(Function):
    """softplus(u) = log(1 + e^u)."""

    nargs = 1

    def fdiff(self, argindex=1):
        return Sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, u, **kwargs):
        return sympy.log(1 + sympy.exp(u))

    def _sympystr(self, printer):
        return f"softplus({printer._print(self.args[0])})"


class LogSumExp(Function):
    """log(sum_k(exp(u))) of a custom formula, as ``LogSumExp(SumK(exp(u)))``: one value
    per node j, printed as a log-sum-exp over k that no large u overflows.

    Its derivative is each term's derivative weighted by exp(u - LogSumExp) (at most 1),
    never exp(u)/sum_k(exp(u)).  Written out for one node (the sum over k becomes
    exp(u_0) + exp(u_1) + ...) it is :class:`LogAddExp` of the exponents.
    """

    nargs = 1

    @classmethod
    def eval(cls, total):
        if isinstance(total, SumK):
            return None
        exponents = _exponents(total)
        return None if exponents is None else LogAddExp(*exponents)

    def _eval_derivative(self, s):
        total = self.args[0]
        shift = sympy.Dummy("shift")
        (u,) = total.args[0].args
        shifted = total.func(sympy.exp(u - shift), *total.args[1:])
        return sympy.diff(shifted, s).xreplace({shift: self})

    def _sympystr(self, printer):
        return printer._print(sympy.log(self.args[0], evaluate=False))


class LogAddExp(Function):
    """log(exp(u_0) + exp(u_1) + ...), a :class:`LogSumExp` written out for one node;
    printed as nested ``logaddexp``, which shifts by the larger exponent."""

    @classmethod
    def eval(cls, *exponents):
        return exponents[0] if len(exponents) == 1 else None

    def _eval_derivative(self, s):
        return sympy.Add(*[sympy.exp(u - self) * sympy.diff(u, s) for u in self.args])

    def _sympystr(self, printer):
        total = sympy.Add(*[sympy.exp(u) for u in self.args], evaluate=False)
        return printer._print(sympy.log(total, evaluate=False))


def _exponents(total: sympy.Expr) -> list[sympy.Expr] | None:
    """u_0, u_1, ... of exp(u_0) + exp(u_1) + ... (c exp(u) is exp(u + log c)), or None."""
    out = []
    for term in sympy.Add.make_args(total):
        coeff, rest = term.as_coeff_Mul()
        if not isinstance(rest, sympy.exp) or not coeff.is_positive:
            return None
        out.append(rest.args[0] + (sympy.Float(sympy.log(coeff)) if coeff != 1 else 0))
    return out


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


#: What a custom formula takes besides the activations' rules: its log-sum-exp over k.
FORMULA_RULES: tuple[tuple[str, sympy.Expr, sympy.Expr], ...] = (
    ("log-sum-exp", sympy.log(SumK(sympy.exp(_u))), LogSumExp(SumK(sympy.exp(_u)))),
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


def join_exponentials(expr: sympy.Expr) -> sympy.Expr:
    """exp(a) exp(b) -> exp(a + b) in every product: SymPy's ``expand`` splits exp(u - A)
    (a log-sum-exp's softmax weight) into exp(u) exp(-A), each of which can overflow where
    their product is at most 1."""
    def several(e) -> bool:
        return e.is_Mul and sum(isinstance(f, sympy.exp) for f in e.args) > 1

    def join(e):
        exps = [f for f in e.args if isinstance(f, sympy.exp)]
        rest = [f for f in e.args if not isinstance(f, sympy.exp)]
        return sympy.Mul(*rest, sympy.exp(sympy.Add(*[f.args[0] for f in exps])))
    return expr.replace(several, join)
