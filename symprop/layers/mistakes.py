"""The usual mistakes in a hand-written backward, as each kind lists them for ``check --layer``
(:meth:`LayerConfig.backward_mistakes`): what the hint says, and the gradients with the
mistake made, from the point where the layer is checked (its parameters, A, dOut, the true
gradients, and the truth re-run with a changed table: ``point.rerun({"padding": 0}, A=...)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .maps import axes_text

__all__ = ["BackwardMistake", "activation_mistakes", "conv_mistakes", "norm_backward",
           "normalisation_mistakes", "pool_backward"]


@dataclass(frozen=True)
class BackwardMistake:
    """One usual mistake: ``words`` (the hint printed when the user's array equals the
    mistake's) and ``make(point)`` -> {key: that array} for the keys it changes."""

    words: str
    make: Callable[[Any], dict[str, np.ndarray]]


def activation_mistakes(name: str, delta: str, argument: str) -> list[BackwardMistake]:
    """The usual mistakes with a layer's activation ``name`` (a dense layer's, or an
    activation layer's), most common first; ``delta`` names what dOut times g' is (Delta,
    or dA), ``argument`` what g reads (z, or A).  Each is the truth re-run with the
    activation the identity, dOut changed."""
    rows = []
    if name == "softmax":
        rows.append(BackwardMistake(
            "softmax's Jacobian taken as diagonal, dOut_j a_j (1 - a_j) as for a sigmoid: "
            f"every output depends on every {argument}, "
            f"{delta}_j = a_j (dOut_j - sum_m dOut_m a_m)",
            lambda pt: pt.rerun({"activation": "identity"},
                                dOut=pt.dOut * pt.output * (1 - pt.output))))
    if name != "identity":
        rows.append(BackwardMistake(
            f"the activation's derivative is left out: {delta} = dOut, not dOut * {name}'"
            f"({argument})",
            lambda pt: pt.rerun({"activation": "identity"})))
    return rows


def conv_mistakes(P: tuple[int, ...], k: tuple[int, ...]) -> tuple[BackwardMistake, ...]:
    """The usual mistakes in a conv layer's input gradient, of padding ``P`` and kernel ``k``:
    the padding slicing of course solutions, and the "valid" correlation for the "full"."""
    rows = [BackwardMistake(
        "dA is a \"valid\" correlation of Delta with the flipped kernel; it is the "
        "\"full\" one: Delta padded with kernel-1 zeros on each side (then the padding "
        "dropped)", lambda pt: {"A": _crop(_padded_gradient(pt, P), [x - 1 for x in k])})]
    if set(P) == {0}:
        rows.insert(0, BackwardMistake(
            "empty: with padding 0, slicing the padding off as [P:-P] keeps nothing "
            "(x[0:-0] is x[0:0]); slice [P:P+H] instead",
            lambda pt: {"A": pt.truth["A"][(..., *[slice(0, 0)] * len(P))]}))
    else:
        rows[:0] = [BackwardMistake(
            "the padding is not removed: this is the gradient of the padded input; drop "
            f"the first and last {axes_text(P)} of each axis",
            lambda pt: {"A": _padded_gradient(pt, P)}), BackwardMistake(
            "the padding is removed twice: the gradient of the padded input, cropped "
            "once, is already dC/dA", lambda pt: {"A": _crop(pt.truth["A"], P)})]
    return tuple(rows)


def _padded_gradient(point, padding) -> np.ndarray:
    """dC/d(the zero-padded input): the truth re-run with padding 0 on the padded input."""
    A = np.pad(point.A, [(0, 0), (0, 0), *[(p, p) for p in padding]])
    return point.rerun({"padding": 0}, A=A)["A"]


def _crop(G: np.ndarray, widths) -> np.ndarray:
    return G[(..., *[slice(w, n - w) for w, n in zip(widths, G.shape[2:])])]


def pool_backward(config, A: np.ndarray, dOut: np.ndarray, *, assign: str | None = None,
                  every_max: bool = False) -> np.ndarray:
    """dC/dA of a pooling layer written as course solutions write it, a loop over windows:
    each window's share of dOut added (the truth), or assigned (``assign="window"``: the
    window's whole slice, ``"entry"``: the entries that get a share), with a max window's
    ties to the first maximum (row-major) or to ``every_max``."""
    dA = np.zeros_like(A)
    for position in np.ndindex(*config.out_shape[1:]):
        window = (slice(None), slice(None), *(slice(p * s, p * s + k) for p, s, k in
                                              zip(position, config.stride, config.kernel)))
        values = A[window].reshape(*A.shape[:2], -1)
        if config.REDUCE == "max":
            share = values == values.max(-1, keepdims=True) if every_max else (
                np.arange(values.shape[-1]) == values.argmax(-1)[..., None])
            share = share.astype(A.dtype)
        else:
            share = np.full(values.shape, 1 / math.prod(config.kernel))
        part = (share * dOut[(slice(None), slice(None), *position)][..., None]).reshape(
            A[window].shape)
        target = dA[window]
        if assign == "window":
            target[...] = part
        elif assign == "entry":
            target[...] = np.where(share.reshape(part.shape) > 0, part, target)
        else:
            target += part
    return dA


def norm_backward(x: np.ndarray, dOut: np.ndarray, gamma, eps: float,
                  axis: int | tuple[int, ...], *,
                  mean: bool = True, variance: bool = True, ddof: int = 0
                  ) -> dict[str, np.ndarray]:
    """A normalisation's backward as course notes write it, over ``axis`` (layernorm: the
    nodes, batchnorm: the batch): dA = (g - mean(g) - xhat mean(g xhat)) / sigma with
    g = dOut gamma, the mean's term or the variance's left out on request, the variance
    divided by n - ``ddof``; and dgamma = the sum over the samples of dOut xhat."""
    mu = x.mean(axis, keepdims=True)
    sigma = np.sqrt(x.var(axis, ddof=ddof, keepdims=True) + eps)
    xhat = (x - mu) / sigma
    g = dOut * _per_channel(gamma, x)
    dA = g - g.mean(axis, keepdims=True) if mean else g
    if variance:
        dA = dA - xhat * (g * xhat).mean(axis, keepdims=True)
    return {"A": dA / sigma, "gamma": (dOut * xhat).sum(_param_axes(x))}


def _per_channel(gamma, x: np.ndarray):
    """gamma shaped to broadcast against ``x``: per node of a flat layer, per channel of a
    map (batch, C, ...)."""
    gamma = np.asarray(gamma)
    return gamma.reshape(-1, *[1] * (x.ndim - 2)) if x.ndim > 2 and gamma.ndim else gamma


def _param_axes(x: np.ndarray) -> tuple[int, ...]:
    """The axes a per-node (per-channel) parameter's gradient sums over: all but the node's."""
    return (0,) if x.ndim == 2 else tuple(a for a in range(x.ndim) if a != 1)


def normalisation_mistakes(eps: float, axis: int | tuple[int, ...], affine: bool, where: str
                           ) -> tuple[BackwardMistake, ...]:
    """The usual mistakes of a layernorm's or batchnorm's backward, normalising ``axis``
    (``where`` names it: "over the nodes", "over the batch")."""
    def made(**kwargs):
        return lambda pt: norm_backward(pt.A, pt.dOut, pt.params.get("gamma", 1.0), eps, axis,
                                        **kwargs)
    rows = [BackwardMistake("mu and sigma are treated as constants: dA = g / sigma, g = dOut "
                            "gamma, misses - mean(g) / sigma and - xhat mean(g xhat) / sigma, "
                            "the means taken " + where + " (every input reaches every output "
                            "through them)", made(mean=False, variance=False)),
            BackwardMistake("the variance's dependence on the input is left out: dA misses "
                            "- xhat mean(g xhat) / sigma, g = dOut gamma, the mean taken "
                            + where, made(variance=False)),
            BackwardMistake("the mean's dependence on the input is left out: dA misses "
                            "- mean(g) / sigma, g = dOut gamma, the mean taken " + where,
                            made(mean=False)),
            BackwardMistake("the unbiased variance (divided by n - 1) where the biased one "
                            "(divided by n) belongs", made(ddof=1))]
    if affine:
        rows.append(BackwardMistake(
            "dgamma without xhat: dgamma_j = sum of dOut_j xhat_j, not of dOut_j",
            lambda pt: {"gamma": pt.dOut.sum(_param_axes(pt.dOut))}))
    return tuple(rows)
