"""``activation``: a_j^(l) = g(a_j^(l-1)) node by node, or softmax over the layer.

A dense layer without weights: the same activations (generic g included), the same
derivatives g'(a_j^(l-1)) and, for softmax, the same Jacobian a_i (delta_im - a_m).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import sympy

from ..activations import ElementwiseActivation, Softmax
from ..errors import InputError
from .base import IDENTITY, ActivationChoice, LayerConfig, ParseContext, parse_activation
from .derived import LetterForms
from .letters import SumK, slot
from .maps import MAP_LETTERS
from .mistakes import BackwardMistake, activation_mistakes
from .symbolic import SUM_LETTERS, GraphContext, SymbolicLayer, activation_function, general

__all__ = ["ActivationConfig", "ActivationLayer"]


@dataclass(frozen=True)
class ActivationConfig(LayerConfig):
    kind = "activation"
    KEYS: ClassVar[dict] = {"activation": None}

    activation: ActivationChoice = IDENTITY
    #: The shape of layer l - 1, which an elementwise activation keeps (a map stays a map).
    in_shape: tuple[int, ...] = ()
    READS_FLAT: ClassVar[bool] = False

    @property
    def shape(self) -> tuple[int, ...]:
        return self.in_shape or (self.width,)

    TORCH_MODULES: ClassVar[tuple[str, ...]] = ("ReLU", "Tanh", "Sigmoid", "Softplus", "ELU",
                                                "SiLU", "LeakyReLU", "Softmax")

    @classmethod
    def from_torch(cls, module, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """An activation module by torch's meaning; options symprop's activation does not
        have (softplus's beta, a softmax over another axis) are refused."""
        name = type(module).__name__
        if name == "Softplus" and (module.beta != 1 or module.threshold != 20):
            raise InputError(f"{where} (Softplus): beta={module.beta}, threshold="
                             f"{module.threshold} is not symprop's softplus log(1 + e^z)",
                             hint="Use nn.Softplus() with its defaults")
        if name == "Softmax" and module.dim not in (-1, 1):
            raise InputError(f"{where} (Softmax): dim={module.dim}; symprop's softmax runs "
                             "over each sample's nodes", hint="Use nn.Softmax(dim=-1)")
        activation = {"ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid",
                      "Softplus": "softplus", "SiLU": "swish", "Softmax": "softmax",
                      "ELU": f"elu({getattr(module, 'alpha', 1.0)!r})",
                      "LeakyReLU": f"leaky_relu({getattr(module, 'negative_slope', 0.01)!r})"}
        return {"kind": cls.kind, "activation": activation[name]}, {}

    @classmethod
    def parse(cls, table: Mapping[str, Any], ctx: ParseContext) -> ActivationConfig:
        table = cls.check_keys(table, ctx)
        activation = parse_activation(table["activation"], ctx.activations,
                                      ctx.where("activation"))
        if activation.name == "softmax" and ctx.below == 1:
            raise ctx.error("softmax over a single node is the constant 1", "activation",
                            hint="Give the layer before it 2 or more nodes")
        shape = tuple(ctx.below_shape)
        if activation.name == "softmax" and len(shape) > 1:
            below = "the input" if ctx.index == 1 else f"layer {ctx.index - 1}"
            raise ctx.error(f"a softmax runs over a flat layer's nodes, but {below} is a map of "
                            f"shape {list(shape)} (channels, positions)", "activation",
                            hint="Put a flatten layer before it: [[layer]] kind = \"flatten\"")
        return cls(ctx.index, ctx.below, activation, shape if len(shape) > 1 else ())

    def to_table(self) -> dict[str, Any]:
        return {"kind": self.kind, "activation": str(self.activation)}

    def reached(self, source: int, ks: set[int]) -> set[int]:
        """Node by node; softmax reads the whole layer."""
        if source != self.index - 1 or self.activation.name != "softmax":
            return set(ks) if source == self.index - 1 else set()
        return super().reached(source, ks)

    def describe(self) -> str:
        return f"activation, {self.activation}"

    def backward_mistakes(self) -> tuple[BackwardMistake, ...]:
        return tuple(activation_mistakes(self.activation.name, "dA", "A"))

    def composed_size(self, sizes: Mapping[int, int], spec) -> int:
        below = sizes[self.index - 1]
        return self.width * (below + 1) if self.activation.name == "softmax" else below + 1

    def build(self, ctx: GraphContext) -> ActivationLayer:
        return ActivationLayer(self, ctx)

    def reference(self, ops, params: dict, outputs: dict):
        return ops.activation(self.activation, self.index)(outputs[self.index - 1])


class ActivationLayer(SymbolicLayer):
    """a_j = g(a_j^(l-1)), or softmax over the layer; the entries are the outputs."""

    kind = "activation"

    def __init__(self, config: ActivationConfig, ctx: GraphContext):
        super().__init__(config, ctx)
        self.below = tuple(self.sources_of[self.index - 1])
        self.entries = self.outputs
        self.adjoints = self.nodes("adj")
        choice = config.activation
        self.activation = activation_function(choice.name, choice.params, self.index,
                                              dict(ctx.spec.activations))
        if self.activation is Softmax:
            self.a_def = tuple(Softmax(j, *self.below) for j in range(self.width))
        else:
            self.a_def = tuple(self.activation(x) for x in self.below)

    @property
    def elementwise(self) -> bool:
        return issubclass(self.activation, ElementwiseActivation)

    #: An activation layer reads layer l-1 only and has no parameters or named quantities.
    named_forms: ClassVar[dict] = {}
    param_specs: ClassVar[dict] = {}

    @property
    def roles(self) -> dict[str, int]:
        return {"in": self.index - 1}

    @property
    def n_in(self) -> int:
        return len(self.below)

    def symbol_of(self, info, indices: tuple[int, ...]) -> sympy.Symbol:
        """The network's symbol for a slot of :attr:`forms`: node j of layer l-1 or of l."""
        return (self.below if info.role == "in" else self.outputs)[indices[0]]

    @functools.cached_property
    def forms(self) -> LetterForms:
        """Node j in letters, g(a_j) or exp(a_j)/sum_k exp(a_k), and what SymPy derives."""
        in_j, in_k = slot("in", letters="j"), slot("in", letters="k")
        out = self.activation(in_j) if self.elementwise else \
            sympy.exp(in_j) / SumK(sympy.exp(in_k))
        return LetterForms(out, {}, ("in",), {})

    def sources(self, i: int):
        return self.below if not self.elementwise else (self.below[i],)

    def readers(self, source: sympy.Symbol):
        return range(self.width) if not self.elementwise else [self.below.index(source)]

    def local(self, i: int, wrt: sympy.Symbol) -> sympy.Expr:
        """g'(a_i^(l-1)) on the diagonal; softmax's Jacobian a_i (delta_im - a_m)."""
        if wrt not in self.below:
            return sympy.S.Zero
        value = sympy.diff(self.a_def[i], wrt)
        return value.xreplace(dict(zip(self.a_def, self.outputs)))

    def param_entries(self, param):
        return ()

    def definitions(self) -> dict[sympy.Symbol, sympy.Expr]:
        return dict(zip(self.outputs, self.a_def))

    def _map_letters(self) -> tuple[str, ...] | None:
        """A map's node letters (c, p, q), None for a flat layer."""
        shape = self.config.shape
        return tuple(MAP_LETTERS[:len(shape)]) if len(shape) > 1 else None

    def general_definitions(self) -> list[tuple[sympy.Expr, sympy.Expr]]:
        letters = self._map_letters() or ("j",)
        l, below = self.index, general("a", self.index - 1, *letters)
        if self.elementwise:
            return [(general("a", l, *letters), self.activation(below))]
        m = SUM_LETTERS["m"]
        total = sympy.Sum(sympy.exp(general("a", l - 1, "m")), (m, 0, self.width - 1))
        return [(general("a", l, "j"), sympy.exp(below) / total)]

    def general_contribution(self, source: int) -> sympy.Expr:
        """dC_0/da_k^(l) g'(a_k^(l-1)); for softmax sum_j dC_0/da_j^(l) a_j (delta_jk - a_k)."""
        l, letters = self.index, self._map_letters()
        if letters:  # a map, node by node
            return general("adj", l, *letters) * self.activation.prime(
                general("a", l - 1, *letters))
        if self.elementwise:
            return self.adjoint_general("k") * self.activation.prime(general("a", l - 1, "k"))
        j, k = SUM_LETTERS["j"], SUM_LETTERS["k"]
        a_j, a_k = general("a", l, "j"), general("a", l, "k")
        return sympy.Sum(self.adjoint_general("j") * a_j * (sympy.KroneckerDelta(j, k) - a_k),
                         (j, 0, self.width - 1))
