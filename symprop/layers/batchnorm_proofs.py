"""The proofs of the batchnorm's derivations over the batch (:mod:`.batchnorm_steps`).

A result in letters is held against SymPy's diff of the layer composed for a symbolic batch
of 2 and 3 samples, and against the spec's own layer (its eps; torch's F.batch_norm in training
mode, or JAX) differentiated by autodiff at a random batch, or, without either installed,
high-precision differences of the written-out layer; the batch form against autodiff, for
every node at once.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import sympy

from .letter_numbers import evaluate, reference_gradients

__all__ = ["layer_proofs", "matrix_proof"]

_SAMPLES = 5  # the random batch of the numeric proofs


# ------------------------------------------------------------------------- proofs
def layer_proofs(b, spec, what: str, autodiff) -> list:
    """(what, check) pairs for a result of ``b`` (a batchnorm_steps._Batch); ``autodiff``
    (symprop.letters_derivation.Autodiff) names JAX, PyTorch or None (differences)."""
    backend = autodiff.name
    truth = f"{backend} autodiff of the spec's layer at a random batch" if backend else \
        "high-precision differences of the spec's layer at a random batch"
    return [("SymPy's diff of the composed layer for a symbolic batch of 2 and 3 samples",
             lambda r: all(_composed(b, what, r, size) for size in (2, 3))),
            (truth, lambda r: _numeric(b, spec, what, r, autodiff))]


def _composed(b, what: str, result: sympy.Expr, size: int) -> bool:
    """The layer written out for ``size`` samples, the loss reading output m through
    g_m = dC/da_m^(l): SymPy's diff against the result, for the first and last sample."""
    xs = [b.a_in[k] for k in range(size)]
    mu = sympy.Add(*xs) / size
    sigma = sympy.sqrt(sympy.Add(*[(x - mu) ** 2 for x in xs]) / size + b.eps)
    xhat = [(x - mu) / sigma for x in xs]
    outs = [b.gamma * h + b.beta for h in xhat] if b.config.affine else xhat
    loss = sympy.Add(*[b.g[k] * o for k, o in zip(range(size), outs)])
    wrt = {"gamma": [b.gamma], "beta": [b.beta], "input": [xs[0], xs[-1]]}[what]
    unrolled = result.subs(b.n, size).doit()
    values = {b.mu: mu, b.sigma: sigma, **{b.xhat[k]: h for k, h in enumerate(xhat)},
              **{b.a_out[k]: o for k, o in enumerate(outs)}}
    for k, by in zip((0, size - 1), wrt):
        derived = unrolled.subs(b.i, k).xreplace(values)
        if sympy.simplify(sympy.diff(loss, by) - derived) != 0:
            return False
    return True


def _numeric(b, spec, what: str, result: sympy.Expr, autodiff) -> bool:
    """The result evaluated on a random batch against the spec's own layer differentiated
    (autodiff, or differences at 30 digits): node or channel j, every sample (and
    position)."""
    c = b.config
    rng = np.random.default_rng(7)
    A = rng.standard_normal((_SAMPLES, c.width))
    G = rng.standard_normal((_SAMPLES, c.width))
    params = {"gamma": rng.uniform(0.5, 1.5, c.features), "beta": rng.standard_normal(
        c.features)} if c.affine else {}
    channel = (slice(None), b.j)
    values = A.reshape((_SAMPLES, *c.in_shape))[channel].ravel()
    grads = G.reshape((_SAMPLES, *c.in_shape))[channel].ravel()
    if autodiff.name is None:
        truth = _differences(values, grads, params, b.j, c, what)
    else:
        truth = _autodiff(autodiff, spec, c, A, G, params, what)
        truth = truth.reshape((_SAMPLES, *c.in_shape))[channel].ravel() \
            if what == "input" else truth[b.j]
    mu = values.mean()
    sigma = math.sqrt(((values - mu) ** 2).mean() + c.eps)
    gamma = params.get("gamma", [1.0] * c.features)[b.j]
    beta = params.get("beta", [0.0] * c.features)[b.j]
    xhat = (values - mu) / sigma
    numbers = {b.g: grads, b.xhat: xhat, b.sigma: sigma, b.gamma: gamma, b.n: values.size,
               b.a_in: values, b.a_out: gamma * xhat + beta, b.mu: mu, b.beta: beta,
               b.eps: c.eps, b.i: np.arange(values.size)[:, None],
               b.m: np.arange(values.size)[None, :]}
    got = evaluate(result, numbers, {b.i: 0, b.m: 1})
    return bool(np.allclose(np.ravel(got), np.ravel(truth), rtol=1e-9, atol=1e-12))


def _autodiff(autodiff, spec, c, A, G, params, what: str) -> np.ndarray:
    """dsum(G o out)/d(input, gamma or beta) of the spec's layer by JAX or PyTorch."""
    grads = reference_gradients(c, spec, autodiff, {"A": A, **params}, G, "A")
    return grads[{"input": "A"}.get(what, what)]


def _differences(values, grads, params, j: int, c, what: str) -> np.ndarray:
    """Central differences at 30 digits of sum_m g_m out_m over one node's (channel's)
    values, the layer written out."""
    mpmath.mp.dps = 30
    gamma = mpmath.mpf(params["gamma"][j]) if c.affine else mpmath.mpf(1)
    beta = mpmath.mpf(params["beta"][j]) if c.affine else mpmath.mpf(0)
    eps, h = mpmath.mpf(c.eps), mpmath.mpf("1e-12")

    def loss(xs, gamma=gamma, beta=beta):
        mu = mpmath.fsum(xs) / len(xs)
        sigma = mpmath.sqrt(mpmath.fsum((x - mu) ** 2 for x in xs) / len(xs) + eps)
        return mpmath.fsum(g * (gamma * (x - mu) / sigma + beta) for g, x in zip(grads, xs))

    xs = [mpmath.mpf(float(v)) for v in values]
    if what == "gamma":
        return np.array(float((loss(xs, gamma + h) - loss(xs, gamma - h)) / (2 * h)))
    if what == "beta":
        return np.array(float((loss(xs, beta=beta + h) - loss(xs, beta=beta - h)) / (2 * h)))

    def shifted(k, d):
        return [x + d if q == k else x for q, x in enumerate(xs)]

    return np.array([float((loss(shifted(k, h)) - loss(shifted(k, -h))) / (2 * h))
                     for k in range(len(xs))])


def matrix_proof(config, spec, equations, mats, rows, autodiff) -> bool:
    rng = np.random.default_rng(11)
    c = config
    A = rng.standard_normal((_SAMPLES, c.width))
    Gv = rng.standard_normal((_SAMPLES, c.width))
    params = {"gamma": rng.uniform(0.5, 1.5, c.features),
              "beta": rng.standard_normal(c.features)} if c.affine else {}

    def by_rows(M):  # (batch, C, ...) -> (batch * positions, C)
        M = M.reshape((_SAMPLES, *c.in_shape))
        return np.moveaxis(M, 1, -1).reshape((-1, c.features))

    a, g = by_rows(A), by_rows(Gv)
    sigma = np.sqrt(a.var(axis=0) + c.eps)
    xhat = (a - a.mean(axis=0)) / sigma
    numbers = {mats["G"]: sympy.Matrix(g), mats["X"]: sympy.Matrix(xhat),
               mats["1"]: sympy.ones(a.shape[0], 1),
               mats["D"]: sympy.diag(*[float(v) for v in params.get(
                   "gamma", np.ones(c.features)) / sigma])}
    backend = autodiff.name
    for lhs, rhs in equations:
        what = {"dA": "input", "dgamma": "gamma", "dbeta": "beta"}[
            next(k for k, v in mats.items() if v == lhs)]
        got = np.array(rhs.xreplace(numbers).subs(rows, a.shape[0]).doit().evalf(),
                       dtype=float)
        if backend is not None:
            truth = _autodiff(autodiff, spec, c, A, Gv, params, what)
        else:
            truth = np.array([_differences(a[:, j], g[:, j], params, j, c, what)
                              for j in range(c.features)]).T
            truth = truth if what == "input" else truth.ravel()
        want = by_rows(truth) if (what == "input" and backend) else truth
        if not np.allclose(np.ravel(got), np.ravel(want), rtol=1e-9, atol=1e-12):
            return False
    return True
