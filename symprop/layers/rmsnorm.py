"""``rmsnorm``: a_j^(l) = gamma_j xhat_j with xhat_j = a_j^(l-1)/r and
r = sqrt(mean_k (a_k^(l-1))^2 + eps), the root mean square of layer l-1.

Parameter gamma{l} of shape (n,), starting at 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import sympy

from ..errors import InputError
from .base import LayerConfig, ParamSpec, ParseContext, one_axis, torch_array
from .formula import FormulaLayer, exact
from .letters import N, SumK, slot
from .symbolic import GraphContext

__all__ = ["RMSNormConfig"]


@dataclass(frozen=True)
class RMSNormConfig(LayerConfig):
    kind = "rmsnorm"
    KEYS: ClassVar[dict] = {"eps": 1e-5}

    eps: float = 1e-5

    TORCH_MODULES: ClassVar[tuple[str, ...]] = ("RMSNorm",)

    @classmethod
    def from_torch(cls, module, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """nn.RMSNorm over the last axis, with its weight as gamma and an explicit eps."""
        one_axis(module, where)
        if not module.elementwise_affine:
            raise InputError(f"{where} (RMSNorm): elementwise_affine=False has no gamma; "
                             "symprop's rmsnorm always learns gamma",
                             hint="Use nn.RMSNorm(n, eps=...) with its weight")
        if module.eps is None:
            raise InputError(f"{where} (RMSNorm): eps=None takes the input dtype's machine "
                             "epsilon, which depends on the dtype",
                             hint="Give the eps: nn.RMSNorm(n, eps=1e-5)")
        return {"kind": cls.kind, "eps": float(module.eps)}, {"gamma": torch_array(module.weight)}

    @classmethod
    def parse(cls, table: Mapping[str, Any], ctx: ParseContext) -> RMSNormConfig:
        table = cls.check_keys(table, ctx)
        return cls(ctx.index, ctx.below, ctx.number(table, "eps", positive=True))

    def parameters(self, widths: tuple[int, ...]) -> tuple[ParamSpec, ...]:
        return (ParamSpec("gamma", "gamma", "j", (self.width,), "ones"),)

    def to_table(self) -> dict[str, Any]:
        return {"kind": self.kind, "eps": self.eps}

    def composed_size(self, sizes: Mapping[int, int], spec) -> int:
        below = sizes[self.index - 1]
        return below + self.width * (below + 1) + 4

    def notation(self) -> list[tuple[str, str]]:
        return [*super().notation(),
                (r"r^{(l)}",
                 (r"root mean square of the nodes an rmsnorm reads (with $\epsilon$), one per "
                 r"sample")),
                (r"\hat{x}_{j}^{(l)}", r"node $j$ over it, $a_{j}^{(l-1)}/r^{(l)}$"),
                (r"\gamma_{j}^{(l)}", "scale of node $j$ of a normalisation layer")]

    def describe(self) -> str:
        return f"rmsnorm, eps {self.eps:g}"

    def reference(self, ops, params: dict, outputs: dict):
        a = outputs[self.index - 1]
        return params["gamma"] * a / ops.xp.sqrt((a ** 2).mean(-1, keepdims=True) + self.eps)

    def build(self, ctx: GraphContext) -> FormulaLayer:
        in_j, in_k = slot("in", letters="j"), slot("in", letters="k")
        r, xhat = slot("named", "r"), slot("named", "xhat", "j")
        named = {r: sympy.sqrt(SumK(in_k ** 2) / N + exact(self.eps)), xhat: in_j / r}
        return FormulaLayer(self, ctx, slot("param", "gamma", "j") * xhat, named)
