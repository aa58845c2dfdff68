"""``batchnorm``: a_{i,j}^(l) = gamma_j xhat_{i,j} + beta_j, training mode, with
xhat_{i,j} = (a_{i,j}^(l-1) - mu_j)/sigma_j, mu_j the batch's mean of node j and
sigma_j = sqrt(var_j + eps), var_j its biased variance; after a conv layer one mu and sigma
per channel, over the batch and the positions (torch's BatchNorm1d/2d in training mode).

Parameters gamma{l} and beta{l} of shape (n,), or (C,) after a conv, starting at 1 and 0
(``affine = false``: none).

Unlike every other kind, node j of sample i depends on every sample of the batch (through
mu_j and sigma_j), so the loss is no sum of independent per-sample losses C_0.  This
version builds the layer's array code (all three targets), its reference forward, its
backward's usual mistakes (``check --layer``) and its torch import; the chain-rule
derivations of a batch (``derive``, ``report``, ``check --formula``) refuse a network with
it (:attr:`SUPPORTS`).  The array code's backward is the compact form

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

import sympy

from .base import LayerConfig, ParamSpec, ParseContext, torch_array
from .derived import LetterForms
from .formula import exact
from .letters import N, SumJ, SumK, slot
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


def compact_identity(n: int, eps: float = 1e-5) -> list[sympy.Expr]:
    """SymPy's diff of a batch of ``n`` samples' batchnorm of one node against the compact
    form, for every sample i and m: the list of differences (each simplifies to 0).

    The loss reads every output through g_m = dC/da_m^(l) (symbols), so dC/dx_i =
    sum_m g_m d out_m / d x_i, out_m = gamma (x_m - mu)/sigma + beta, mu and sigma of all x."""
    xs = sympy.symbols(f"x0:{n}", real=True)
    gs = sympy.symbols(f"g0:{n}", real=True)
    gamma, beta = sympy.symbols("gamma beta", real=True)
    mu = sympy.Add(*xs) / n
    sigma = sympy.sqrt(sympy.Add(*[(x - mu) ** 2 for x in xs]) / n + exact(eps))
    outs = [gamma * (x - mu) / sigma + beta for x in xs]
    xhat = [(x - mu) / sigma for x in xs]
    G = [g * gamma for g in gs]
    mean_g = sympy.Add(*G) / n
    mean_gx = sympy.Add(*[gm * xm for gm, xm in zip(G, xhat)]) / n
    out = []
    for i, x in enumerate(xs):
        chain = sympy.Add(*[g * sympy.diff(o, x) for g, o in zip(gs, outs)])
        compact = (G[i] - mean_g - xhat[i] * mean_gx) / sigma
        out.append(chain - compact)
    return out


def letter_forms(affine: bool = True, eps: float = 1e-5) -> LetterForms:
    """One node's batchnorm over the batch, in letters: j, k and m run over the *samples*
    (n of them), gamma and beta are the node's own (no letter).  SymPy derives the
    vector-Jacobian product sum_j G_j d out_j / d in_m from it (:mod:`.derived`), for any n."""
    in_j, in_k = slot("in", letters="j"), slot("in", letters="k")
    mu, sigma = slot("named", "mu"), slot("named", "sigma")
    xhat = slot("named", "xhat", "j")
    named = {mu: SumK(in_k) / N,
             sigma: sympy.sqrt(SumK((in_k - mu) ** 2) / N + exact(eps)),
             xhat: (in_j - mu) / sigma}
    out = slot("param", "gamma") * xhat + slot("param", "beta") if affine else xhat
    return LetterForms(out, named, ("in",), {"gamma": "", "beta": ""} if affine else {})


def compact_form(affine: bool = True) -> sympy.Expr:
    """The array code's backward in the same letters (m the sample it is passed to):
    (g_m - sum_j g_j / n - xhat_m sum_j g_j xhat_j / n) / sigma, g = G gamma."""
    gamma = slot("param", "gamma") if affine else sympy.S.One
    grad_j, grad_m = slot("grad", letters="j"), slot("grad", letters="m")
    xhat_j, xhat_m = slot("named", "xhat", "j"), slot("named", "xhat", "m")
    sigma = slot("named", "sigma")
    return gamma * (grad_m - SumJ(grad_j) / N - xhat_m * SumJ(grad_j * xhat_j) / N) / sigma


def general_identity(affine: bool = True) -> sympy.Expr:
    """SymPy's vector-Jacobian product of :func:`letter_forms` minus :func:`compact_form`,
    expanded: 0 for every batch size n (the proven identity of the array code)."""
    return sympy.expand(letter_forms(affine).vjp["in"] - compact_form(affine))
