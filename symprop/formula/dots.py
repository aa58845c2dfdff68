r"""``\cdots`` between two terms of a sum, replaced by the terms its neighbours imply.

Seed 000 writes ``w_{10}^{(L)}a_{0}^{(L-1)} + \cdots + w_{15}^{(L)}a_{5}^{(L-1)}``: the terms
either side differ only in node indices, all by the same step, so the dots stand for the terms
in between.  Between zeros (``0 + \cdots + 0``), dots are zeros.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace

from .syntax import Add, Dots, Euler, Expr, Loss, NodeRef, Num, Pi, Size, children

__all__ = ["fill_dots"]

#: The parser's error at a position of the formula's span: error(what, position, hint=None).
ErrorAt = Callable[..., Exception]


def _is_zero(expr: Expr) -> bool:
    return isinstance(expr, Num) and float(expr.text) == 0


def fill_dots(add: Add, error: ErrorAt) -> Add:
    r"""Replace ``\cdots`` between two terms by the terms their pattern implies.

    ``w_{12}a_2 + \cdots + w_{15}a_5`` has w_{13}a_3 + w_{14}a_4 in between: the neighbours
    differ only in node indices, all by the same step.  Between zeros, dots are zeros.
    """
    terms = list(add.terms)
    if not any(isinstance(t, Dots) for t in terms):
        return add
    if any(isinstance(t, Dots) for t in (terms[0], terms[-1])):
        return add  # a leading/trailing \cdots: left for the enclosing sum
    out: list[Expr] = []
    for n, term in enumerate(terms):
        if not isinstance(term, Dots):
            out.append(term)
            continue
        before, after = out[-1], terms[n + 1]
        if isinstance(after, Dots):
            continue
        if _is_zero(before) or _is_zero(after):
            continue
        out.extend(_between(before, after, term, error))
    return Add(tuple(out), span=add.span)


def _between(before: Expr, after: Expr, dots: Dots, error: ErrorAt) -> list[Expr]:
    pairs: list[tuple[int, int]] = []
    if not _differences(before, after, pairs) or not pairs:
        raise error(
            "cannot tell which terms \\cdots stands for", dots.span[0],
            hint="The terms either side must differ only in node indices, e.g. "
                 "w_{10}a_{0} + \\cdots + w_{15}a_{5}")
    steps = {b - a for a, b in pairs}
    if len(steps) != 1 or 0 in steps:
        raise error("the terms either side of \\cdots change their indices by different "
                    "amounts", dots.span[0])
    step = steps.pop()
    unit = 1 if step > 0 else -1
    return [_interpolate(before, after, t * unit) for t in range(1, abs(step))]


def _differences(a: Expr, b: Expr, pairs: list) -> bool:
    """Whether ``a`` and ``b`` differ only in integer node indices (collected in ``pairs``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, NodeRef):
        if a.kind != b.kind or a.layer != b.layer:
            return False
        for i, j in zip(a.indices, b.indices):
            if i != j:
                if not (isinstance(i, int) and isinstance(j, int)):
                    return False
                pairs.append((i, j))
        return True
    if isinstance(a, Num | Size | Euler | Pi | Dots | Loss):
        return a == b
    ka, kb = list(children(a)), list(children(b))
    if len(ka) != len(kb):
        return False
    same = all(getattr(a, f) == getattr(b, f) for f in ("name", "primes", "layer", "index")
               if hasattr(a, f))
    return same and all(_differences(x, y, pairs) for x, y in zip(ka, kb))


def _interpolate(a: Expr, b: Expr, shift: int) -> Expr:
    """``a`` with every node index that differs from ``b``'s moved by ``shift``."""
    if isinstance(a, NodeRef):
        return replace(a, indices=tuple(i if i == j else i + shift
                                        for i, j in zip(a.indices, b.indices)))
    updates = {}
    for f in fields(a):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if isinstance(va, Expr):
            updates[f.name] = _interpolate(va, vb, shift)
        elif isinstance(va, tuple) and va and isinstance(va[0], Expr):
            updates[f.name] = tuple(_interpolate(x, y, shift) for x, y in zip(va, vb))
    return replace(a, **updates)
