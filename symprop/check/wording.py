"""How a diagnosis speaks: nodes and g' in the user's own style (LaTeX, plain or
Nielsen's), edits applied to the formula's text, and constant factors named and phrased."""

from __future__ import annotations

import sympy

from ..formula.meaning import Meaning
from ..formula.syntax import NodeRef
from ..notation import index_label
from .identity import ratio

__all__ = ["apply_edits", "constant_ratio", "factor_fix", "factor_text", "is_latex",
           "name_factor", "node_text", "prime_text", "scaled"]


def is_latex(text: str) -> bool:
    return "\\" in text or "{" in text


def node_text(ref: NodeRef, latex: bool) -> str:
    """A node in the style the user typed: w_{12}^{(L-1)}, w_12^(L-1), or Nielsen's
    w^{l-1}_{jk}."""
    name = ("\\delta" if latex else "delta") if ref.kind == "delta" else ref.kind
    sub = index_label(ref.indices, ref.kind)
    if ref.nielsen and ref.layer is not None:
        layer = ref.layer.text()
        return (name + (f"^{layer}" if len(layer) == 1 else f"^{{{layer}}}")
                + (f"_{sub}" if len(sub) == 1 else f"_{{{sub}}}"))
    if ref.layer is None:
        return f"{name}_{{{sub}}}" if latex else f"{name}_{sub}"
    layer = ref.layer.text()
    return f"{name}_{{{sub}}}^{{({layer})}}" if latex else f"{name}_{sub}^({layer})"


def prime_text(layer: str, z: NodeRef, latex: bool) -> str:
    if latex:
        return f"g^{{\\prime ({layer})}}\\left({node_text(z, True)}\\right)"
    return f"g'^({layer})({node_text(z, False)})"


def apply_edits(text: str, edits) -> str:
    for (start, end), new in sorted(edits, key=lambda e: e[0], reverse=True):
        text = text[:start] + new + text[end:]
    return text


def factor_text(c: sympy.Expr, latex: bool) -> str:
    return sympy.latex(c) if latex else str(c)


NICE_FACTORS = (2, sympy.Rational(1, 2), -1, -2, sympy.Rational(-1, 2), 4, sympy.Rational(1, 4))


def name_factor(value: float, meaning: Meaning) -> sympy.Expr | None:
    """The exact constant a float ratio stands for: 2, -1, 1/2, n (batch or width), ..."""
    candidates = list(NICE_FACTORS)
    size = meaning.batch_size if meaning.batch else meaning.graph.widths[-1]
    candidates += [sympy.Integer(size), sympy.Rational(1, size), sympy.Integer(2 * size),
                   sympy.Rational(1, 2 * size), sympy.Rational(2, size), sympy.Rational(size, 2)]
    for c in candidates:
        if abs(float(c) - value) <= 1e-9 * max(1.0, abs(value)):
            return c
    return None


def factor_fix(c: sympy.Expr, meaning: Meaning) -> str:
    n = meaning.batch_size if meaning.batch else meaning.graph.widths[-1]
    what = "the batch size" if meaning.batch else "the number of output nodes"
    phrases = {
        sympy.Integer(2): "the formula is half the true value: multiply by 2 (the 2 from "
                          "differentiating the square)",
        sympy.Rational(1, 2): "the formula is twice the true value: divide by 2",
        sympy.Integer(-1): "the sign is wrong: multiply by -1",
        sympy.Rational(1, n): f"the formula is n times too large (n = {n}, {what}): divide by n",
        sympy.Integer(n): f"the formula is n times too small (n = {n}, {what}): multiply by n",
    }
    return phrases.get(c, f"the formula is off by a constant factor: multiply by {c}")


def constant_ratio(want, got, meaning: Meaning) -> sympy.Expr | None:
    ratios = [ratio(w, g) for w, g in zip(want, got)]
    if any(r is None for r in ratios):
        return None
    first = float(ratios[0])
    if any(abs(float(r) - first) > 1e-9 * max(1.0, abs(first)) for r in ratios):
        return None
    if abs(first - 1) <= 1e-9:
        return None
    return name_factor(first, meaning) or sympy.Float(first, 6)


def scaled(text: str, c: sympy.Expr, latex: bool) -> str:
    if latex:
        return f"{factor_text(c, True)} \\left({text}\\right)"
    return f"{factor_text(c, False)}*({text})"
