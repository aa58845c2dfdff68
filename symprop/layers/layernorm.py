"""``layernorm``: a_j^(l) = gamma_j xhat_j + beta_j over the nodes of layer l-1, with
xhat_j = (a_j^(l-1) - mu)/sigma, mu their mean and sigma = sqrt(var + eps) (biased variance).

Parameters gamma{l} and beta{l} of shape (n,), starting at 1 and 0 (``affine = false``: none).
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
from .mistakes import normalisation_mistakes
from .symbolic import GraphContext

__all__ = ["LayerNormConfig"]


@dataclass(frozen=True)
class LayerNormConfig(LayerConfig):
    kind = "layernorm"
    KEYS: ClassVar[dict] = {"eps": 1e-5, "affine": True}

    eps: float = 1e-5
    affine: bool = True

    TORCH_MODULES: ClassVar[tuple[str, ...]] = ("LayerNorm",)

    @classmethod
    def from_torch(cls, module, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """nn.LayerNorm over the last axis: gamma and beta are its weight and bias."""
        one_axis(module, where)
        affine = module.elementwise_affine
        if affine and module.bias is None:
            raise InputError(f"{where} (LayerNorm): bias=False keeps gamma without beta, "
                             "which symprop's layernorm does not express",
                             hint="Use nn.LayerNorm(n) with its bias, or no affine at all")
        params = {"gamma": torch_array(module.weight), "beta": torch_array(module.bias)} \
            if affine else {}
        return {"kind": cls.kind, "eps": float(module.eps), "affine": bool(affine)}, params

    @classmethod
    def parse(cls, table: Mapping[str, Any], ctx: ParseContext) -> LayerNormConfig:
        table = cls.check_keys(table, ctx)
        if ctx.below < 2:
            raise ctx.error("normalising a single node gives 0 for every input",
                            hint="Give the layer before it 2 or more nodes")
        return cls(ctx.index, ctx.below, ctx.number(table, "eps", positive=True),
                   ctx.boolean(table, "affine"))

    def parameters(self, widths: tuple[int, ...]) -> tuple[ParamSpec, ...]:
        if not self.affine:
            return ()
        return (ParamSpec("gamma", "gamma", "j", (self.width,), "ones"),
                ParamSpec("beta", "beta", "j", (self.width,), "zeros"))

    def to_table(self) -> dict[str, Any]:
        return {"kind": self.kind, "eps": self.eps, "affine": self.affine}

    def composed_size(self, sizes: Mapping[int, int], spec) -> int:
        """mu repeats every node below, sigma every node and mu again: about n^2 nodes."""
        n, below = self.width, sizes[self.index - 1]
        mu = n * below + 1
        sigma = n * (below + mu + 1) + 2
        return below + mu + sigma + 3

    def notation(self) -> list[tuple[str, str]]:
        return [*super().notation(),
                (r"\mu^{(l)}, \sigma^{(l)}",
                 (r"mean and $\sqrt{\mathrm{var} + \epsilon}$ of the nodes a layernorm reads, "
                 r"one of each per sample")),
                (r"\hat{x}_{j}^{(l)}",
                 r"node $j$ normalised, $(a_{j}^{(l-1)} - \mu^{(l)})/\sigma^{(l)}$"),
                (r"\gamma_{j}^{(l)}, \beta_{j}^{(l)}",
                 "scale and shift of node $j$ of a normalisation layer")]

    def backward_mistakes(self) -> tuple:
        return normalisation_mistakes(self.eps, 1, self.affine, "over the nodes")

    def describe(self) -> str:
        return f"layernorm, eps {self.eps:g}" + ("" if self.affine else ", no affine")

    def reference(self, ops, params: dict, outputs: dict):
        """mean and biased variance over the nodes, then the affine map."""
        a = outputs[self.index - 1]
        mu = a.mean(-1, keepdims=True)
        xhat = (a - mu) / ops.xp.sqrt(((a - mu) ** 2).mean(-1, keepdims=True) + self.eps)
        return params["gamma"] * xhat + params["beta"] if self.affine else xhat

    def build(self, ctx: GraphContext) -> FormulaLayer:
        in_j, in_k = slot("in", letters="j"), slot("in", letters="k")
        mu, sigma = slot("named", "mu"), slot("named", "sigma")
        xhat = slot("named", "xhat", "j")
        named = {mu: SumK(in_k) / N,
                 sigma: sympy.sqrt(SumK((in_k - mu) ** 2) / N + exact(self.eps)),
                 xhat: (in_j - mu) / sigma}
        out = slot("param", "gamma", "j") * xhat + slot("param", "beta", "j") if self.affine \
            else xhat
        return FormulaLayer(self, ctx, out, named)
