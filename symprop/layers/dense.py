"""``dense``: z_j^(l) = sum_k w_jk^(l) a_k^(l-1) (+ b_j^(l)), a_j^(l) = g^(l)(z_j^(l)).

Seed 000's layer, and the only kind with a z: its accumulated gradient is delta_j^(l) =
dC_0/dz_j^(l).  Parameters W{l} (n_l, n_{l-1}) and b{l} (n_l,).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import sympy

from ..activations import Softmax
from ..notation import Node, node_of
from ..numeric import Products
from .base import (
    IDENTITY,
    ActivationChoice,
    LayerConfig,
    ParamSpec,
    ParseContext,
    parse_activation,
    torch_array,
)
from .mistakes import BackwardMistake, activation_mistakes
from .symbolic import (
    SUM_LETTERS,
    GraphContext,
    LazyRows,
    SymbolicLayer,
    WithZ,
    activation_function,
    general,
    node,
)

__all__ = ["DenseConfig", "DenseLayer"]


@dataclass(frozen=True)
class DenseConfig(LayerConfig):
    kind = "dense"
    KEYS: ClassVar[dict] = {"width": None, "activation": "identity", "bias": False}

    activation: ActivationChoice = IDENTITY
    bias: bool = False

    TORCH_MODULES: ClassVar[tuple[str, ...]] = ("Linear",)

    @classmethod
    def from_torch(cls, module, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """nn.Linear: W is its weight as it is (both (out, in)); the activation module after
        it is folded in by the importer."""
        params = {"W": torch_array(module.weight)}
        if module.bias is not None:
            params["b"] = torch_array(module.bias)
        return ({"kind": cls.kind, "width": module.out_features, "activation": "identity",
                 "bias": module.bias is not None}, params)

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

    def backward_mistakes(self) -> tuple[BackwardMistake, ...]:
        return (*activation_mistakes(self.activation.name, "Delta", "z"), BackwardMistake(
            "dA = Delta W^T instead of Delta W: W, of shape (n_l, n_(l-1)), takes layer l-1 "
            "to layer l, so dC/dA = Delta W", _through_transpose))

    def notation(self) -> list[tuple[str, str]]:
        return []  # seed 000's own: w, b, z, a, delta

    def composed_size(self, sizes: Mapping[int, int], spec) -> int:
        """z_j repeats every node below once; a softmax output repeats every z."""
        z = spec.layers[self.index - 1] * (sizes[self.index - 1] + 2) + self.bias
        return self.width * z if self.activation.name == "softmax" else z + 1

    def build(self, ctx: GraphContext) -> DenseLayer:
        return DenseLayer(self, ctx)

    def reference(self, ops, params: dict, outputs: dict):
        """z = a W^T (+ b), a = g(z), in the array library itself."""
        z = outputs[self.index - 1] @ params["W"].T
        return ops.activation(self.activation, self.index)(z + params["b"] if self.bias else z)


def _through_transpose(point) -> dict:
    """dA = Delta W^T for a square W, Delta = dC/dz recovered as dA W^-1."""
    W = point.params["W"]
    if W.shape[0] != W.shape[1] or np.linalg.cond(W) > 1e8:
        return {}
    return {"A": point.truth["A"] @ np.linalg.inv(W) @ W.T}


def _weight_row(layer: int, n_in: int, j: int) -> LazyRows:
    return LazyRows(n_in, functools.partial(node, "w", layer, j))


def _z_term(w_row: LazyRows, a_below: tuple, b_j: sympy.Symbol | None, k: int) -> sympy.Expr:
    return b_j if k == len(a_below) else w_row[k] * a_below[k]


def _z_terms_row(w: LazyRows, a_below: tuple, b: tuple | None, j: int) -> LazyRows:
    """The terms of z_j, each built when read: w_j0 a_0, w_j1 a_1, ..., then b_j."""
    return LazyRows(len(a_below) + (b is not None),
                    functools.partial(_z_term, w[j], a_below, b[j] if b else None))


class DenseLayer(WithZ, SymbolicLayer):
    """z_j = sum_k w_jk a_k (+ b_j), a_j = g(z_j); the entries are the z, with delta_j.

    Weight rows and the terms of each z are built when first read (:class:`LazyRows`), so a
    wide layer costs time linear in its nodes until a derivation reads a row.
    """

    kind = "dense"

    def __init__(self, config: DenseConfig, ctx: GraphContext):
        super().__init__(config, ctx)
        l, n_out = self.index, self.width
        self.below = tuple(self.sources_of[l - 1])
        self.w = LazyRows(n_out, functools.partial(_weight_row, l, len(self.below)))
        self.b = tuple(node("b", l, j) for j in range(n_out)) if config.bias else None
        self.z = tuple(node("z", l, j) for j in range(n_out))
        self.entries = self.z
        self.adjoints = self.delta = tuple(node("delta", l, j) for j in range(n_out))
        choice = config.activation
        self.activation = activation_function(choice.name, choice.params, l,
                                              dict(ctx.spec.activations))
        #: z_terms[j]: the terms of z_j, in order (w_j0 a_0, ..., b_j), each built when read.
        self.z_terms = LazyRows(n_out, functools.partial(_z_terms_row, self.w, self.below,
                                                         self.b))
        if self.activation is Softmax:
            self.a_def = tuple(Softmax(j, *self.z) for j in range(n_out))
        else:
            self.a_def = tuple(self.activation(z_j) for z_j in self.z)

    @property
    def parameters(self) -> list[Node]:
        l, n_out, n_in = self.index, self.width, len(self.below)
        out = [Node("w", l, j, k) for j in range(n_out) for k in range(n_in)]
        return out + ([Node("b", l, j) for j in range(n_out)] if self.b is not None else [])

    def term_of(self, j: int, symbol: sympy.Symbol) -> int | None:
        """The one term of z_j that contains ``symbol`` (an input node or a parameter of the
        layer), or None when no term does; anything else raises ValueError."""
        found = node_of(symbol)
        if found is not None and found.kind in ("w", "b"):
            if found.layer != self.index or found.j != j:
                return None
            return found.k if found.kind == "w" else len(self.below)
        if symbol in self._below_index:
            return self._below_index[symbol]
        raise ValueError(f"{symbol} is not an input or parameter of layer {self.index}")

    def sources(self, i: int):
        return self.below

    def readers(self, source: sympy.Symbol) -> range:
        return range(self.width)

    def local(self, i: int, wrt: sympy.Symbol) -> sympy.Expr:
        """dz_i/d(wrt): the derivative of z_i's one term that holds ``wrt``, read off the term
        (d(w_ik a_k)/dw_ik = a_k, d(w_ik a_k)/da_k = w_ik, db_i/db_i = 1): what SymPy's diff
        of the term returns, without a diff per weight."""
        k = self.term_of(i, wrt)
        if k is None:
            return sympy.S.Zero
        if k == len(self.below):
            return sympy.S.One
        return self.w[i][k] if wrt is self.below[k] else self.below[k]

    def param_entries(self, param: Node) -> tuple[int]:
        return (param.j,)

    def definition(self, symbol: sympy.Symbol) -> sympy.Expr | None:
        """z_j by its terms, a_j by g(z_j), built for the one symbol asked for."""
        found = node_of(symbol)
        if found is None or found.layer != self.index:
            return None
        if found.kind == "z":
            return self.z_def(found.j)
        return self.a_def[found.j] if found.kind == "a" else None

    def numeric_definition(self, symbol: sympy.Symbol):
        """z_j as its products w_jk a_k (+ b_j), evaluated without building the sum."""
        found = node_of(symbol)
        if found is not None and found.layer == self.index and found.kind == "z":
            j = found.j
            return Products(zip(self.w[j], self.below), self.b[j] if self.b else None)
        return self.definition(symbol)

    def general_definitions(self) -> list[tuple[sympy.Expr, sympy.Expr]]:
        """z_j^(l) = sum_k w_jk^(l) a_k^(l-1) (+ b_j^(l)), a_j^(l) = g^(l)(z_j^(l))."""
        l, k, m = self.index, SUM_LETTERS["k"], SUM_LETTERS["m"]
        z_j = general("z", l, "j")
        z_rhs = sympy.Sum(general("w", l, "j", "k") * general("a", l - 1, "k"),
                          (k, 0, len(self.below) - 1))
        if self.b is not None:
            z_rhs = z_rhs + general("b", l, "j")
        if self.activation is Softmax:
            a_rhs = sympy.exp(z_j) / sympy.Sum(sympy.exp(general("z", l, "m")),
                                                (m, 0, self.width - 1))
        else:
            a_rhs = self.activation(z_j)
        return [(z_j, z_rhs), (general("a", l, "j"), a_rhs)]

    def general_contribution(self, source: int) -> sympy.Expr:
        """sum_j delta_j^(l) w_jk^(l): the next layer's deltas, back through the weights."""
        return sympy.Sum(general("delta", self.index, "j") * general("w", self.index, "j", "k"),
                         (SUM_LETTERS["j"], 0, self.width - 1))

    def general_parameters(self) -> list[tuple[sympy.Expr, sympy.Expr]]:
        """dC_0/dw_jk^(l) = delta_j^(l) a_k^(l-1) and dC_0/db_j^(l) = delta_j^(l)."""
        l, delta = self.index, general("delta", self.index, "j")
        out = [(general("w", l, "j", "k"), delta * general("a", l - 1, "k"))]
        return out + ([(general("b", l, "j"), delta)] if self.b is not None else [])
