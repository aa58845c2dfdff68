"""LaTeX in seed 000's notation: a ``LatexPrinter`` subclass, no string surgery on its output.

``SeedLatexPrinter`` prints network symbols from their :class:`~symprop.notation.Node`
(``w_{12}^{(L)}``, ``w_{10,3}^{(2)}``, ``\\delta_{1}^{(L)}``; layers relative to L unless
``layers="absolute"``), activations as ``g^{(L)}\\left(z_{1}^{(L)}\\right)``,
``g^{\\prime (L)}\\left(...\\right)``, ``\\sigma^{\\prime}\\left(...\\right)``, derivatives as
``\\frac{\\partial C_{0}}{\\partial w_{12}^{(L)}}``, and the matrices of the batch form
(:mod:`symprop.matrix`) as ``\\Delta^{(L)}``, ``\\Delta^{(L)\\top}``,
``g^{\\prime (L-1)}\\left(Z^{(L-1)}\\right)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import sympy
from sympy.printing.latex import LatexPrinter

from ..activations import ActivationPrime, ElementwiseActivation, GenericActivation, Softmax
from ..matrix_notation import MATRIX_KINDS, matrix_of
from ..notation import node_of
from .seed import SEED_SETTINGS, SeedNotation
from .text import seed_factor_key

__all__ = ["SeedLatexPrinter", "latex"]

#: The longest exponent (in characters of LaTeX) printed as a superscript of e.
MAX_EXPONENT = 80


class SeedLatexPrinter(SeedNotation, LatexPrinter):
    """LatexPrinter that speaks seed 000's notation."""

    latex_output = True

    _default_settings: ClassVar[dict] = {**LatexPrinter._default_settings, **SEED_SETTINGS}

    def _print_Symbol(self, expr, style="plain"):
        """Network symbols by their node; a_k^(0) prints as the input x_k."""
        node = self._node(expr)
        if node is None:
            return self._matrix_name(expr) or super()._print_Symbol(expr, style)
        return node.latex(self._relative_to)

    def _activation_name(self, cls, prime: bool) -> str:
        """``g^{(L)}``, ``g^{\\prime (L)}``, ``\\sigma``, ``\\sigma^{\\prime}``."""
        layer = f"({self.layer(cls.layer)})" if issubclass(cls, GenericActivation) else ""
        if prime:
            return f"{cls.latex_name}^{{\\prime {layer}}}" if layer else \
                f"{cls.latex_name}^{{\\prime}}"
        return f"{cls.latex_name}^{{{layer}}}" if layer else cls.latex_name

    def _print_Function(self, expr, exp=None):
        """Activations and their derivatives in the seed's style; other functions as SymPy."""
        if isinstance(expr, Softmax):
            node = node_of(expr.inputs[0])
            inputs = (f"z^{{({self.layer(node.layer)})}}" if node is not None
                      else ", ".join(self._print(z) for z in expr.inputs))
            text = rf"\operatorname{{softmax}}_{{{expr.index}}}\left({inputs}\right)"
            return text if exp is None else rf"\left({text}\right)^{{{exp}}}"
        if isinstance(expr, (ElementwiseActivation, ActivationPrime)):
            prime = isinstance(expr, ActivationPrime)
            base = type(expr).base if prime else type(expr)
            text = (self._activation_name(base, prime)
                    + rf"\left({self._print(expr.args[0])}\right)")
            return text if exp is None else rf"\left({text}\right)^{{{exp}}}"
        return super()._print_Function(expr, exp)

    def _print_Mul(self, expr):
        """Factors in the seed's order: 2 (a_1 - y_1) g'(z_1) a_2, w_12 a_2, delta_j w_jk."""
        factors = sorted(sympy.Mul.make_args(expr), key=seed_factor_key)
        return super()._print_Mul(sympy.Mul(*factors, evaluate=False))

    def _print_Sum(self, expr):
        """One \\sum per letter, outermost first (\\sum_{c=0}^{5} \\sum_{u=0}^{2} ...), as a
        textbook writes a sum over channels and kernel offsets."""
        if len(expr.limits) == 1:
            return super()._print_Sum(expr)
        var, low, high = expr.limits[-1]
        inner = sympy.Sum(expr.function, *expr.limits[:-1])
        return (rf"\sum_{{{self._print(var)}={self._print(low)}}}^{{{self._print(high)}}} "
                + self._print_Sum(inner))

    def _print_Derivative(self, expr):
        """``\\frac{\\partial num}{\\partial den}``, the seed's notation, always partial."""
        (var, count), = expr.variable_count
        power = f"^{{{count}}}" if count != 1 else ""
        return (rf"\frac{{\partial{power} {self._print(expr.expr)}}}"
                rf"{{\partial {self._print(var)}{power}}}")

    def _print_ExpBase(self, expr, exp=None):
        """e^{x}; a long exponent as \\exp\\left(x\\right), which a page can break over
        lines (a superscript cannot be broken)."""
        arg = self._print(expr.args[0])
        if len(arg) <= MAX_EXPONENT:
            return super()._print_ExpBase(expr, exp)
        return self._do_exponent(rf"\exp\left({arg}\right)", exp)

    def _print_Indexed(self, expr):
        """C_i: the loss of sample i; an entry of a batch array, A^{(l)}_{b,c,2p+u-1,q}, a
        gradient's in parentheses."""
        base = self._print(expr.base.label)
        array = matrix_of(expr.base.label)
        if array is not None and MATRIX_KINDS[array.kind][2]:
            base = rf"\left({base}\right)"
        return f"{base}_{{{','.join(self._bracket_side(i) for i in expr.indices)}}}"

    def _print_KroneckerDelta(self, expr, exp=None):
        """The Kronecker delta of a Jacobian, [i = m] (Iverson's bracket), distinct from the
        seed's delta_j^(l)."""
        text = self._iverson(*(self._bracket_side(a) for a in expr.args))
        return text if exp is None else rf"{text}^{{{exp}}}"


def latex(expr: Any, L: int | None = None, layers: str = "relative") -> str:
    """Print ``expr`` in LaTeX seed notation."""
    return SeedLatexPrinter({"L": L, "layers": layers}).doprint(expr)
