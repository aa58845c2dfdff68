"""How a formula's sums are read (a mixin of :class:`~.meaning.Meaning`): the range of a
summation index from the layer it indexes, sums over the samples of a batch, bounds."""

from __future__ import annotations

import sympy

from .scope import BatchSum, FreeIndexError, Scope
from .syntax import Expr, Loss, NodeRef, Size, Sum, walk

__all__ = ["MAX_TERMS", "SumsMixin", "node_layer"]

#: Terms written out by the sums of one formula (nested sums multiply), at most.
MAX_TERMS = 20_000

#: The width symbol of a summation bound's n (replaced by the width of the index's layer).
_WIDTH = sympy.Symbol("n_width", integer=True, positive=True)


class SumsMixin:
    """Sums over nodes (their range from the widths) and over samples."""

    def _sum(self, s: Sum, scope: Scope) -> sympy.Expr:
        if any(isinstance(e, Loss) and e.sample == s.index for e in walk(s.body)):
            return self._sample_sum(s, scope)
        width = self.index_width(s, scope)
        lower = 0 if s.lower is None else self.bound(s.lower, scope, width)
        if s.upper is None:
            if width is None:
                raise self.error(f"the index {s.index} does not appear in the sum, so its range "
                                 "is unknown", s, hint="Write the bounds with numbers")
            upper = width - 1
        else:
            upper = self.bound(s.upper, scope, width)
        if width is not None and not 0 <= lower <= upper < width:
            raise self.error(f"{s.index} runs over {lower}..{upper}, but the nodes it indexes "
                             f"are numbered 0..{width - 1}", s)
        self.terms += upper - lower + 1
        if self.terms > MAX_TERMS:
            raise self.error(f"the sums write out more than {MAX_TERMS} terms", s,
                             hint="Check a smaller formula, or the network's narrower layers")
        return sympy.Add(*[self.lower(s.body, scope.bind(s.index, v))
                           for v in range(lower, upper + 1)])

    def _sample_sum(self, s: Sum, scope: Scope) -> sympy.Expr:
        if not self.batch:
            raise self.error("a sum over samples needs a formula about the batch loss C", s)
        ok = s.lower is None or self.bound(s.lower, scope, self.batch_size) == 0
        ok = ok and (s.upper is None or self.bound(s.upper, scope, self.batch_size)
                     == self.batch_size - 1)
        if not ok:
            raise self.error(f"a sum over the samples runs over {s.index} = 0..n-1", s)
        return BatchSum(self.lower(s.body, Scope(scope.bound, s.index)))

    def bound(self, expr: Expr, scope: Scope, width: int | None) -> int:
        if width is None and any(isinstance(e, Size) for e in walk(expr)):
            raise self.error("n is the width of the layer the index runs over, but the index "
                             "does not appear in the sum", expr)
        value = self.lower(expr, Scope(scope.bound, scope.sample, in_bounds=True)).xreplace(
            {_WIDTH: width if width is not None else 0})
        if not value.is_Integer:
            raise self.error("a summation bound must be a whole number", expr)
        return int(value)

    def index_width(self, s: Sum, scope: Scope) -> int | None:
        """The width of the layer the summation index runs over (None when it is not used)."""
        widths, axes = set(), set()
        for e in walk(s.body):
            if not isinstance(e, NodeRef):
                continue
            for position, index in enumerate(e.indices):
                # the letter alone, or flipped alone (a kernel's 1-u): it runs along that axis
                if index != s.index and getattr(index, "letters", ()) != (s.index,):
                    continue
                try:
                    layer = self.layer(e.layer, e, scope) if e.layer is not None else None
                except FreeIndexError:
                    continue
                shape = self.map_shape(e.kind, layer)
                if shape is not None and len(shape) == len(e.indices):
                    axes.add(shape[position])  # a map's axis: channels, rows, columns
                    continue
                widths.add(self.graph.widths[self.width_layer(e.kind, layer, position)]
                           if layer is None or layer in self.graph.layers or layer == 0 else 0)
        if axes and not widths:
            # one letter may run along a map and a window into a larger one (p in delta_{o,p,q}
            # and in a_{c,p+u,q}): it runs over the smallest axis it indexes
            return min(axes)
        widths |= axes
        if len(widths) > 1:
            raise self.error(f"{s.index} indexes layers of different widths "
                             f"({', '.join(map(str, sorted(widths)))})", s,
                             hint="Write the upper bound as a number")
        return widths.pop() if widths else None

    def width_layer(self, kind: str, layer: int | None, position: int) -> int:
        """The layer whose width bounds index ``position`` of a node: w_jk's k and a custom
        parameter's k are layer l-1's."""
        lay = self.graph.layers.get(layer)
        specs = getattr(lay, "param_specs", {}) if lay is not None else {}
        if kind in specs:
            return layer - 1 if specs[kind].letters[position] == "k" else layer
        return node_layer(kind, layer, position, self.graph.L)



def node_layer(kind: str, layer: int | None, position: int, L: int) -> int:
    """The layer whose width bounds index ``position`` of a node (w's k is layer l-1's)."""
    if kind == "x":
        return 0
    if kind == "y":
        return L
    return layer - 1 if (kind == "w" and position == 1) else layer
