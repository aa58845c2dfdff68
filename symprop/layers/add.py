"""``add``: a_j^(l) = a_j^(l-1) + a_j^(m), a residual connection from layer m (``from``)."""

from __future__ import annotations

from dataclasses import dataclass

from .base import TwoInputConfig
from .formula import FormulaLayer
from .letters import slot
from .symbolic import GraphContext

__all__ = ["AddConfig"]


@dataclass(frozen=True)
class AddConfig(TwoInputConfig):
    kind = "add"

    def reference(self, ops, params: dict, outputs: dict):
        return outputs[self.index - 1] + outputs[self.source]

    def build(self, ctx: GraphContext) -> FormulaLayer:
        return FormulaLayer(self, ctx, slot("in", letters="j") + slot("from", letters="j"))
