"""Printing the named matrices of the batch form, shared by the text and LaTeX printers.

A mixin, so each SymPy printer subclass keeps SymPy's dispatch: ``_print_MatrixSymbol``
names Delta^(L), W^(L), dC/dW^(L); ``_print_Transpose`` folds the T into the superscript
(``\\Delta^{(L)\\top}``, not a double superscript); g'^(l)(Z^(l)) uses the printer's own
activation names.
"""

from __future__ import annotations

from sympy.matrices.expressions import MatrixSymbol

from ..matrix import matrix_label, matrix_of

__all__ = ["MatrixNotation"]


class MatrixNotation:
    """Mixin (batch-form matrices, sums) for a printer with ``latex_output``, ``layer()`` and ``_activation_name()``."""

    latex_output: bool

    def _matrix_name(self, expr, transpose: bool = False) -> str | None:
        name = matrix_of(expr)
        if name is None:
            return None
        layer = None if name.layer is None else self.layer(name.layer)
        if name.kind == "gprime":
            z = matrix_label(type(name)("Z", name.layer), layer, self.latex_output)
            act = self._activation_name(name.activation, True)
            return rf"{act}\left({z}\right)" if self.latex_output else f"{act}({z})"
        return matrix_label(name, layer, self.latex_output, transpose)

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
        if kind in ("gprime", "dW", "db", "dA"):
            name = rf"\left({name}\right)" if self.latex_output else f"({name})"
        i, j = self._print(expr.i), self._print(expr.j)
        return f"{name}_{{{i},{j}}}" if self.latex_output else f"{name}[{i}, {j}]"

    def _print_Add(self, expr, order=None):
        """As people write sums: n - 1, not -1 + n; y - x, not -x + y."""
        import sympy

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
