r"""Read a formula typed in seed notation, as LaTeX or plain text, into :mod:`.syntax` values.

The grammar is ``formula.lark`` (LALR, so a formula is read in one pass and an error names
the first character that cannot belong); :mod:`.builder` turns Lark's tree into syntax
values.  Nothing is evaluated: the result is a syntax tree.

Seed 000 writes ``\frac{\partial C_{0}}{\partial w_{12}^{(L)}} = 2 \left( a_{1}^{\left( L\right)
}-y_{1}\right) \left( g^{\prime \left(L\right) }\left( z_{1}^{\left( L\right) }\right) \right)
\left( a_{2}^{(L-1)}\right)``; the same reads in plain text as
``∂C_0/∂w_12^(L) = 2(a_1^(L) - y_1) g'^(L)(z_1^(L)) a_2^(L-1)``.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import lark

from ..safe_parse import MAX_DEPTH, bracket_depth
from .builder import Builder
from .syntax import Equation
from .tokens import FormulaError

__all__ = ["MAX_FORMULA_LENGTH", "FormulaError", "parse_formula"]

MAX_FORMULA_LENGTH = 5000


@functools.cache
def _lark() -> lark.Lark:
    grammar = (Path(__file__).with_name("formula.lark")).read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True,
                     maybe_placeholders=False)


def parse_formula(text: str, *, source: str | None = None) -> Equation:
    """Parse ``text`` into an :class:`Equation` (one side for a bare right-hand side)."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("the formula is empty", where=source, hint="Write it in seed "
                           "notation, e.g. 2(a_1^(L) - y_1) g'^(L)(z_1^(L)) a_2^(L-1).")
    if len(text) > MAX_FORMULA_LENGTH:
        raise FormulaError(f"the formula is {len(text)} characters long; the limit is "
                           f"{MAX_FORMULA_LENGTH}", where=source,
                           hint="Check one equation at a time.")
    depth = bracket_depth(text)
    if depth > MAX_DEPTH:
        raise FormulaError(f"the formula nests brackets {depth} deep; the limit is "
                           f"{MAX_DEPTH}", where=source)
    return _parse(text, source)


def _parse(text: str, source: str | None, offset: int = 0):
    try:
        tree = _lark().parse(text)
    except lark.exceptions.UnexpectedCharacters as exc:
        what, hint = _unreadable(text, exc.pos_in_stream)
        raise FormulaError(what, text=text, position=exc.pos_in_stream, where=source,
                           hint=hint) from None
    except lark.exceptions.UnexpectedEOF as exc:
        raise FormulaError("the formula ends too early" + _expected(exc.expected),
                           text=text, position=len(text.rstrip()), where=source) from None
    except lark.exceptions.UnexpectedToken as exc:
        token = exc.token
        if token.type == "$END":
            raise FormulaError("the formula ends too early" + _expected(exc.expected),
                               text=text, position=len(text.rstrip()), where=source) from None
        raise FormulaError(f"unexpected {str(token)!r}" + _expected(exc.expected),
                           text=text, position=token.start_pos, where=source) from None
    builder = Builder(text, source, offset, parse=_parse)
    try:
        return builder.transform(tree)
    except lark.exceptions.VisitError as exc:
        if isinstance(exc.orig_exc, FormulaError):
            raise exc.orig_exc from None
        raise


_HINT = ("Write nodes in seed notation (w_{12}^{(L)}, a_2^(L-1), \\delta_1^{(L)}, y_1, x_0), "
         "g'^{(L)}(z), \\sigma(z), \\frac{..}{..}, \\sum_{j=0}^{n-1}, and \\cdot or * for "
         "products")

#: A node with a number where Nielsen writes its layer (a^2_j), or with an unparenthesised
#: layer after its subscript (a_j^L): both read as something else, so each gets its own hint.
_POWER_FIRST = re.compile(r"(?:\\delta|δ|delta|[wbza])\s*\^\s*\{?\s*[0-9]")
_LAYER_AFTER = re.compile(r"\^\s*\{?\s*[lL]\b")


def _unreadable(text: str, position: int) -> tuple[str, str]:
    """What to say about the character at ``position`` that no token begins with."""
    here = text[position:]
    if _POWER_FIRST.match(here):
        return ("a number in a node's superscript is a power, not a layer",
                ("For a layer write it in parentheses, a^{(2)}_j or a_j^{(2)}; Nielsen's "
                 "unparenthesised superscript is l or L, plus or minus a number: a^{l-1}_k, "
                 "\\delta^L_j"))
    if here[:1] in "lL" and _LAYER_AFTER.search(text[max(0, position - 4):position + 1]):
        return (f"cannot read {here[0]!r} here",
                ("A layer after the subscript is parenthesised, a_j^{(L)}; unparenthesised, "
                 "write it first as Nielsen does: a^L_j, w^l_{jk}"))
    return f"cannot read {text[position]!r} here", _HINT


_TOKEN_NAMES = {
    "RPAR": "')'", "RB": "'}'", "RBRACKET": "']'", "RCURLY": "'\\}'", "LB": "'{'",
    "NODE": "a node such as a_1^{(L)}", "NUMBER": "a number", "PARTIAL": "\\partial",
    "EQ": "'='", "PLUS": "'+'", "MINUS": "'-'",
}


def _expected(expected) -> str:
    names = sorted({_TOKEN_NAMES[e] for e in expected if e in _TOKEN_NAMES})
    if not names or len(names) > 4:
        return ""
    return "; expected " + " or ".join(names)
