"""``dense``: z_j^(l) = sum_k w_jk^(l) a_k^(l-1) (+ b_j^(l)), a_j^(l) = g^(l)(z_j^(l)).

Seed 000's layer, and the only kind with a z: its accumulated gradient is delta_j^(l) =
dC_0/dz_j^(l).  Parameters W{l} (n_l, n_{l-1}) and b{l} (n_l,).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .base import IDENTITY, ActivationChoice, LayerConfig, ParamSpec, ParseContext, parse_activation

__all__ = ["DenseConfig"]


@dataclass(frozen=True)
class DenseConfig(LayerConfig):
    kind = "dense"
    KEYS: ClassVar[dict] = {"width": None, "activation": "identity", "bias": False}

    activation: ActivationChoice = IDENTITY
    bias: bool = False

    @classmethod
    def parse(cls, table: Mapping[str, Any], ctx: ParseContext) -> DenseConfig:
        table = cls.check_keys(table, ctx)
        activation = parse_activation(table["activation"], ctx.activations,
                                      ctx.where("activation"))
        if activation.name == "softmax" and ctx.index != ctx.count:
            raise ctx.error(f"softmax is only supported on the output layer, not layer "
                            f"{ctx.index}", "activation",
                            hint="For a softmax inside the network, add an activation layer: "
                                 "kind = \"activation\", activation = \"softmax\"")
        return cls(ctx.index, ctx.width(table), activation, ctx.boolean(table, "bias"))

    def parameters(self, widths: tuple[int, ...]) -> tuple[ParamSpec, ...]:
        n_out, n_in = self.width, widths[self.index - 1]
        weights = ParamSpec("W", "w", "jk", (n_out, n_in), "glorot")
        return (weights, ParamSpec("b", "b", "j", (n_out,), "zeros")) if self.bias else (weights,)

    def to_table(self) -> dict[str, Any]:
        return {"kind": self.kind, "width": self.width, "activation": str(self.activation),
                "bias": self.bias}

    def describe(self) -> str:
        return f"dense, {self.activation}" + (", bias" if self.bias else "")
