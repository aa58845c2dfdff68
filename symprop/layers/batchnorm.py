"""``batchnorm``: a_{i,j}^(l) = gamma_j xhat_{i,j} + beta_j, training mode, with
xhat_{i,j} = (a_{i,j}^(l-1) - mu_j)/sigma_j, mu_j the batch's mean of node j and
sigma_j = sqrt(var_j + eps), var_j its biased variance; after a conv layer one mu and sigma
per channel, over the batch and the positions (torch's BatchNorm1d/2d in training mode).

Parameters gamma{l} and beta{l} of shape (n,), or (C,) after a conv, starting at 1 and 0
(``affine = false``: none).

Unlike every other kind, node j of sample i depends on every sample of the batch (through
mu_j and sigma_j), so the loss is no sum of independent per-sample losses C_0.  The layer's
array code (all three targets), its reference forward, its backward's usual mistakes
(``check --layer``) and its torch import are here; its own quantities' derivations over the
batch are :mod:`.batchnorm_steps` (letters :mod:`.batchnorm_letters`, proofs
:mod:`.batchnorm_proofs`).  The per-sample chain of the other layers refuses a network with it
(:attr:`SUPPORTS`).  The array code's backward is the compact form

    dC/da_{i,j}^(l-1) = (g_{i,j} - mean_m g_{m,j} - xhat_{i,j} mean_m g_{m,j} xhat_{m,j}) / sigma_j,

g = dC/da^(l) gamma: SymPy derives exactly this form from the layer's formula in letters
over the samples, for every batch size n (:func:`general_identity` is 0), and it equals
SymPy's diff of the composed layer for a symbolic batch of 2 or 3 (:func:`compact_identity`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .base import LayerConfig, ParamSpec, ParseContext, torch_array
from .batchnorm_letters import compact_form, compact_identity, general_identity, letter_forms
from .mistakes import normalisation_mistakes
from .symbolic import ArrayOnlyLayer, GraphContext

__all__ = ["BatchNormConfig", "BatchNormLayer", "compact_form", "compact_identity",
           "general_identity", "letter_forms"]


@dataclass(frozen=True)
class BatchNormConfig(LayerConfig):
    kind = "batchnorm"
    KEYS: ClassVar[dict] = {"eps": 1e-5, "affine": True}
    READS_FLAT: ClassVar[bool] = False
    TORCH_MODULES: ClassVar[tuple[str, ...]] = ("BatchNorm1d", "BatchNorm2d")
    #: Node j of sample i reads every sample: the loss is the batch's C, not a sum of C_0.
    COUPLES_SAMPLES: ClassVar[bool] = True
    #: ``import`` holds the model's output with these modules in training mode.
    TORCH_TRAINING: ClassVar[bool] = True
    #: The batch-coupled derivations are a later step: array code, check --layer and import.
    SUPPORTS: ClassVar[frozenset[str]] = frozenset({"codegen", "check_function", "import"})

    eps: float = 1e-5
    affine: bool = True
    #: The shape of layer l - 1 (and of this layer): (n,), (C, L) or (C, H, W).
    in_shape: tuple[int, ...] = ()

    @property
    def shape(self) -> tuple[int, ...]:
        return self.in_shape

    @property
    def features(self) -> int:
        """The number of mu's: the nodes of a flat layer, the channels of a map."""
        return self.in_shape[0]

    @property
    def axes(self) -> tuple[int, ...]:
        """The array axes a mean runs over: the batch, and a map's positions."""
        return (0, *range(2, 1 + len(self.in_shape)))

    @classmethod
    def from_torch(cls, module, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """nn.BatchNorm1d/2d, as in training mode (the batch's statistics): gamma and beta
        are its weight and bias; its running statistics are not used."""
        params = {"gamma": torch_array(module.weight), "beta": torch_array(module.bias)} \
            if module.affine else {}
        return {"kind": cls.kind, "eps": float(module.eps), "affine": bool(module.affine)}, \
            params

    @classmethod
    def parse(cls, table: Mapping[str, Any], ctx: ParseContext) -> BatchNormConfig:
        table = cls.check_keys(table, ctx)
        shape = tuple(ctx.below_shape)
        if len(shape) > 3:
            raise ctx.error(f"a batchnorm reads a flat layer or a map, not shape {list(shape)}")
        return cls(ctx.index, math.prod(shape), ctx.number(table, "eps", positive=True),
                   ctx.boolean(table, "affine"), shape)

    def parameters(self, widths: tuple[int, ...]) -> tuple[ParamSpec, ...]:
        if not self.affine:
            return ()
        letters = "j" if len(self.in_shape) == 1 else "c"
        return (ParamSpec("gamma", "gamma", letters, (self.features,), "ones"),
                ParamSpec("beta", "beta", letters, (self.features,), "zeros"))

    def to_table(self) -> dict[str, Any]:
        return {"kind": self.kind, "eps": self.eps, "affine": self.affine}

    def reached(self, source: int, ks: set[int]) -> set[int]:
        """Within one sample, node j reads node j below (the drawing's edges)."""
        return {k for k in ks if k < self.width} if source == self.index - 1 else set()

    def composed_size(self, sizes: Mapping[int, int], spec) -> int:
        return 4 * sizes[self.index - 1] + 3

    def notation(self) -> list[tuple[str, str]]:
        return [(r"\mu_{j}^{(l)}, \sigma_{j}^{(l)}",
                 (r"a batchnorm's mean and $\sqrt{\mathrm{var} + \epsilon}$ of node $j$ over "
                 r"the batch (of channel $j$ over the batch and positions after a conv)")),
                (r"\gamma_{j}^{(l)}, \beta_{j}^{(l)}",
                 "scale and shift of node $j$ of a normalisation layer")]

    def backward_mistakes(self) -> tuple:
        return normalisation_mistakes(self.eps, self.axes, self.affine, "over the batch"
                                      + (" and the positions" if len(self.axes) > 1 else ""))

    def letter_derivation(self, node, spec, autodiff, spell=str):
        """gamma_j^(l), beta_j^(l) or the input a_j^(l-1) derived over the batch, in letters
        (:mod:`.batchnorm_steps`); None for any other node."""
        from .batchnorm_steps import batchnorm_derivation

        return batchnorm_derivation(self, node, spec, autodiff, spell)

    #: Why the report derives this layer in letters (after "Layer l ").
    LETTER_REASON: ClassVar[str] = (
        "normalises over the batch, so a sample's loss depends on every sample of the batch: "
        "the loss $C$ of the whole batch is no sum of independent per-sample losses, and the "
        "layer's derivations run over a batch of $n$ samples, with the sample's index in "
        "every name.")

    def letter_targets(self) -> list:
        """The nodes a report derives over the batch: gamma_0, beta_0 and the input node 0."""
        from ..notation import Node

        below = Node("x", None, *([0] * len(self.in_shape))) if self.index == 1 else \
            Node("a", self.index - 1, *([0] * len(self.in_shape)))
        own = [Node(k, self.index, 0) for k in ("gamma", "beta")] if self.affine else []
        return [*own, below]

    def letter_matrix_form(self, spec, autodiff, spell=str):
        """The batch form of the layer's backward (:mod:`.batchnorm_steps`)."""
        from .batchnorm_steps import batchnorm_matrix_form

        return batchnorm_matrix_form(self, spec, autodiff, spell)

    def letter_names(self, spec) -> str:
        """What :meth:`letter_derivation` derives, for a message."""
        j, l = "c" if len(self.in_shape) > 1 else "j", self.index
        below = f"x_{j}" if l == 1 else f"a_{j}^({l - 1})"
        return (f"gamma_{j}^({l}), beta_{j}^({l}) and " if self.affine else "") + below

    def describe(self) -> str:
        return f"batchnorm, eps {self.eps:g}" + ("" if self.affine else ", no affine")

    def _per_feature(self, p):
        """gamma or beta shaped to broadcast against a (batch, C, ...) array."""
        return p.reshape((-1,) + (1,) * (len(self.in_shape) - 1))

    def reference(self, ops, params: dict, outputs: dict):
        """torch's own F.batch_norm in training mode; under JAX (and for one value per node,
        which torch refuses) the batch's mean and biased variance written out.  The nodes stay
        flat between layers (C order)."""
        a = outputs[self.index - 1]
        a = a.reshape((a.shape[0], *self.in_shape))
        gamma, beta = (params["gamma"], params["beta"]) if self.affine else (None, None)
        if ops.name == "torch" and a.shape[0] * math.prod(self.in_shape[1:]) > 1:
            out = ops.xp.nn.functional.batch_norm(a, None, None, gamma, beta, training=True,
                                                  eps=self.eps)
        else:
            mu = a.mean(self.axes, keepdims=True)
            out = (a - mu) / ops.xp.sqrt(((a - mu) ** 2).mean(self.axes, keepdims=True)
                                         + self.eps)
            if self.affine:
                out = self._per_feature(gamma) * out + self._per_feature(beta)
        return out.reshape((out.shape[0], -1))

    def build(self, ctx: GraphContext) -> BatchNormLayer:
        return BatchNormLayer(self, ctx)


class BatchNormLayer(ArrayOnlyLayer):
    """The layer's nodes and its array code; no chain-rule views (see the module's doc)."""

    kind = "batchnorm"

    def array_code(self, code) -> dict:
        """mu and sigma per node (per channel: over the batch and the positions), xhat, the
        affine map; backward the compact form, g = dA gamma:
        dA^(l-1) = (g - mean(g) - Xhat mean(g Xhat)) / Sigma, dgamma = sum of dA Xhat,
        dbeta = sum of dA, every mean and sum over the batch (and positions)."""
        c, l = self.config, self.index
        axes = c.axes
        below, x = f"A{l - 1}", f"Xhat{l}"
        per = f"[:, {', '.join(['None'] * (len(c.in_shape) - 1))}]" if len(c.in_shape) > 1 \
            else ""  # gamma, beta per channel against (batch, C, ...)
        positions = "".join(f" * {n}" for n in c.in_shape[1:])

        over = axes[0] if len(axes) == 1 else axes

        def mean(e: str, like: str = x) -> str:  # n: the batch size (times the positions)
            n = f"({like}.shape[0]{positions})" if positions else f"{like}.shape[0]"
            return f"{code.forms.total.format(x=e, axis=over)} / {n}"

        what = "the batch's mean of node j" if len(axes) == 1 else \
            "the mean of channel j over the batch and the positions"
        forward = [f"Mu{l} = {mean(below, below)}  # mu_j: {what}",
                   (f"Sigma{l} = ({mean(f'({below} - Mu{l})**2', below)} + {c.eps!r}) ** 0.5"
                   "  # sqrt(var_j + eps), the biased variance"),
                   f"{x} = ({below} - Mu{l}) / Sigma{l}"]
        grad = f"dA{l}"
        if c.affine:
            gamma, beta = code.param("gamma"), code.param("beta")
            forward.append(f"A{l} = {x} * {gamma}{per} + {beta}{per}")
            total = code.forms.batch_total
            backward = [f"dgamma{l} = {total.format(x=f'{grad} * {x}', axis=over)}",
                        f"dbeta{l} = {total.format(x=grad, axis=over)}"]
            scale, reads = f"{gamma}{per} * ", [x, f"Sigma{l}", gamma]
        else:
            forward.append(f"A{l} = {x}")
            backward, scale, reads = [], "", [x, f"Sigma{l}"]
        # g = dC/da^(l) gamma, and gamma is one number per node (channel): out of the means
        back = f"{scale}({grad} - {mean(grad)} - {x} * {mean(f'{grad} * {x}')}) / Sigma{l}"
        return {"forward": forward, "backward": backward, "passes": {l - 1: back},
                "saved": [x, f"Sigma{l}"], "reads": reads}
