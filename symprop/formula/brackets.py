r"""How a formula's Iverson brackets and window maxima lower, as a pooling layer's derivative
is written: ``[p = 2r+u-1]`` (which offset of which window reads a position: 1 or 0 once the
letters have values), ``\max_{u,v} a_{c,2r+u,2t+v}^{(l)}`` or ``\max(a_{..}, ...)`` (the largest entry of a window)
and ``[a_{c,p,q}^{(l)} = \max_{u,v} ...]`` (1 where that entry is its window's maximum: the
engine's first-maximum test, ties to the first)."""

from __future__ import annotations

import itertools

import sympy

from ..layers.pooling import FirstMax, WindowMax
from ..notation import node_of
from .scope import Scope
from .syntax import IndexBracket, Iverson, Max, MaxOf, NodeRef, Shifted, walk

__all__ = ["LOWER"]


def _index_bracket(meaning, e: IndexBracket, scope: Scope) -> sympy.Expr:
    left, right = (meaning.index(side, e, scope) for side in (e.left, e.right))
    return sympy.S.One if left == right else sympy.S.Zero


def _iverson(meaning, e: Iverson, scope: Scope) -> sympy.Expr:
    """[a = max(window)] is the engine's first-maximum test: 1 where the entry a is the
    window's first maximum, 0 where a is another entry of the same map outside the window
    (even if its value ties with the maximum); other brackets compare values."""
    left, right = meaning.lower(e.left, scope), meaning.lower(e.right, scope)
    for one, other in ((left, right), (right, left)):
        if isinstance(other, WindowMax) and one in other.args:
            return FirstMax(one, *other.args)
        if isinstance(other, WindowMax) and _same_map(one, other.args):
            return sympy.S.Zero
    return sympy.Piecewise((1, sympy.Eq(left, right)), (0, True))


def _same_map(entry: sympy.Expr, window) -> bool:
    """Whether ``entry`` and every entry of ``window`` are nodes of one layer's map."""
    maps = {(n.kind, n.layer) if n is not None else None
            for n in map(node_of, (entry, *window))}
    return len(maps) == 1 and None not in maps


def _max(meaning, e: Max, scope: Scope) -> sympy.Expr:
    ranges = [_window_range(meaning, e, letter, scope) for letter in e.indices]
    values = [meaning.lower(e.body, _bound(scope, e.indices, point))
              for point in itertools.product(*ranges)]
    return WindowMax(*values)


def _bound(scope: Scope, letters, values) -> Scope:
    for letter, value in zip(letters, values):
        scope = scope.bind(letter, value)
    return scope


def _window_range(meaning, e: Max, letter: str, scope: Scope) -> range:
    """The values of a window letter: the written bounds, else the kernel of the layer that
    reads the map the body indexes, along the axis where the letter offsets an index."""
    width = None
    for ref in (x for x in walk(e.body) if isinstance(x, NodeRef) and x.layer is not None):
        for position, index in enumerate(ref.indices):
            if isinstance(index, Shifted) and letter in index.letters and position > 0:
                reads = meaning.layer(ref.layer, ref, scope) + 1
                kernel = getattr(meaning.graph.spec.layer(reads), "kernel", None) \
                    if 0 < reads <= meaning.graph.L else None
                if kernel is not None and position - 1 < len(kernel):
                    width = kernel[position - 1]
    lower = 0 if e.lower is None else meaning.bound(e.lower, scope, width)
    if e.upper is not None:
        return range(lower, meaning.bound(e.upper, scope, width) + 1)
    if width is None:
        raise meaning.error(f"the range of {letter} in this max is unknown", e,
                            hint=f"Write its bounds, e.g. \\max_{{{letter}=0}}^{{1}}, or index "
                                 "a map that a pooling or conv layer reads")
    return range(lower, width)


#: syntax type -> how it lowers (joined to :class:`~.meaning.Meaning`'s table).
LOWER = {IndexBracket: _index_bracket, Iverson: _iverson, Max: _max,
         MaxOf: lambda meaning, e, scope: WindowMax(*[meaning.lower(i, scope) for i in e.items])}
