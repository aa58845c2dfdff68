"""``TorchCodePrinter``: SymPy's ``TorchPrinter`` with the forms generated torch modules need.

The same row forms the NumPy target prints (:mod:`.rules`, :mod:`.stable`) printed for
tensors: the stable sigmoid, softplus and softmax are torch's own fused kernels, a sum over
a row of nodes is ``.sum(dim=1, keepdim=True)``, a step function a comparison. Nothing here
imports torch: the printer only writes text.
"""

from __future__ import annotations

from typing import ClassVar

import sympy
from sympy.codegen.cfunctions import expm1, log1p
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pytorch import TorchPrinter

from .printer import ArrayCodeNames

__all__ = ["TorchCodePrinter"]


class TorchCodePrinter(ArrayCodeNames, TorchPrinter):
    """Prints SymPy row forms as torch code; network symbols under their module names."""

    MAXIMUM, MINIMUM, WHERE = "torch.maximum", "torch.minimum", "torch.where"
    LOGADDEXP = "torch.logaddexp"

    #: SymPy's table plus the accurate forms the stable rewrites use.
    mapping: ClassVar[dict] = {**TorchPrinter.mapping, expm1: "torch.expm1", log1p: "torch.log1p"}

    _default_settings: ClassVar[dict] = {
        **TorchPrinter._default_settings,
        "fully_qualified_modules": True,
        "symbol_names": None,
    }

    def _call(self, name: str, *args) -> str:
        return f"{name}({', '.join(self._print(a) for a in args)})"

    def _print_Sigmoid(self, expr):
        """torch's sigmoid kernel saturates without overflow."""
        return self._call("torch.sigmoid", expr.args[0])

    def _print_Softplus(self, expr):
        """log(1 + e^u), finite for any u."""
        return self._call("torch.nn.functional.softplus", expr.args[0])

    def _print_SoftmaxRow(self, expr):
        return f"torch.softmax({self._print(expr.args[0])}, dim=1)"

    def _print_LogSoftmax(self, expr):
        return f"torch.log_softmax({self._print(expr.args[0])}, dim=1)"

    def _print_RowSum(self, expr):
        summand = self.parenthesize(expr.args[0], PRECEDENCE["Atom"], strict=True)
        return f"{summand}.sum(dim=1, keepdim=True)"

    def _like(self, expr) -> str | None:
        """The tensor a number beside tensors in ``expr`` takes its dtype, device and shape
        from: the first of the printer's names, else the first array ``expr`` reads."""
        names = self._settings["symbol_names"] or {}
        if names:
            return next(iter(names.values()))
        symbols = sorted(expr.free_symbols, key=str)
        return self._print(symbols[0]) if symbols else None

    def _operand(self, arg, like: str | None = None) -> str:
        """A number beside a tensor in maximum/where: torch wants a tensor there, of the
        other operand's dtype (a Python float would make a float32 tensor)."""
        if arg.is_Number and like:
            return f"torch.full_like({like}, {self._print(arg)})"
        return self._print(arg)

    def _print_Max(self, expr):
        """max(0, z) as ``torch.clamp_min(z, 0)``: one pass, no tensor of zeros."""
        return self._clamped("torch.clamp_min", expr) or super()._print_Max(expr)

    def _print_Min(self, expr):
        return self._clamped("torch.clamp_max", expr) or super()._print_Min(expr)

    def _clamped(self, name: str, expr) -> str | None:
        numbers = [a for a in expr.args if a.is_Number]
        if len(expr.args) != 2 or len(numbers) != 1:
            return None
        other = next(a for a in expr.args if not a.is_Number)
        return f"{name}({self._print(other)}, {self._print(numbers[0])})"

    def _print_Piecewise(self, expr):
        """Nested ``torch.where``; both branches are evaluated (their inf is discarded)."""
        pieces = list(expr.args)
        if pieces[-1].cond != sympy.true:
            raise ValueError(f"Piecewise without an otherwise-branch: {expr}")
        like = self._like(expr)
        printed = self._operand(pieces[-1].expr, like)
        for piece in reversed(pieces[:-1]):
            printed = (f"torch.where({self._print(piece.cond)}, "
                       f"{self._operand(piece.expr, like)}, {printed})")
        return printed

    def _print_Pow(self, expr):
        """Squares and square roots as operators, reciprocals as division; a power of numbers
        (sqrt(pi)) is its value, since torch.sqrt takes tensors only; a fractional exponent
        is parenthesised (x**(3/2), not x**3/2)."""
        if not expr.free_symbols and expr.is_extended_real:
            return repr(float(expr))
        base = self.parenthesize(expr.base, PRECEDENCE["Pow"], strict=True)
        if expr.exp == -1:
            return f"1 / {base}"
        if expr.exp == sympy.S.Half:
            return f"torch.sqrt({self._print(expr.base)})"
        if expr.exp == -sympy.S.Half:
            return f"torch.rsqrt({self._print(expr.base)})"
        return f"{base}**{self.parenthesize(expr.exp, PRECEDENCE['Atom'], strict=True)}"
