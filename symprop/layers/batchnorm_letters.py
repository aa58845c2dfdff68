"""batchnorm in letters over the batch: the layer's formula that SymPy differentiates
(:func:`letter_forms`), the array code's compact backward (:func:`compact_form`) and the
identities that prove one equal to the other (:func:`general_identity` for every batch size,
:func:`compact_identity` for a symbolic batch of n)."""

from __future__ import annotations

import sympy

from .derived import LetterForms
from .formula import exact
from .letters import N, SumJ, SumK, slot

__all__ = ["compact_form", "compact_identity", "general_identity", "letter_forms"]


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
