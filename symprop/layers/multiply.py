"""``multiply``: a_j^(l) = a_j^(l-1) a_j^(m), a gate: layer m scales layer l-1 node by node."""

from __future__ import annotations

from dataclasses import dataclass

from .base import TwoInputConfig
from .formula import FormulaLayer
from .letters import slot
from .symbolic import GraphContext

__all__ = ["MultiplyConfig"]


@dataclass(frozen=True)
class MultiplyConfig(TwoInputConfig):
    kind = "multiply"

    def reference(self, ops, params: dict, outputs: dict):
        return outputs[self.index - 1] * outputs[self.source]

    def build(self, ctx: GraphContext) -> FormulaLayer:
        return FormulaLayer(self, ctx, slot("in", letters="j") * slot("from", letters="j"))
