"""Plain-text seed notation: a ``StrPrinter`` subclass and the text derivation renderer.

``SeedStrPrinter`` prints network symbols from their :class:`~symprop.notation.Node`
(``w_12^(L)``, ``a_2^(L-1)``, layers relative to L unless ``layers="absolute"``),
activations as ``g^(L)(z_1^(L))``, ``g'^(L)(...)``, ``sigma'(...)``, and derivatives as
``dC_0/dw_12^(L)``.  A whole derivation in plain text is
:func:`symprop.documents.render_derivation`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import sympy
from sympy.printing.precedence import precedence
from sympy.printing.str import StrPrinter

from ..activations import ActivationPrime, ElementwiseActivation, GenericActivation, Softmax
from ..matrix_notation import matrix_of
from ..notation import node_of
from .seed import SEED_SETTINGS, SeedNotation, Width

__all__ = ["SeedStrPrinter", "seed_factor_key", "text"]


#: Order of factors in a printed product, by node kind (seed 000 writes w_jk a_k).
_KIND_ORDER = {"delta": 3, "adj": 3, "w": 5, "b": 6, "a": 7, "x": 7, "z": 8, "y": 9}
_ARRAY_ORDER = {"Delta": 3, "dA": 3, "A": 7, "X": 7, "Z": 8}


def seed_factor_key(factor: sympy.Basic) -> tuple:
    """Numbers, sums, derivatives, deltas, g', then w, b, a, z, y; ties by SymPy's order."""
    if factor.is_Number or isinstance(factor, Width):
        rank = 0
    elif factor.is_Add or isinstance(factor, sympy.Sum) or (
            factor.is_Pow and factor.base.is_Add):
        rank = 1
    elif isinstance(factor, sympy.Derivative):
        rank = 2
    elif isinstance(factor, sympy.Function):
        rank = 4
    elif isinstance(factor, sympy.Indexed):  # an entry of a batch array: Delta, dC/dA first
        array = matrix_of(factor.base.label)
        rank = _ARRAY_ORDER.get(array.kind, 10) if array else 10
    else:
        node = node_of(factor.base if factor.is_Pow else factor)
        rank = _KIND_ORDER.get(node.kind, 10) if node else 10
    return (rank, _SortKeyWhenTied(factor))


class _SortKeyWhenTied:
    """SymPy's default sort key, computed only when two factors of one rank are compared
    (for a sum of thousands of terms it costs milliseconds, and products rarely tie)."""

    __slots__ = ("expr",)

    def __init__(self, expr: sympy.Basic):
        self.expr = expr

    def __lt__(self, other: _SortKeyWhenTied) -> bool:
        return sympy.default_sort_key(self.expr) < sympy.default_sort_key(other.expr)

    def __eq__(self, other) -> bool:
        return isinstance(other, _SortKeyWhenTied) and self.expr == other.expr

    __hash__ = None


class SeedStrPrinter(SeedNotation, StrPrinter):
    """StrPrinter that speaks seed 000's notation."""

    latex_output = False

    _default_settings: ClassVar[dict] = {**StrPrinter._default_settings, **SEED_SETTINGS}

    def _print_Symbol(self, expr):
        """Network symbols by their node, relative to the output layer."""
        node = self._node(expr)
        if node is None:
            return self._matrix_name(expr) or super()._print_Symbol(expr)
        return node.text(self._relative_to)

    def _print_Function(self, expr):
        """g^(l)(z), g'^(l)(z), sigma'(z) and softmax_i(z^(l)) in the seed's style."""
        cls = type(expr)
        if isinstance(expr, Softmax):
            node = node_of(expr.inputs[0])
            inputs = (f"z^({self.layer(node.layer)})" if node is not None
                      else ", ".join(self._print(z) for z in expr.inputs))
            return f"softmax_{expr.index}({inputs})"
        if isinstance(expr, (ElementwiseActivation, ActivationPrime)):
            prime = isinstance(expr, ActivationPrime)
            base = cls.base if prime else cls
            return f"{self._activation_name(base, prime)}({self._print(expr.args[0])})"
        return super()._print_Function(expr)

    def _activation_name(self, cls, prime: bool) -> str:
        """``g^(L)``, ``g'^(L)``, ``sigma``, ``sigma'``."""
        layer = f"^({self.layer(cls.layer)})" if issubclass(cls, GenericActivation) else ""
        return f"{cls.text_name}{chr(39) if prime else ''}{layer}"

    def _print_HadamardProduct(self, expr):
        """The entrywise product, written o as in seed 001."""
        return " o ".join(self.parenthesize(a, precedence(expr)) for a in expr.args)

    def _print_Mul(self, expr):
        """Factors in the seed's order: 2 (a_1 - y_1) g'(z_1) a_2, w_12 a_2, delta_j w_jk."""
        factors = sorted(sympy.Mul.make_args(expr), key=seed_factor_key)
        return super()._print_Mul(sympy.Mul(*factors, evaluate=False))

    def parenthesize(self, item, level, strict=False):
        """An accumulated gradient dC_0/da_j^(l) is a quotient in plain text: a factor of a
        product puts it in parentheses, (dC_0/da_1^(L)) * xhat_1^(L-1)."""
        node = node_of(item)
        if node is not None and node.kind == "adj" and level >= precedence(sympy.Mul(2, item)):
            return f"({self._print(item)})"
        return super().parenthesize(item, level, strict)

    def _print_Sum(self, expr):
        """sum_(k=0)^(3) [ ... ], as the text derivations write a chain rule's sum; one per
        letter of a sum over several, outermost first."""
        index, low, high = expr.limits[-1]
        inner = sympy.Sum(expr.function, *expr.limits[:-1]) if len(expr.limits) > 1 \
            else expr.function
        return f"sum_({self._print(index)}={self._print(low)})^({self._print(high)}) " \
               f"[ {self._print(inner)} ]"

    def _print_KroneckerDelta(self, expr):
        """[j = m]: 1 when the two indices are equal, else 0 (as the LaTeX printer writes it,
        and not delta_jm, which a reader takes for the seed's delta_j^(l))."""
        return self._iverson(*(self._bracket_side(a) for a in expr.args))

    def _print_Derivative(self, expr):
        """d(num)/d(den), the seed's partial-derivative notation in plain text."""
        (var, count), = expr.variable_count
        num = self._print(expr.expr)
        return f"d{num}/d{self._print(var)}" + (f"^{count}" if count != 1 else "")


def text(expr: Any, L: int | None = None, layers: str = "relative") -> str:
    """Print ``expr`` in plain seed notation."""
    return SeedStrPrinter({"L": L, "layers": layers}).doprint(expr)
