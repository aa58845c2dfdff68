"""What is wrong with a formula: try the usual mistakes, one at a time, and keep what fixes it.

Each *mistake* is a row of :data:`~.index_mistakes.MISTAKES` -- a generator of edited copies
of the formula's syntax tree ("replace a_{2}^{(L)} with a_{2}^{(L-1)}") -- tried in order of
how often people make it.  An edit that makes the formula equal to the true derivative at
every probe point is an exact fix; one that leaves only a constant factor is a fix plus that
factor.  A constant factor on its own (a missing 2, a sign, 1/n) is found from the ratio of
the two sides.  The matrix form has its search in :mod:`.matrix_formula`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sympy

from ..activations import ActivationPrime
from ..formula.meaning import Meaning, Scope
from ..formula.parser import FormulaError
from ..formula.syntax import Expr, NodeRef, walk
from ..notation import node_of
from .identity import agree
from .index_mistakes import MISTAKES, Mistake, MistakeContext
from .wording import apply_edits, constant_ratio, factor_fix, is_latex, node_text, scaled

__all__ = ["CATEGORIES", "Finding", "Mistake", "apply_edits", "diagnose", "node_text"]

#: Mistakes, most likely first (the issue's ranking).
CATEGORIES: dict[str, str] = {
    "factor": "a constant factor is off",
    "layer": "a wrong layer",
    "index": "swapped or wrong node indices",
    "a_z": "a and z confused",
    "g_prime": "a missing or wrong g' factor",
    "sum": "a sum over the wrong index",
    "transpose": "a transpose",
    "order": "the product's order",
    "product": "a matrix product where an entrywise one belongs, or the reverse",
    "axis": "the column sum on the wrong axis",
}


@dataclass(frozen=True)
class Finding:
    """A diagnosis: which mistake, the fix to make, and the corrected formula."""

    category: str
    fix: str
    corrected: str
    exact: bool = True
    factor: sympy.Expr | None = None
    later: bool = field(default=False, compare=False, repr=False)

    @property
    def title(self) -> str:
        return CATEGORIES[self.category]


def _prime_nodes(expr: sympy.Expr) -> set[tuple[int, int]]:
    out = set()
    for f in expr.atoms(ActivationPrime):
        node = node_of(f.args[0])
        if node is not None and node.kind == "z":
            out.add((node.layer, node.j))
    return out


def _truth_nodes(truth: sympy.Expr) -> tuple:
    """(kind, layer, indices) of every node of the true result, in a fixed order."""
    nodes = {node_of(s) for s in truth.free_symbols} - {None}
    return tuple(sorted((n.kind, n.layer, tuple(n.indices)) for n in nodes
                        if n.indices and None not in n.indices))


def diagnose(meaning: Meaning, claim: Expr, scope: Scope, truth: sympy.Expr, probes,
             text: str, *, lowered: sympy.Expr | None, limit: int = 3,
             confirm: Callable[[str], bool] | None = None) -> list[Finding]:
    """The most likely mistakes that explain why ``claim`` differs from ``truth``.

    ``lowered`` is the claim in SymPy, or None when it cannot be evaluated as written (then
    only edits that make it readable and right count).  An edit is tried at ``scope``, the
    case that failed; ``confirm(corrected text)`` then re-reads the corrected formula and
    checks it over every case, and only what it confirms is reported.
    """
    latex = is_latex(text)
    want = [p(truth) for p in probes]
    present = set() if lowered is None else _prime_nodes(meaning.engine.expand_deltas(lowered))
    ctx = MistakeContext(meaning, text, latex, scope, max(meaning.graph.widths),
                         sorted(_prime_nodes(meaning.engine.expand_deltas(truth)) - present),
                         any(isinstance(e, NodeRef) and e.nielsen for e in walk(claim)),
                         _truth_nodes(truth))
    claim_text = text[claim.span[0]:claim.span[1]].strip()
    findings: list[Finding] = []
    factor = None if lowered is None else constant_ratio(
        want, [p(lowered) for p in probes], meaning)
    before, after = text[:claim.span[0]], text[claim.span[1]:]
    confirmed = confirm or (lambda corrected: True)

    def whole(corrected_claim: str) -> str:
        return (before + corrected_claim + after).strip()

    if factor is not None:
        corrected = whole(scaled(claim_text, factor, latex))
        if confirmed(corrected):
            findings.append(Finding("factor", factor_fix(factor, meaning), corrected, True,
                                    factor))
    seen: set[str] = set()
    groups: set[str] = set()
    with_factor: list[Finding] = []
    for mistakes in MISTAKES:
        for m in mistakes(ctx, claim):
            if m.group and m.group in groups:
                continue
            try:
                value = meaning.lower(m.tree, scope)
            except FormulaError:
                continue
            got = [p(value) for p in probes]
            edited = apply_edits(text, m.edits)
            corrected = edited[claim.span[0]:len(edited) - len(after)].strip()
            if corrected in seen:
                continue
            seen.add(corrected)
            if all(agree(u, v, p.backend) for u, v, p in zip(want, got, probes)):
                if confirmed(whole(corrected)):
                    findings.append(Finding(m.category, m.fix, whole(corrected),
                                            later=m.later))
                    groups.add(m.group)
            else:
                c = constant_ratio(want, got, meaning)
                rescaled = whole(scaled(corrected, c, latex)) if c is not None else ""
                if c is not None and len(with_factor) < limit and confirmed(rescaled):
                    with_factor.append(Finding(m.category, f"{m.fix}, and multiply by {c}",
                                               rescaled, False, c))
            if len(findings) >= limit:
                return _ranked(findings)
    return _ranked(findings + with_factor)[:limit]


def _ranked(findings: list[Finding]) -> list[Finding]:
    order = list(CATEGORIES)
    return sorted(findings, key=lambda f: (not f.exact, f.later, order.index(f.category)))
