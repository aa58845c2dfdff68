"""Which values a general formula's letters take: every value for which each name in the
formula exists in the network, and a line saying which layers were checked and left out."""

from __future__ import annotations

import itertools
import random

import sympy

from ..errors import InputError
from ..formula import FormulaError, Meaning, Scope
from ..formula.syntax import Expr, Layer, MatrixRef, NodeRef, bound_letters, walk

__all__ = ["MAX_CASES", "cases_of"]

MAX_CASES = 24


def _free_letters(expr: Expr) -> list[str]:
    """Letters used as node indices or layers that no sum inside ``expr`` binds."""
    bound = set(bound_letters(expr))
    letters = []
    for e in walk(expr):
        items = []
        if isinstance(e, NodeRef):
            items = [i for i in e.indices if isinstance(i, str)]
        if isinstance(e, NodeRef | MatrixRef) and e.layer is not None \
                and e.layer.base not in (None, "L"):
            items.append(e.layer.base)
        for letter in items:
            if letter not in bound and letter not in letters:
                letters.append(letter)
    return letters


def _ranges(meaning: Meaning, reference: Expr, letters: list[str]) -> list[range]:
    """The values each letter takes: the axis it indexes in ``reference`` (a flat layer's
    width, a map's or a conv weight's axis: w_{o,c,u,v}'s u runs over the kernel), else
    every layer and node number of the network."""
    top = range(max(max(meaning.graph.widths), meaning.graph.L + 1))
    out = []
    for letter in letters:
        sizes = []
        for e in walk(reference):
            if not isinstance(e, NodeRef) or letter not in e.indices:
                continue
            try:
                layer = meaning.layer(e.layer, e, Scope()) if e.layer is not None else None
            except FormulaError:
                sizes = []
                break
            position = e.indices.index(letter)
            shape = meaning.map_shape(e.kind, layer)
            sizes.append(shape[position] if shape and len(shape) == len(e.indices) else
                         meaning.graph.widths[meaning.width_layer(e.kind, layer, position)])
        out.append(range(max(sizes)) if sizes else top)
    return out


def _layer_letters(expr: Expr) -> list[str]:
    """The letters that stand for a layer somewhere in ``expr`` (the l of w^{(l+1)})."""
    out = []
    for e in walk(expr):
        layer = getattr(e, "layer", None)
        if isinstance(layer, Layer) and layer.base not in (None, "L") and layer.base not in out:
            out.append(layer.base)
    return out


def _cases(meaning: Meaning, reference: Expr, claims: tuple[Expr, ...] = ()
           ) -> tuple[list[tuple[Scope, sympy.Expr]], list[str]]:
    """The values of the left side's free letters for which every name of the formula exists
    (one empty case for a concrete formula), each with the left side's meaning there; and a
    line saying which layer values were checked and which left out, and why."""
    letters = _free_letters(reference)
    if not letters:
        return [(Scope(), meaning.lower(reference, Scope()))], []
    cases, left_out = [], {}
    for values in itertools.product(*_ranges(meaning, reference, letters)):
        scope = Scope(dict(zip(letters, values)))
        reason = next(filter(None, (meaning.missing(e, scope) for e in (reference, *claims))),
                      None)
        if reason is None:
            try:
                cases.append((scope, meaning.lower(reference, scope)))
                continue
            except FormulaError as exc:
                reason = exc.what
        left_out.setdefault(tuple(scope.bound[x] for x in _layer_letters(reference)
                                  if x in scope.bound), reason)
    layered = [x for x in letters if x in _layer_letters(reference)]
    if not cases:
        first = next(iter(left_out.values()), "")
        raise InputError(f"no value of {', '.join(letters)} makes every name of the formula "
                         f"exist in this network ({first})",
                         hint=f"The network has layers 0..{meaning.graph.L} with widths "
                              f"{list(meaning.graph.widths)}")
    coverage = _coverage(layered, [x for x in letters if x not in layered], cases, left_out,
                         meaning.graph.L)
    if len(cases) > MAX_CASES:
        cases = [cases[0]] + random.Random(0).sample(cases[1:], MAX_CASES - 1)
    return cases, coverage


def _coverage(layered: list[str], others: list[str], cases, left_out: dict, L: int
              ) -> list[str]:
    """"Checked for l = 1, 2; left out l = 3 (w^(l+1) names layer 4, ...)": per layer letter."""
    if not layered:
        return []
    def values(key):
        return ", ".join(f"{x} = {v}" for x, v in zip(layered, key))
    kept = sorted({tuple(s.bound[x] for x in layered) for s, _ in cases})
    shown = (f"{layered[0]} = {', '.join(str(k[0]) for k in kept)}" if len(layered) == 1
             else "; ".join(f"({values(k)})" for k in kept))
    each = f" (each with every {' and '.join(others)} there)" if others else ""
    lines = [f"Checked for {shown}{each}."]
    skipped = [(k, why) for k, why in sorted(left_out.items()) if k not in kept and len(k) ==
               len(layered) and all(0 <= v <= L for v in k)]
    if skipped:
        lines.append("Left out: " + "; ".join(f"{values(k)}, since {why}" for k, why in skipped)
                     + ".")
    return lines


# ------------------------------------------------------------------ reporting


cases_of = _cases
