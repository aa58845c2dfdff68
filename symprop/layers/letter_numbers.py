"""Numbers for the proofs of derivations in letters (:mod:`.batchnorm_proofs`,
:mod:`.rnn_proofs`): a printed formula evaluated on arrays, and the truth it is held
against, a layer's reference forward differentiated by JAX or PyTorch."""

from __future__ import annotations

import numpy as np
import sympy

__all__ = ["evaluate", "reference_gradients"]


def evaluate(expr: sympy.Expr, arrays: dict, axes: dict, functions: dict | None = None):
    """A printed formula on arrays: an Indexed picks its entries from ``arrays[base]`` (a
    letter index runs along its axis in ``axes``, a number picks one entry), a sum over a
    letter sums that axis, a symbol is ``arrays[symbol]``, and a function class of
    ``functions`` (an activation, its derivative) is applied entrywise."""
    functions = functions or {}
    if isinstance(expr, sympy.Indexed):
        def index(s):
            if not s.free_symbols:
                return int(s)
            (letter,) = s.free_symbols
            shape = [1, 1]
            shape[axes[letter]] = -1
            return np.arange(arrays[expr.base].shape[list(expr.indices).index(s)]).reshape(shape)
        return arrays[expr.base][tuple(index(s) for s in expr.indices)]
    if isinstance(expr, sympy.Sum):
        var = expr.limits[0][0]
        return np.sum(evaluate(expr.function, arrays, axes, functions), axis=axes[var],
                      keepdims=True)
    if type(expr) in functions:
        return functions[type(expr)](evaluate(expr.args[0], arrays, axes, functions))
    if expr in arrays:
        return arrays[expr]
    if expr.is_Number:
        return float(expr)
    args = [evaluate(a, arrays, axes, functions) for a in expr.args]
    if expr.is_Add:
        return sum(args[1:], args[0])
    if expr.is_Mul:
        return np.prod(np.broadcast_arrays(*args), axis=0) if len(args) > 1 else args[0]
    if expr.is_Pow:
        return args[0] ** args[1]
    raise ValueError(f"cannot evaluate {expr}")


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
