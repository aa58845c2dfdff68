"""Reading the parts of one token of a formula: a node's indices and layer, a function's
decoration (shared by :mod:`.parser`)."""

from __future__ import annotations

import re

from ..errors import ExpressionError
from ..notation import KINDS, MAP_NODE_KINDS, SHARED_KINDS, index_arithmetic
from .syntax import Layer, Shifted

__all__ = ["FormulaError", "read_index", "read_indices", "read_layer"]


class FormulaError(ExpressionError):
    """A formula that cannot be read; ``position`` points at the problem."""


SUB = re.compile(r"_\s*(?:\{(?P<braced>[^{}]*)\}|(?P<plain>[0-9A-Za-z,]+))")
LAYER = re.compile(r"\^\s*\{?\s*(?:\\left\s*)?\(\s*(?P<layer>[^()]*?)\s*(?:\\right\s*)?\)")
#: Nielsen's layer superscript, unparenthesised: ^l, ^L, ^{l-1}, ^{L+2}.
NIELSEN_LAYER = re.compile(r"\^\s*(?:(?P<layer>[lL])(?![A-Za-z0-9])|\{\s*(?P<braced>[lL]\s*(?:[-+−]"
                           r"\s*[0-9]+\s*)?)\})")
LAYER_TEXT = re.compile(
    r"(?:(?P<base>[A-Za-z])\s*(?:(?P<sign>[-+−])\s*(?P<offset>[0-9]+))?|(?P<abs>[0-9]+))")
KIND = {"\\delta": "delta", "δ": "delta", "delta": "delta", "\\gamma": "gamma", "γ": "gamma",
         "\\beta": "beta", "β": "beta", "\\mu": "mu", "μ": "mu", "\\sigma": "sigma",
         "σ": "sigma", "\\hat{x}": "xhat"}
KIND_TEXT = re.compile(r"\\hat\s*\{\s*x\s*\}|\\?[A-Za-zγβμσδ]+")
#: g, the functions by name, and every activation by the name derive prints it with (id, relu)
FUNCTION_NAME = re.compile(r"(?:\\operatorname\s*\{\s*)?\\?(?P<name>g|sigma|σ|tanh|exp|log|ln|sqrt|sinh|cosh|sin|cos|arctan|"
                           r"atan|erf|sign|[Aa]bs|id|relu|ReLU|softplus|elu|ELU|swish)")
#: Functions that are not activations: their derivatives are written out, never with '.
ELEMENTARY = frozenset({"exp", "log", "sqrt", "sinh", "cosh", "sin", "cos", "atan", "erf",
                        "sign", "abs"})
FUNCTION_ALIASES = {"σ": "sigma", "ln": "log", "arctan": "atan", "Abs": "abs", "ReLU": "relu",
                    "ELU": "elu"}
PRIME = re.compile(r"'|′|\\prime(?![A-Za-z])")


def read_layer(text: str, where: int, source_text: str) -> Layer:
    match = LAYER_TEXT.fullmatch(text.strip())
    if not match:
        raise FormulaError(f"cannot read the layer {text!r}", text=source_text, position=where,
                           hint="A parenthesised superscript is always a layer: write L, L-1, "
                                "l, l+1 or a number; for a power write ^{2} or ^2")
    if match["abs"] is not None:
        return Layer(None, int(match["abs"]))
    offset = int(match["offset"] or 0)
    return Layer(match["base"], -offset if match["sign"] in ("-", "−") else offset)


def _shifted(part: str) -> Shifted | None:
    """``2p+u-1`` as a :class:`Shifted`, or None when ``part`` is not such arithmetic."""
    read = index_arithmetic(part)
    if read is None:
        return None
    terms, constant = read
    return Shifted(tuple((k, v) for k, v in terms.items() if v), constant)


def read_index(part: str) -> int | str | Shifted | None:
    """One index: a number, a letter, or letter arithmetic (``2p+u-1``); None otherwise."""
    part = part.replace(" ", "")
    if part.isdigit():
        return int(part)
    if len(part) == 1 and part.isalpha():
        return part
    return _shifted(part)


def read_indices(sub: str, kind: str, where: int, text: str) -> tuple[int | str | Shifted, ...]:
    if "," in sub and (kind in ("a", "x", "z", "delta", "w") or kind not in KINDS):
        # a map's node or a conv weight: one index per axis, each a number, a letter or
        # letter arithmetic (a_{c,2p+u-1,q+v}^(l-1)); the network knows how many
        parts = [read_index(p) for p in sub.replace(" ", "").split(",")]
        if any(p is None for p in parts):
            raise FormulaError(f"cannot read the indices {sub!r} of {kind}", text=text,
                               position=where, hint="Write each index as a number, a letter, "
                                                    "or letters and numbers added: "
                                                    "a_{c,2p+u-1,q+v}")
        return tuple(parts)
    if kind not in KINDS or kind in SHARED_KINDS:
        # a custom layer's letters (r_j^(l) too): the network knows how many indices
        compact = sub.replace(" ", "")
        parts = compact.split(",") if "," in compact else list(compact) if compact.isdigit() \
            or compact.isalpha() else [compact]
        if not all(p.isdigit() or (len(p) == 1 and p.isalpha()) for p in parts):
            raise FormulaError(f"cannot read the indices {sub!r} of {kind}", text=text,
                               position=where, hint="Write e.g. c_{12}, c_{jk} or c_{10,3}")
        return tuple(int(p) if p.isdigit() else p for p in parts)
    count = KINDS[kind][1]
    compact = sub.replace(" ", "")
    if kind in MAP_NODE_KINDS and len(compact) == 2 and compact.isalpha():
        return tuple(compact)  # a 1-D map's node as derive prints it: a_{cp}
    if "," in compact:
        parts = compact.split(",")
    elif count == 2 and len(compact) == 2:
        parts = list(compact)
    else:
        parts = [compact]
    ok = len(parts) == count and all(p.isdigit() or (len(p) == 1 and p.isalpha()) for p in parts)
    if not ok and count == 1 and _shifted(compact) is not None:
        return (_shifted(compact),)  # a flatten's node: a_{4c+2p+q}
    if not ok:
        example = "w_{12}, w_{jk} or w_{10,3}" if count == 2 else f"{kind}_{{2}} or {kind}_{{j}}"
        raise FormulaError(f"{kind} takes {count} node ind{'ices' if count == 2 else 'ex'}, "
                           f"not {sub!r}", text=text, position=where,
                           hint=f"Write {example}; separate two-digit indices with a comma")
    return tuple(int(p) if p.isdigit() else p for p in parts)




#: A batch matrix's letter in its token, and the kind it names.
MATRIX_KIND = re.compile(r"\\Delta|Δ|Delta|[WAZbXY](?![A-Za-z])|1")
MATRIX_KINDS = {"\\Delta": "Delta", "Δ": "Delta", "1": "ones"}
#: ``^{(L)\top}``: a transpose inside a matrix's layer superscript.
INNER_TRANSPOSE = re.compile(r"^\s*(?:\\top|\\intercal|T|\\mathsf\s*\{\s*T\s*\})")
