"""Small named functions of a generated module, printed from SymPy expressions.

A :class:`Helper` is one ``def`` of the module: its arguments, a docstring stating the formula
it implements, the common subexpressions SymPy's ``cse`` pulled out, and the result.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import sympy

from .printer import NumpyCodePrinter

__all__ = ["Helper", "make_helper"]


@dataclass(frozen=True)
class Helper:
    name: str
    args: tuple[str, ...]
    doc: str
    #: ``(name, code)`` assignments before the result (from common subexpression elimination).
    lines: tuple[tuple[str, str], ...]
    result: str
    #: The body uses np.where, which evaluates both branches: overflow in the discarded one
    #: is expected and silenced (only there).
    errstate: bool = False


def make_helper(name: str, args: dict[sympy.Symbol, str], expr: sympy.Expr, doc: str,
                printer: NumpyCodePrinter) -> Helper:
    """Print ``expr`` as the body of ``def name(*args)`` after common subexpression removal."""
    printer.uses_where = False
    names = dict(args)
    temporaries = sympy.numbered_symbols("t")
    replacements, (reduced,) = sympy.cse([expr], symbols=temporaries, order="none")
    names.update({symbol: str(symbol) for symbol, _ in replacements})
    printer._settings["symbol_names"] = names
    lines = [(str(symbol), printer.doprint(value)) for symbol, value in replacements]
    result = printer.doprint(reduced)
    doc = "\n\n    ".join(textwrap.fill(part.strip(), 88, subsequent_indent="    ")
                           for part in doc.split("\n\n"))
    return Helper(name, tuple(args.values()), doc, tuple(lines), result,
                  errstate=printer.uses_where)
