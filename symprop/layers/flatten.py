"""``flatten``: a_j^(l) = a_{c,p,q}^(l-1) with j the C-order position of (c, p, q) (channel,
then row, then column, as torch.flatten), so a dense layer can read a map.

The nodes are the same numbers under flat names; dC_0/da_{c,p,q}^(l-1) is dC_0/da_j^(l).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import sympy

from .base import LayerConfig, ParseContext
from .maps import MAP_LETTERS, flat_index_text
from .symbolic import GraphContext, SymbolicLayer, general

__all__ = ["FlattenConfig", "FlattenLayer"]


@dataclass(frozen=True)
class FlattenConfig(LayerConfig):
    kind = "flatten"
    READS_FLAT: ClassVar[bool] = False
    TORCH_MODULES: ClassVar[tuple[str, ...]] = ("Flatten",)

    @classmethod
    def from_torch(cls, module, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """nn.Flatten over every axis after the batch."""
        from ..errors import InputError

        if module.start_dim != 1 or module.end_dim != -1:
            raise InputError(f"{where} (Flatten): start_dim={module.start_dim}, end_dim="
                             f"{module.end_dim}", hint="Flatten every axis after the batch: "
                                                       "nn.Flatten()")
        return {"kind": cls.kind}, {}

    @classmethod
    def parse(cls, table: Mapping[str, Any], ctx: ParseContext) -> FlattenConfig:
        cls.check_keys(table, ctx)
        return cls(ctx.index, math.prod(ctx.below_shape))

    def reached(self, source: int, ks: set[int]) -> set[int]:
        return set(ks) if source == self.index - 1 else set()

    def composed_size(self, sizes: Mapping[int, int], spec) -> int:
        return sizes[self.index - 1]

    def notation(self) -> list[tuple[str, str]]:
        return [(r"a_{j}^{(l)} = a_{c,p,q}^{(l-1)}", ("a flatten layer's node $j$: the entry "
                                                      "$(c, p, q)$ in C order"))]

    def build(self, ctx: GraphContext) -> FlattenLayer:
        return FlattenLayer(self, ctx)

    def reference(self, ops, params: dict, outputs: dict):
        return outputs[self.index - 1]  # the nodes are kept flat in C order throughout


class FlattenLayer(SymbolicLayer):
    """a_j = the j-th node of layer l-1 in C order; the entries are the outputs."""

    kind = "flatten"

    def __init__(self, config: FlattenConfig, ctx: GraphContext):
        super().__init__(config, ctx)
        self.below = tuple(self.sources_of[self.index - 1])
        self.shape_below = ctx.spec.shapes[self.index - 1]
        self.entries = self.outputs
        self.adjoints = self.nodes("adj")

    def sources(self, i: int):
        return (self.below[i],)

    def readers(self, source: sympy.Symbol) -> tuple[int]:
        return (self._below_index[source],)

    def local(self, i: int, wrt: sympy.Symbol) -> sympy.Expr:
        return sympy.S.One if wrt == self.below[i] else sympy.S.Zero

    def param_entries(self, param):
        return ()

    def array_code(self, code) -> dict:
        """A reshape each way: C order, as the nodes are numbered."""
        l, shape = self.index, ", ".join(map(str, self.shape_below))
        return {"forward": [f"A{l} = A{l - 1}.reshape(A{l - 1}.shape[0], -1)"],
                "passes": {l - 1: f"dA{l}.reshape(dA{l}.shape[0], {shape})"},
                "saved": [], "reads": []}

    def definition(self, symbol: sympy.Symbol) -> sympy.Expr | None:
        j = self._output_index.get(symbol)
        return None if j is None else self.below[j]

    @functools.cached_property
    def _output_index(self) -> dict[sympy.Symbol, int]:
        return {a: j for j, a in enumerate(self.outputs)}

    def definitions(self) -> dict[sympy.Symbol, sympy.Expr]:
        return dict(zip(self.outputs, self.below))

    def general_definitions(self) -> list[tuple[sympy.Expr, sympy.Expr]]:
        """a_{12c+4p+q}^(l) = a_{c,p,q}^(l-1) for a [2, 3, 4] map: C order."""
        letters = MAP_LETTERS[:len(self.shape_below)]
        return [(general("a", self.index, flat_index_text(self.shape_below)),
                 general("a", self.index - 1, *letters))]

    def general_contribution(self, source: int) -> sympy.Expr:
        """dC_0/da_{c,p,q}^(l-1) is dC_0/da_{12c+4p+q}^(l): the same node under its flat name."""
        return general("adj", self.index, flat_index_text(self.shape_below))
