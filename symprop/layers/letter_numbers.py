"""Numbers for the proofs of derivations in letters (:mod:`.batchnorm_proofs`,
:mod:`.rnn_proofs`): a printed formula evaluated on arrays, and the truth it is held
against, a layer's reference forward differentiated by JAX or PyTorch."""

from __future__ import annotations

import numpy as np
import sympy

__all__ = ["evaluate", "reference_gradients"]


def evaluate(expr: sympy.Expr, arrays: dict, axes: dict, functions: dict | None = None):
    """A printed formula on arrays: an Indexed picks its entries from ``arrays[base]`` (a
    letter index runs along its axis in ``axes``, a number picks one entry, and one outside
    the array is an IndexError), a sum over a letter sums that axis when it runs over the
    whole axis and term by term otherwise (its bounds evaluated), a symbol is
    ``arrays[symbol]``, a Kronecker delta is 1 where its two sides agree, and a function
    class of ``functions`` (an activation, its derivative) or an elementary function (exp,
    log, ...) is applied entrywise."""
    functions = functions or {}

    def again(e):
        return evaluate(e, arrays, axes, functions)

    if isinstance(expr, sympy.Indexed):
        return arrays[expr.base][tuple(_index(expr, k, axes, arrays)
                                       for k in range(len(expr.indices)))]
    if isinstance(expr, sympy.Sum):
        return _sum(expr, arrays, axes, again)
    if isinstance(expr, sympy.KroneckerDelta):
        left, right = np.broadcast_arrays(*(np.asarray(again(a)) for a in expr.args))
        return (left == right).astype(float)
    if type(expr) in functions:
        return functions[type(expr)](again(expr.args[0]))
    if type(expr) in _ELEMENTARY:  # a formula writes g' out: e^{-z}/(1 + e^{-z})^2
        return _ELEMENTARY[type(expr)](again(expr.args[0]))
    if expr in arrays:
        return arrays[expr]
    if expr.is_number and not expr.free_symbols:  # 2, 1/2, e, pi
        return float(expr)
    args = [again(a) for a in expr.args]
    if expr.is_Add:
        return sum(args[1:], args[0])
    if expr.is_Mul:
        return np.prod(np.broadcast_arrays(*args), axis=0) if len(args) > 1 else args[0]
    if expr.is_Pow:
        return args[0] ** args[1]
    raise ValueError(f"cannot evaluate {expr}")


_ELEMENTARY = {sympy.exp: np.exp, sympy.log: np.log, sympy.sinh: np.sinh,
               sympy.cosh: np.cosh, sympy.tanh: np.tanh, sympy.sin: np.sin, sympy.cos: np.cos,
               sympy.atan: np.arctan}


def _index(expr: sympy.Indexed, k: int, axes: dict, arrays: dict):
    """Index ``k`` of ``expr``: a whole number inside the array, or a bare letter running
    along its axis."""
    s, size = expr.indices[k], arrays[expr.base].shape[k]
    if not s.free_symbols:
        if not 0 <= int(s) < size:
            raise IndexError(f"it reads entry {int(s)} of a name with {size} (numbered from "
                             "0): past the batch, or past the layer's nodes")
        return int(s)
    if s not in axes:
        raise ValueError(f"cannot evaluate the index {s} of {expr}")
    shape = [1, 1]
    shape[axes[s]] = -1
    return np.arange(size).reshape(shape)


def _sum(expr: sympy.Sum, arrays: dict, axes: dict, again):
    """A sum: along its letter's axis when it runs over all of it, else term by term."""
    if len(expr.limits) > 1:  # SymPy's first limit is the innermost sum
        inner = sympy.Sum(expr.function, *expr.limits[:-1])
        return again(sympy.Sum(inner, expr.limits[-1]))
    var, lo, hi = expr.limits[0]
    first, last = (round(float(np.ravel(again(b))[0])) for b in (lo, hi))
    sizes = {arrays[e.base].shape[k] for e in expr.function.atoms(sympy.Indexed)
             for k, s in enumerate(e.indices) if s == var}
    if var in axes and first == 0 and sizes == {last + 1}:
        return np.sum(again(expr.function), axis=axes[var], keepdims=True)
    terms = [again(expr.function.xreplace({var: v})) for v in range(first, last + 1)]
    return sum(terms[1:], terms[0]) if terms else 0.0


def reference_gradients(config, spec, autodiff, arrays: dict, G: np.ndarray,
                        input_key: str) -> dict:
    """Every gradient of sum(G o out) of layer ``config``'s reference forward by JAX or
    PyTorch (``autodiff``), by ``arrays``' keys: its parameters, and its input (batch, width)
    under ``input_key``."""
    ops, lib = autodiff.ops(spec)
    keys = list(arrays)

    def loss(*values):
        named = dict(zip(keys, values))
        out = config.reference(ops, named, {config.index - 1: named[input_key]})
        return (out * ops.xp.asarray(G.reshape(G.shape[0], -1))).sum()

    if autodiff.name == "jax":
        grads = lib.grad(loss, argnums=tuple(range(len(keys))))(
            *[lib.numpy.asarray(a) for a in arrays.values()])
        return {k: np.asarray(v) for k, v in zip(keys, grads)}
    tensors = [lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in arrays.values()]
    loss(*tensors).backward()
    return {k: v.grad.numpy() for k, v in zip(keys, tensors)}
