"""``activation``: a_j^(l) = g(a_j^(l-1)) node by node, or softmax over the layer.

A dense layer without weights: the same activations (generic g included), the same
derivatives g'(a_j^(l-1)) and, for softmax, the same Jacobian a_i (delta_im - a_m).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .base import IDENTITY, ActivationChoice, LayerConfig, ParseContext, parse_activation

__all__ = ["ActivationConfig"]


@dataclass(frozen=True)
class ActivationConfig(LayerConfig):
    kind = "activation"
    KEYS: ClassVar[dict] = {"activation": None}

    activation: ActivationChoice = IDENTITY

    @classmethod
    def parse(cls, table: Mapping[str, Any], ctx: ParseContext) -> ActivationConfig:
        table = cls.check_keys(table, ctx)
        activation = parse_activation(table["activation"], ctx.activations,
                                      ctx.where("activation"))
        if activation.name == "softmax" and ctx.below == 1:
            raise ctx.error("softmax over a single node is the constant 1", "activation",
                            hint="Give the layer before it 2 or more nodes")
        return cls(ctx.index, ctx.below, activation)

    def to_table(self) -> dict[str, Any]:
        return {"kind": self.kind, "activation": str(self.activation)}

    def describe(self) -> str:
        return f"activation, {self.activation}"
