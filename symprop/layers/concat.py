"""``concat``: the nodes of layer l-1, then those of layer m (``from``): a_j^(l) = a_j^(l-1)
for j < n_{l-1}, else a_{j - n_{l-1}}^(m)."""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .base import TwoInputConfig
from .symbolic import GraphContext, SymbolicLayer, general

__all__ = ["ConcatConfig", "ConcatLayer"]


@dataclass(frozen=True)
class ConcatConfig(TwoInputConfig):
    kind = "concat"
    SAME_WIDTH = False

    def reached(self, source: int, ks: set[int]) -> set[int]:
        """Node j copies node j of layer l-1, then node j - n_{l-1} of the ``from`` layer."""
        out = set(ks) if source == self.index - 1 else set()
        return out | ({k + self.split for k in ks} if source == self.source else set())

    def reference(self, ops, params: dict, outputs: dict):
        return ops.concat([outputs[self.index - 1], outputs[self.source]])

    def build(self, ctx: GraphContext) -> ConcatLayer:
        return ConcatLayer(self, ctx)


class ConcatLayer(SymbolicLayer):
    """a_j = the j-th node of (a^(l-1), a^(m)); each output copies one node."""

    kind = "concat"

    def __init__(self, config: ConcatConfig, ctx: GraphContext):
        super().__init__(config, ctx)
        self.entries = self.outputs
        self.adjoints = self.nodes("adj")
        self.copied = (*self.sources_of[self.index - 1], *self.sources_of[config.source])

    @property
    def offsets(self) -> dict[int, tuple[int, ...]]:
        """Each layer read -> where its node m sits in this one, minus m (0, then n_{l-1})."""
        l, m = self.index - 1, self.config.source
        return {l: (0, self._split) if m == l else (0,)} | ({} if m == l else {m: (self._split,)})

    def sources(self, i: int):
        return (self.copied[i],)

    def readers(self, source: sympy.Symbol):
        return [i for i, s in enumerate(self.copied) if s == source]

    def local(self, i: int, wrt: sympy.Symbol) -> sympy.Expr:
        return sympy.S.One if self.copied[i] == wrt else sympy.S.Zero

    def param_entries(self, param):
        return ()

    def definitions(self) -> dict[sympy.Symbol, sympy.Expr]:
        return dict(zip(self.outputs, self.copied))

    @property
    def _split(self) -> int:
        return self.config.split

    def general_definitions(self) -> list[tuple[sympy.Expr, sympy.Expr]]:
        """a_j^(l) = a_j^(l-1), then a_{j+n}^(l) = a_j^(m), n the width of layer l-1."""
        l, m = self.index, self.config.source
        return [(general("a", l, "j"), general("a", l - 1, "j")),
                (general("a", l, f"j+{self._split}"), general("a", m, "j"))]

    def general_contribution(self, source: int) -> sympy.Expr:
        total = sympy.S.Zero
        if source == self.index - 1:
            total += general("adj", self.index, "k")
        if source == self.config.source:
            total += general("adj", self.index, f"k+{self._split}")
        return total
