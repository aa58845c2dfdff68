"""The proofs of the rnn layer's derivations through time (:mod:`.rnn_steps`).

A result is held against SymPy's diff of C_0 composed through the unrolled layer (the loss
reads each output node through dC_0/da, a symbol) on the smallest shapes -- 2 nodes, 1 input
and at most 3 steps, or the spec's own layer when it is that small -- and against the spec's
layer (its activation, T and widths) differentiated by JAX or PyTorch at a random sequence,
the deltas of the result worked out by the printed recursion; without either library,
30-digit differences of the written-out layer.
"""

from __future__ import annotations

import dataclasses

import mpmath
import numpy as np
import sympy

from ..activations import ActivationPrime, ElementwiseActivation, X
from ..notation import Node
from .letter_numbers import evaluate, reference_gradients
from .symbolic import activation_function

__all__ = ["layer_gradients", "random_layer", "rnn_proofs", "scalar_deltas"]

_SMALL = {"units": 2, "n_in": 1, "steps": 3}


def rnn_proofs(r, node, derivation, spec, autodiff, build) -> list:
    """(what, check) pairs for the result of ``derivation`` (``r``: its Unrolled names), which
    also become its judges when the composed proof runs on the spec's own layer;
    ``build(config, node)`` derives a layer's weight without proofs."""
    c = r.config
    small = c.units <= _SMALL["units"] and c.n_in <= _SMALL["n_in"] and \
        c.steps <= _SMALL["steps"]
    truth = f"{autodiff.name} autodiff of the spec's layer at three random sequences" \
        if autodiff.name else "30-digit differences of the spec's layer at three random " \
        "sequences"
    shapes = "the spec's layer" if small else (
        f"the same derivation on smaller shapes ({min(c.units, _SMALL['units'])} node(s), "
        f"1 input, {min(c.steps, _SMALL['steps'])} step(s))")

    def composed(result):
        if small:
            return _composed(r, node, result)
        config = dataclasses.replace(c, units=min(c.units, _SMALL["units"]),
                                     n_in=_SMALL["n_in"], steps=min(c.steps, _SMALL["steps"]))
        last = (config.units - 1, 0 if node.kind == "w" else config.units - 1)
        shrunk = Node(node.kind, node.layer, *(min(i, m) for i, m in zip(node.indices, last)))
        d, r2 = build(config, shrunk, str, spec)
        return _composed(r2, shrunk, d.result)

    loss = r.names.text[r.C0]  # C_0, or the batch's C below a batchnorm
    proofs = [(f"SymPy's diff of {loss} composed through the unrolled layer, for {shapes}",
               composed),
              (truth, lambda result: _numeric(r, node, result, spec, autodiff))]
    derivation.judges = proofs if small else proofs[1:]  # a smaller copy holds its own result
    return proofs


def _explicit(expr: sympy.Expr) -> sympy.Expr:
    """Activations and their derivatives written out (tanh, Max, Heaviside), for numbers."""
    return expr.replace(lambda e: isinstance(e, (ElementwiseActivation, ActivationPrime)),
                        lambda e: type(e).explicit(e.args[0]))


def _deltas(r) -> dict:
    """delta_{t,j} for every step and node in symbols, by the printed recursion from t = T
    down."""
    out: dict = {}
    for t in range(r.T, 0, -1):
        for j in range(r.n):
            expr = r.delta_def(t, j).doit()
            out[(t, j)] = expr.xreplace({r.delta[t + 1, i]: out[(t + 1, i)]
                                         for i in range(r.n) if (t + 1, i) in out})
    return out


def _composed(r, node, result: sympy.Expr) -> bool:
    T, n = r.T, r.n
    h = {(0, k): sympy.S.Zero for k in range(n)}
    z = {}
    for t in range(1, T + 1):
        for j in range(n):
            z[(t, j)] = r.z_def(t, j).doit().xreplace(
                {r.h[t - 1, k]: h[(t - 1, k)] for k in range(n)})
            h[(t, j)] = r.g(z[(t, j)])
    reads = [(r.out[t, j], h[(t, j)]) for t in range(1, T + 1) for j in range(n)] \
        if r.config.sequence else [(r.out[j], h[(T, j)]) for j in range(n)]
    loss = sympy.Add(*[e * a for e, a in reads])
    truth = sympy.diff(loss, r.param(node))
    deltas = {r.delta[key]: value for key, value in _deltas(r).items()}
    deltas.update({r.dC_dh[t, j]: r.dh(t, j).doit().xreplace(deltas)
                   for t in range(1, T + 1) for j in range(n)})
    nodes = {**{r.z[key]: value for key, value in z.items()},
             **{r.h[key]: value for key, value in h.items()}}
    derived = result.xreplace(deltas).xreplace(nodes)
    rng = np.random.default_rng(3)
    for _ in range(2):
        point = {a: sympy.Float(rng.uniform(-1, 1), 30)
                 for a in (truth - derived).atoms(sympy.Indexed)}
        if abs(_explicit((truth - derived).xreplace(point)).evalf(30)) > 1e-20:
            return False
    return True


def _numeric(r, node, result: sympy.Expr, spec, autodiff) -> bool:
    """The result, its deltas worked out by the printed recursion, at three random sequences
    against the spec's layer differentiated: weights scaled by 1/sqrt(fan-in) so that a long
    sequence neither explodes nor vanishes, the last point with inputs and biases positive
    so that a relu's nodes are not all dead where the others left them so."""
    c, T, n = r.config, r.T, r.n
    for seed in range(3):
        params, xs = random_layer(c, np.random.default_rng(5 + seed), positive=seed == 2)
        E = np.random.default_rng(9 + seed).standard_normal((1, T, n) if c.sequence else (1, n))
        entry, (H, Z, _) = layer_gradients(c, spec, autodiff, params, xs[:1], E)
        arrays = scalar_deltas(r, params, xs[0], H[0], Z[0], E[0])
        got = float(np.ravel(evaluate(result, arrays, {}, _numpy_activations(r)))[0])
        if np.isnan(got):
            raise IndexError(f"it reads a step outside 1..{T} (such as delta_{T + 1} or x_0)")
        want = entry({"u": "U", "w": "W", "b": "b"}[node.kind], node.indices)
        if not np.isclose(got, want, rtol=1e-9, atol=1e-12):
            return False
    return True


def random_layer(c, rng, positive: bool = False, batch: int = 1) -> tuple[dict, np.ndarray]:
    """Weights uniform in +-1/sqrt(fan-in) (as nn.RNN starts them) and a batch of sequences;
    ``positive``: inputs, W and b positive."""
    low = 0.0 if positive else -1.0
    params = {"W": rng.uniform(low, 1, (c.units, c.n_in)) / np.sqrt(c.n_in),
              "U": rng.uniform(-1, 1, (c.units, c.units)) / np.sqrt(c.units)}
    if c.bias:
        params["b"] = rng.uniform(0.1 if positive else -0.5, 0.5, c.units)
    xs = rng.uniform(0.1, 1.5, (batch, c.steps, c.n_in)) if positive else \
        rng.standard_normal((batch, c.steps, c.n_in))
    return params, xs


def scalar_deltas(r, params, x, H, Z, E) -> dict:
    """One sample's numbers under the names of ``r`` (x (T, n_in), H and Z (T + 1, n), E the
    gradient from above), with dC_0/dh_{t,j} and delta_{t,j} worked out by the printed scalar
    recursion from t = T down, every node j at once (``arrays[r.delta]``, (T + 2, n))."""
    c, T, n = r.config, r.T, r.n
    out = E if not c.sequence else np.vstack([np.zeros((1, n)), E])
    arrays = {r.h: H, r.z: Z, r.x: np.vstack([np.zeros((1, c.n_in)), x]), r.u: params["U"],
              r.w: params["W"], r.out: out, r.delta: np.zeros((T + 2, n)),
              r.dC_dh: np.zeros((T + 2, n))}
    if c.bias:
        arrays[r.b] = params["b"]
    functions = _numpy_activations(r)
    for t in range(T, 0, -1):
        arrays[r.dC_dh][t] = np.ravel(evaluate(r.dh(t), arrays, {r.j: 0, r.i: 1},
                                               functions))
        arrays[r.delta][t] = np.ravel(evaluate(r.delta_def(t), arrays, {r.j: 0, r.i: 1},
                                              functions))
    # rows no step has (delta and dC_0/dh at 0 and T + 1, x, z and the output's at 0) are
    # NaN, so that a formula reading one is found, never read as 0
    for key in (r.delta, r.dC_dh):
        arrays[key][[0, T + 1]] = np.nan
    for key in (r.x, r.z) + ((r.out,) if c.sequence else ()):
        arrays[key] = arrays[key].astype(float)  # a copy: Z is the caller's
        arrays[key][0] = np.nan
    return arrays


def _numpy_activations(r) -> dict:
    """g and g' of the layer as NumPy functions, by class."""
    g = r.g
    prime = type(sympy.diff(g(X), X))
    return {cls: sympy.lambdify(X, _explicit(cls(X)), "numpy") for cls in (g, prime)}


def layer_gradients(c, spec, autodiff, params, xs, G):
    """For the loss sum(G o out) of the spec's rnn layer ``c`` on the batch ``xs`` (batch,
    T, n_in): ``entry(key, index)`` the truth of one gradient entry (key W, U, b or X), by
    autodiff (JAX, PyTorch) or 30-digit differences; and the forward's H, Z (batch, T + 1,
    n; H_0 = 0) and g' as a NumPy function."""
    act = c_activation(c, spec)
    g = sympy.lambdify(X, _explicit(act(X)), "numpy")
    gprime = sympy.lambdify(X, _explicit(sympy.diff(act(X), X)), "numpy")
    batch, T, n = xs.shape[0], c.steps, c.units
    H, Z = np.zeros((batch, T + 1, n)), np.zeros((batch, T + 1, n))
    for t in range(1, T + 1):
        Z[:, t] = xs[:, t - 1] @ params["W"].T + H[:, t - 1] @ params["U"].T \
            + params.get("b", 0)
        H[:, t] = g(Z[:, t])
    if autodiff.name is not None:
        grads = reference_gradients(c, spec, autodiff,
                                    {**params, "X": xs.reshape(xs.shape[0], -1)}, G, "X")
        grads["X"] = grads["X"].reshape(xs.shape)

        def entry(key, index):
            return grads[key][tuple(index)]
    else:
        def entry(key, index):
            return _differences(c, spec, params, xs, G, key, tuple(index))
    return entry, (H, Z, gprime)


def c_activation(c, spec):
    """The SymPy class of the layer's activation (tanh, relu, a spec's own, ...)."""
    return activation_function(c.activation.name, c.activation.params, c.index,
                               dict(spec.activations))


def _differences(c, spec, params, xs, G, key, index) -> float:
    """Central differences at 30 digits of sum(G o out) over the written-out layer."""
    mpmath.mp.dps = 30
    g = sympy.lambdify(X, _explicit(c_activation(c, spec)(X)), "mpmath")
    step = mpmath.mpf("1e-12")

    def loss(shift):
        P = {k: [[mpmath.mpf(float(v)) for v in row] for row in np.atleast_2d(a)]
             for k, a in params.items()}
        xv = [[[mpmath.mpf(float(v)) for v in row] for row in sample] for sample in xs]
        if key == "X":
            xv[index[0]][index[1]][index[2]] += shift
        elif key == "b":
            P["b"][0][index[0]] += shift
        else:
            P[key][index[0]][index[1]] += shift
        total = mpmath.mpf(0)
        for b, sample in enumerate(xv):
            h = [mpmath.mpf(0)] * c.units
            for t in range(c.steps):
                h = [g(mpmath.fsum(P["W"][j][k] * sample[t][k] for k in range(c.n_in))
                       + mpmath.fsum(P["U"][j][k] * h[k] for k in range(c.units))
                       + (P["b"][0][j] if "b" in P else 0)) for j in range(c.units)]
                if c.sequence or t == c.steps - 1:
                    e = G[b, t] if c.sequence else G[b]
                    total += mpmath.fsum(h[j] * float(e[j]) for j in range(c.units))
        return total

    return float((loss(step) - loss(-step)) / (2 * step))
