"""What the text and LaTeX printers share: layers, network nodes, batch-form matrices, sums.

A mixin, so each SymPy printer subclass keeps SymPy's dispatch.  It owns the layer labels
(relative to L unless ``layers="absolute"``), the node a symbol stands for (a_k^(0) is the
input x_k), the named matrices of the batch form (``_print_MatrixSymbol`` names Delta^(L),
W^(L), dC/dW^(L); ``_print_Transpose`` folds the T into the superscript,
``\\Delta^{(L)\\top}`` rather than a double superscript; g'^(l)(Z^(l)) uses the printer's own
activation names) and the order of terms in a sum.
"""

from __future__ import annotations

from typing import ClassVar

import sympy
from sympy.matrices.expressions import MatrixSymbol

from ..matrix_notation import MATRIX_KINDS, PER_SAMPLE, matrix_label, matrix_of
from ..notation import Node, layer_label, node_of

__all__ = ["MAX_TERMS", "SEED_SETTINGS", "Elided", "SeedNotation", "Width", "elide"]

#: Settings every seed-notation printer adds to its SymPy base's ``_default_settings``:
#: the output layer L, relative or absolute layers, factors in the order given, and the
#: most terms a sum prints before its middle is elided (None: every term).
SEED_SETTINGS: dict = {"L": None, "layers": "relative", "order": "none", "max_terms": None}
#: Lists longer than this are shown as their first terms, the ones that matter, and the last.
MAX_TERMS = 7


def elide(items: list, keep: tuple[int, ...] = (), limit: int = MAX_TERMS) -> list:
    """``items`` with the middle replaced by ``None`` (an ellipsis) when there are many.

    The first two, the last, and every position in ``keep`` (e.g. the surviving term) stay.
    """
    if len(items) <= limit:
        return list(items)
    shown = {0, 1, len(items) - 1, *keep}
    out: list = []
    for n, item in enumerate(items):
        if n in shown:
            out.append(item)
        elif out and out[-1] is not None:
            out.append(None)
    return out


class Elided(sympy.Symbol):
    """The elided middle of a long sum; printed as ``\\cdots`` or ``...``."""

    def __new__(cls):
        return super().__new__(cls, "Elided")


class Width(sympy.Symbol):
    """A layer's width in a general formula, printed as its number: a symbol, so that
    (1 + xhat_j xhat_m)/8 keeps the form the derivation gives it."""

    def __new__(cls, value: int):
        return super().__new__(cls, f"width{int(value)}", integer=True, positive=True)

    @property
    def value(self) -> int:
        return int(self.name.removeprefix("width"))


def _node_order(term: sympy.Expr) -> tuple:
    """Terms of a long sum in node order (delta_0 w_01, delta_1 w_11, ...), not as strings."""
    nodes = sorted((n.layer or 0, n.j, n.k or 0) for n in map(node_of, term.free_symbols)
                   if n is not None and isinstance(n.j, int))
    return (not nodes, nodes, sympy.default_sort_key(term))


class SeedNotation:
    """Mixin for a printer with ``latex_output`` and ``_activation_name()``."""

    latex_output: ClassVar[bool]

    @property
    def _relative_to(self) -> int | None:
        """The output layer L when layers print relative to it, else None (absolute)."""
        return self._settings["L"] if self._settings["layers"] == "relative" else None

    def layer(self, layer: int) -> str:
        """``L``, ``L-1``, ... or the absolute layer number."""
        return layer_label(layer, self._relative_to)

    @staticmethod
    def _node(expr) -> Node | None:
        """The network node a symbol stands for (a_k^(0) is the input x_k), else None."""
        node = node_of(expr)
        if node is not None and node.kind == "a" and node.layer == 0:
            return Node("x", None, node.j)
        return node

    def _matrix_name(self, expr, transpose: bool = False) -> str | None:
        name = matrix_of(expr)
        if name is None:
            return None
        layer = None if name.layer is None else self.layer(name.layer)
        if name.kind == "gprime":
            z = matrix_label(type(name)("Z", name.layer), layer, self.latex_output)
            act = self._activation_name(name.activation, True)
            return rf"{act}\left({z}\right)" if self.latex_output else f"{act}({z})"
        label = matrix_label(name, layer, self.latex_output, transpose)
        if name.via is not None:  # the part of dC/dA^(l) that layer ``via`` passes back
            via = self.layer(name.via)
            return rf"\left.{label}\right|_{{({via})}}" if self.latex_output else \
                f"{label}|({via})"
        return label

    def _print_MatrixSymbol(self, expr):
        """Delta^(L), A^(L-1), dC/dW^(L), g'^(L)(Z^(L)) for the batch form's matrices."""
        return self._matrix_name(expr) or super()._print_MatrixSymbol(expr)

    def _print_Transpose(self, expr):
        """The transpose of a named matrix carries T in its own superscript."""
        if isinstance(expr.arg, MatrixSymbol):
            name = self._matrix_name(expr.arg, transpose=True)
            if name is not None:
                return name
        return super()._print_Transpose(expr)

    def _print_MatrixElement(self, expr):
        """Entry (b, j) of a named matrix: Delta^(L)_{b,j}; gradients in parentheses."""
        name = self._matrix_name(expr.parent)
        if name is None:
            return super()._print_MatrixElement(expr)
        kind = matrix_of(expr.parent).kind
        if kind == "gprime" or MATRIX_KINDS[kind][2]:  # g'(Z) and dC/dW need parentheses
            name = rf"\left({name}\right)" if self.latex_output else f"({name})"
        i, j = self._print(expr.i), self._print(expr.j)
        if kind in PER_SAMPLE:  # one value per sample: sigma_b
            return f"{name}_{{{i}}}" if self.latex_output else f"{name}[{i}]"
        return f"{name}_{{{i},{j}}}" if self.latex_output else f"{name}[{i}, {j}]"

    def _bracket_side(self, side: sympy.Expr) -> str:
        """One side of a bracket, or an index: arithmetic of letters as a window writes it,
        the stride's term first (``2r+u-1``, ``4c+2p+q``); anything else as printed."""
        terms = sympy.Add.make_args(side)

        def letter_term(t):
            coefficient, rest = t.as_coeff_Mul()
            return coefficient.is_Integer and rest.is_Symbol and node_of(rest) is None
        if side.is_Atom or not all(t.is_Integer or letter_term(t) for t in terms):
            return self._print(side)
        pairs = sorted((t.as_coeff_Mul() for t in terms if not t.is_Integer),
                       key=lambda cs: (-abs(cs[0]), cs[1].name))
        text = "".join(f"{'-' if c < 0 else '+'}{abs(c) if abs(c) != 1 else ''}{v.name}"
                       for c, v in pairs).removeprefix("+")
        constant = sum(int(t) for t in terms if t.is_Integer)
        return text + (f"{constant:+d}" if constant else "")

    def _iverson(self, i: str, j: str) -> str:
        """``[i = j]``, the Kronecker delta; each one printed is kept in ``self.iverson`` (a
        document says once what the bracket means)."""
        text = f"[{i} = {j}]"
        if not hasattr(self, "iverson"):
            self.iverson: dict[str, tuple[str, str]] = {}
        self.iverson.setdefault(text, (i, j))
        return text

    def _print_Width(self, expr):
        return str(expr.value)

    def _print_Elided(self, expr):
        return r"\cdots" if self.latex_output else "..."

    def _print_Add(self, expr, order=None):
        """As people write sums: n - 1, not -1 + n; y - x, not -x + y.

        With the ``max_terms`` setting, a longer sum prints in node order with its middle
        elided: delta_0 w_01 + delta_1 w_11 + ... + delta_1999 w_1999,1.
        """
        limit = self._settings["max_terms"]
        if limit and len(expr.args) > limit:
            shown = elide(sorted(expr.args, key=_node_order), limit=limit)
            return super()._print_Add(sympy.Add(*[Elided() if t is None else t for t in shown],
                                                evaluate=False), order)
        terms = list(expr.args)
        tail = [t for t in terms if t.is_Number and t.is_negative]
        if tail and len(terms) > len(tail):
            terms = [t for t in terms if t not in tail] + tail
        if terms[0].could_extract_minus_sign():
            positive = next((t for t in terms if not t.could_extract_minus_sign()), None)
            if positive is not None:  # y - x rather than -x + y
                terms.remove(positive)
                terms.insert(0, positive)
        if terms != list(expr.args):
            expr = sympy.Add(*terms, evaluate=False)
        return super()._print_Add(expr, order)

    def _print_OneMatrix(self, expr):
        """The row of ones whose product with Delta sums its columns."""
        return r"\mathbf{1}^{\top}" if self.latex_output else "1^T"
