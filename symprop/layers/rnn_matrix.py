"""The rnn layer's backward through time in the matrices of the batch form (seed 001): the
samples are the rows, one matrix per step, and the recursion runs from t = T back to 1.

    Delta_T = G_T o g'(Z_T),   Delta_t = (G_t + Delta_(t+1) U) o g'(Z_t),
    dC/dU = sum_(t=2..T) Delta_t^T H_(t-1),  dC/dW = sum_t Delta_t^T X_t,
    dC/db = sum_t 1^T Delta_t,  dC/dX_t = Delta_t W,

G_t = dC/dA_t^(l) what the layers above pass back at step t (every step with sequence = true,
the last one only otherwise).  Every formula is evaluated on a random batch by its own
printed terms (products in their order, o entrywise, sums over t step by step) and held
against autodiff of the spec's layer, or 30-digit differences without JAX or PyTorch.
"""

from __future__ import annotations

import numpy as np
import sympy

from .letter_steps import LetterDerivation, Names, Step, product
from .rnn_proofs import c_activation, layer_gradients, random_layer, scalar_deltas
from .rnn_steps import Unrolled

__all__ = ["rnn_matrix_form"]

_BATCH = 3


class Entrywise(sympy.Function):
    """A o B, the entrywise product of two matrices (printed ``\\circ``)."""

    nargs = 2
    is_commutative = False

    def _latex(self, printer):
        a, b = (printer.parenthesize(x, 50) for x in self.args)
        return rf"{a} \circ {b}"

    def _letter_str(self, printer):
        return " o ".join(printer.parenthesize(x, 50) for x in self.args)


def rnn_matrix_form(config, spec, autodiff, spell=str) -> LetterDerivation:
    """The batch form of the layer's backward through time, proven on a random batch."""
    l, lb, T, first = spell(config.index), spell(config.index - 1), config.steps, \
        config.index == 1
    g = c_activation(config, spec)
    names = Names()
    t = names.symbol("t", "t", integer=True)
    below = "X" if first else f"H^{{({lb})}}"
    m = {}
    for key, latex, text in [
            ("D", rf"\Delta_{{@}}^{{({l})}}", f"Delta_{{@}}^({l})"),
            ("DT", rf"\Delta_{{@}}^{{({l})\top}}", f"(Delta_{{@}}^({l}))^T"),
            ("G", rf"\frac{{\partial C}}{{\partial A_{{@}}^{{({l})}}}}", f"dC/dA_{{@}}^({l})"),
            ("gp", rf"{g.latex_name}^{{\prime}}\left(Z_{{@}}^{{({l})}}\right)",
             f"{g.text_name}'(Z_{{@}}^({l}))"),
            ("H", rf"H_{{@}}^{{({l})}}", f"H_{{@}}^({l})"),
            ("X", f"{below}_{{@}}" if first else rf"H_{{@}}^{{({lb})}}",
             "X_{@}" if first else f"H_{{@}}^({lb})"),
            ("dX", rf"\frac{{\partial C}}{{\partial {below}_{{@}}}}", f"dC/d{below}_{{@}}")]:
        m[key] = names.indexed(latex, text, matrix=True)
    mats = {}
    for key, latex, text in [
            ("U", rf"U^{{({l})}}", f"U^({l})"), ("W", rf"W^{{({l})}}", f"W^({l})"),
            ("1T", r"\mathbf{1}^{\top}", "1^T"),
            ("dU", rf"\frac{{\partial C}}{{\partial U^{{({l})}}}}", f"dC/dU^({l})"),
            ("dW", rf"\frac{{\partial C}}{{\partial W^{{({l})}}}}", f"dC/dW^({l})"),
            ("db", rf"\frac{{\partial C}}{{\partial b^{{({l})}}}}", f"dC/db^({l})")]:
        mats[key] = names.symbol(latex, text, commutative=False)
    D, U, W = m["D"], mats["U"], mats["W"]
    last = Entrywise(m["G"][T], m["gp"][T])
    inner = product(D[t + 1], U)
    if config.sequence:
        inner = sympy.Add(m["G"][t], inner, evaluate=False)
    recursion = Entrywise(inner, m["gp"][t])
    equations = [(D[T], last)] + ([(D[t], recursion)] if T > 1 else [])
    if T > 1:  # with one step, U never acts (H_0 = 0): dC/dU = 0
        equations.append((mats["dU"], sympy.Sum(product(m["DT"][t], m["H"][t - 1]),
                                                (t, 2, T))))
    equations.append((mats["dW"], sympy.Sum(product(m["DT"][t], m["X"][t]), (t, 1, T))))
    if config.bias:
        equations.append((mats["db"], sympy.Sum(product(mats["1T"], D[t]), (t, 1, T))))
    equations.append((m["dX"][t], product(D[t], W)))
    main = next(i for i, (lhs, _) in enumerate(equations) if lhs in (mats["dU"], mats["dW"]))
    rows = "every step t" if config.sequence else f"the last step only (t = {T})"
    words = (f"The recursion runs from t = {T} down to 1 (for t < {T} the second line), and "
             "each weight's gradient is a sum over the steps; the first step adds nothing to "
             "the gradient of U, since H_0 = 0.") if T > 1 else \
        "With one step there is no recursion, and U never acts: dC/dU = 0."
    step = Step(
        "The same recursion for every sample at once: the rows of each matrix are the "
        "samples, {D} is the matrix of the deltas at step {t}, and the layers above pass "
        f"back {{G}} at {rows}. " + words,
        tuple(equations), {"D": D[t], "t": t, "G": m["G"][t]})
    derivation = LetterDerivation(
        f"The rnn of layer {l} in the batch form: backpropagation through time",
        equations[main][0], equations[main][1], [step], names)
    derivation.proofs = [
        (f"{autodiff.name} autodiff of the spec's layer at a random batch" if autodiff.name
         else "30-digit differences of the spec's layer at a random batch",
         lambda result: _matrix_check(config, spec, autodiff, [
             *equations[:main], (equations[main][0], result), *equations[main + 1:]],
             m, mats, t))]
    return derivation


def _matrix_check(config, spec, autodiff, equations, m, mats, t) -> bool:
    """Each printed formula evaluated step by step on a random batch against the truth."""
    T, n = config.steps, config.units
    rng = np.random.default_rng(13)
    params, xs = random_layer(config, rng, batch=_BATCH)
    G = rng.standard_normal((_BATCH, T, n) if config.sequence else (_BATCH, n))
    entry, (H, Z, gprime) = layer_gradients(config, spec, autodiff, params, xs, G)
    arrays = {m["H"]: lambda s: H[:, s], m["X"]: lambda s: xs[:, s - 1],
              m["gp"]: lambda s: gprime(Z[:, s]),
              m["G"]: lambda s: (G[:, s - 1] if config.sequence else
                                 (G if s == T else np.zeros_like(G)))}
    values = {mats["U"]: params["U"], mats["W"]: params["W"],
              mats["1T"]: np.ones((1, _BATCH))}
    deltas: dict[int, np.ndarray] = {}
    arrays[m["D"]] = deltas.__getitem__
    arrays[m["DT"]] = lambda s: deltas[s].T
    (_, last), *rest = equations
    deltas[T] = _value(last, arrays, values)
    (_, recursion), *grads = rest if T > 1 else [(None, None), *rest]
    for s in range(T - 1, 0, -1):
        deltas[s] = _value(recursion.xreplace({t: s}), arrays, values)
    scalar = Unrolled(config, str, spec)  # each step against the scalar recursion, per sample
    for b in range(_BATCH):
        D = scalar_deltas(scalar, params, xs[b], H[b], Z[b], G[b])[scalar.delta]
        if not all(np.allclose(deltas[s][b], D[s], rtol=1e-12, atol=1e-14)
                   for s in range(1, T + 1)):
            return False
    got = {}
    for lhs, rhs in grads:
        if lhs in mats.values():
            got[{v: k for k, v in mats.items()}[lhs]] = _value(rhs, arrays, values)
        else:  # dC/dX_t, every step
            got["dX"] = np.stack([_value(rhs.xreplace({t: s}), arrays, values)
                                  for s in range(1, T + 1)], 1)
    pick = np.random.default_rng(1)
    for key, v in got.items():
        v = v.ravel() if key == "db" else v
        every = list(np.ndindex(v.shape))  # differences: three entries of each
        chosen = every if autodiff.name else [every[i] for i in pick.integers(0, len(every), 3)]
        if not all(np.isclose(v[i], entry(key[1:], i), rtol=1e-9, atol=1e-12)
                   for i in chosen):
            return False
    return True


def _value(expr, arrays: dict, values: dict):
    """A printed formula on arrays: a step's matrix by its Indexed, a product in its order
    (matrix products), o entrywise, a sum over t step by step."""
    if expr in values:
        return values[expr]
    if isinstance(expr, sympy.Indexed):
        return arrays[expr.base](int(expr.indices[0]))
    if isinstance(expr, sympy.Sum):
        var, lo, hi = expr.limits[0]
        return sum(_value(expr.function.xreplace({var: s}), arrays, values)
                   for s in range(int(lo), int(hi) + 1))
    if isinstance(expr, Entrywise):
        a, b = (_value(x, arrays, values) for x in expr.args)
        return a * b
    if expr.is_Mul:
        out = None
        for factor in expr.args:
            v = _value(factor, arrays, values)
            out = v if out is None else out @ v
        return out
    if expr.is_Add:
        return sum(_value(x, arrays, values) for x in expr.args)
    raise ValueError(f"cannot evaluate {expr}")
