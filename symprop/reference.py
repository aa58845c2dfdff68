"""Independent forward passes in JAX and PyTorch, for proofs against autodiff.

Nothing here comes from symprop's derivation: each built-in activation and loss is written
once more, directly in the array library's own functions (tables :data:`ACTIVATIONS` and
:data:`LOSSES`), and the gradient comes from ``jax.grad`` or ``torch.autograd``.  Only a
user's custom activation, loss or layer formula is translated from its SymPy expression
(there is no other source for it), node by node into the library's own functions
(:class:`Translation`; every node the activation syntax can produce has its row there).

JAX and PyTorch are the ``verify`` extra; a missing one is an
:class:`~symprop.errors.InputError`-free :class:`MissingExtra` with the install command.
"""

from __future__ import annotations

import functools
import importlib
import operator
from collections.abc import Callable, Mapping

import numpy as np
import sympy

from .activations import X
from .errors import SympropError
from .losses import A_OUT, Y_OUT
from .numeric import SmoothFunction
from .spec import Spec, parse_custom_activation, parse_custom_loss

__all__ = ["BACKENDS", "MissingExtra", "Translation", "gradient", "load_backend"]


class MissingExtra(SympropError):
    """JAX or PyTorch is not installed."""


BACKENDS = ("jax", "torch")


def load_backend(name: str):
    """Import jax (with float64 enabled) or torch, or raise :class:`MissingExtra`."""
    try:
        if name == "jax":
            jax = importlib.import_module("jax")
            jax.config.update("jax_enable_x64", True)
            return jax
        return importlib.import_module("torch")
    except ImportError:
        raise MissingExtra(
            f"{name} is not installed; it is needed to check against {name} autodiff. "
            "Install the extra: pip install 'symprop[verify]' (for PyTorch, first "
            "pip install torch==2.13.0).") from None


class _Ops:
    """The few array functions the reference needs, named the same for both libraries.

    Each layer kind writes its forward pass with these (its ``reference`` method):
    ``xp`` is jax.numpy or torch, ``activation(choice, layer)`` the elementwise function of
    an activation, ``concat`` what the two libraries name differently, and ``translate`` a
    user's SymPy expression.
    """

    def __init__(self, name: str, spec: Spec | None = None,
                 generic: dict[int, SmoothFunction] | None = None):
        self.name, self.spec, self.generic = name, spec, generic or {}
        if name == "jax":
            import jax.nn as jnn
            import jax.numpy as jnp

            self.xp, self.sigmoid, self.softplus = jnp, jnn.sigmoid, jnn.softplus
            self.log_softmax = lambda z: jnn.log_softmax(z, axis=-1)
            self.softmax = lambda z: jnn.softmax(z, axis=-1)
            self.where = jnp.where
            self.maximum = jnp.maximum
        else:
            import torch

            self.xp, self.sigmoid = torch, torch.sigmoid
            self.softplus = torch.nn.functional.softplus
            self.log_softmax = lambda z: torch.log_softmax(z, dim=-1)
            self.softmax = lambda z: torch.softmax(z, dim=-1)
            self.where = torch.where
            self.maximum = lambda p, q: torch.maximum(p, torch.as_tensor(q, dtype=p.dtype))

    def concat(self, arrays):
        """Arrays side by side along the nodes (the last axis)."""
        return self.xp.concatenate(arrays, axis=-1) if self.name == "jax" else \
            self.xp.cat(arrays, dim=-1)

    def activation(self, choice, layer: int):
        """The elementwise function (or softmax) of a layer's activation."""
        if choice.name == "g":
            f = self.generic[layer]
            return lambda z: f.value(self.xp, z)
        if choice.name in self.spec.activations:
            definition = parse_custom_activation(self.spec, choice.name)
            return lambda z: self.translate(definition, {X: z})
        return ACTIVATIONS[choice.name](self, choice.params)

    def translate(self, expr: sympy.Expr, values: Mapping[sympy.Symbol, object],
                  functions: Mapping[type, Callable] | None = None):
        """``expr`` evaluated on the library's arrays (see :class:`Translation`); ``values``
        gives each symbol's array, ``functions`` our own SymPy functions (sum_k)."""
        return Translation(self, values, functions or {})(expr)


class Translation:
    """A SymPy expression of the activation syntax (a custom activation, loss or layer
    formula) evaluated node by node in the array library's own functions.

    SymPy's printers are not used here: they print a function they do not know (sum_k) by
    its name with everything inside it unprinted (``SumK(exp(x))``, exp undefined), relu's
    ``Max(0, x)`` as ``torch.max(0, x)`` (which takes no number) and erf for JAX as
    ``math.erf``.  Each node the parser and SymPy's automatic simplification can produce has
    its row below; anything else is an error naming it, never a silent guess.
    """

    def __init__(self, ops: _Ops, values: Mapping[sympy.Symbol, object],
                 functions: Mapping[type, Callable]):
        self.ops, self.values, self.functions = ops, values, functions
        self.table = {**_functions(ops.name), **functions}

    def __call__(self, e: sympy.Basic):
        if e in self.values:
            return self.values[e]
        if e.is_Symbol:
            raise SympropError(f"no value for {e} in the reference forward pass")
        if e is sympy.true or e is sympy.false:
            return bool(e)
        if not e.free_symbols:  # a number, or numbers only (sqrt(2), pi/4): its value
            if e.is_Integer:
                return int(e)
            try:
                return float(e)
            except TypeError:
                raise SympropError(f"{e} is not a real number") from None
        if e.is_Add:
            return functools.reduce(operator.add, [self(a) for a in e.args])
        if e.is_Mul:
            return functools.reduce(operator.mul, [self(a) for a in e.args])
        if e.is_Pow:
            base, exponent = e.args
            if exponent == sympy.S.Half:
                return self.ops.xp.sqrt(self(base))
            return self(base) ** self(exponent)
        if isinstance(e, sympy.Piecewise):
            return self._piecewise(e)
        if isinstance(e, (sympy.Max, sympy.Min)):
            pick = self.ops.xp.maximum if isinstance(e, sympy.Max) else self.ops.xp.minimum
            args = [self(a) for a in e.args]
            like = next((a for a in args if not isinstance(a, (int, float))), None)
            return functools.reduce(pick, [self._array(a, like) for a in args])
        for cls in type(e).__mro__:
            if cls in self.table:
                return self.table[cls](*[self(a) for a in e.args])
        raise SympropError(f"the reference forward pass cannot evaluate {type(e).__name__} "
                           f"(in {e})")

    def _array(self, value, like):
        """A number as an array of ``like``'s dtype (maximum and where want arrays)."""
        if not isinstance(value, (int, float)):
            return value
        xp = self.ops.xp
        dtype = like.dtype if like is not None else xp.float64
        return xp.asarray(value, dtype=dtype) if self.ops.name == "jax" else \
            xp.as_tensor(value, dtype=dtype)

    def _piecewise(self, e: sympy.Piecewise):
        pieces = list(e.args)
        if pieces[-1].cond is not sympy.true:
            raise SympropError(f"{e} has no otherwise-branch")
        values = [self(p.expr) for p in pieces]
        like = next((v for v in values if not isinstance(v, (int, float))), None)
        result = self._array(values[-1], like)
        for piece, value in zip(reversed(pieces[:-1]), reversed(values[:-1])):
            condition = self(piece.cond)
            if isinstance(condition, bool):
                result = self._array(value, like) if condition else result
            else:
                result = self.ops.where(condition, self._array(value, like), result)
        return result


@functools.cache
def _functions(name: str) -> dict[type, Callable]:
    """SymPy function class -> the library's function, for every function of the activation
    syntax (and the comparisons of a piecewise definition)."""
    if name == "jax":
        import jax.numpy as xp
        from jax.scipy.special import erf
    else:
        import torch as xp

        erf = xp.erf
    return {
        sympy.exp: xp.exp, sympy.log: xp.log, sympy.tanh: xp.tanh, sympy.sinh: xp.sinh,
        sympy.cosh: xp.cosh, sympy.sin: xp.sin, sympy.cos: xp.cos, sympy.tan: xp.tan,
        sympy.atan: xp.arctan, sympy.erf: erf, sympy.Abs: xp.abs, sympy.sign: xp.sign,
        sympy.StrictGreaterThan: operator.gt, sympy.GreaterThan: operator.ge,
        sympy.StrictLessThan: operator.lt, sympy.LessThan: operator.le,
        sympy.And: xp.logical_and, sympy.Or: xp.logical_or, sympy.Not: xp.logical_not,
    }


#: name -> builder(ops, params) -> elementwise function
ACTIVATIONS: dict[str, Callable] = {
    "identity": lambda o, p: (lambda z: z),
    "sigmoid": lambda o, p: o.sigmoid,
    "tanh": lambda o, p: o.xp.tanh,
    "relu": lambda o, p: (lambda z: o.maximum(z, 0.0)),
    "leaky_relu": lambda o, p: (lambda z: o.where(z > 0, z, (p or (0.01,))[0] * z)),
    "softplus": lambda o, p: o.softplus,
    "elu": lambda o, p: (lambda z: o.where(z > 0, z, (p or (1.0,))[0] * (o.xp.exp(z) - 1))),
    "swish": lambda o, p: (lambda z: z * o.sigmoid(z)),
    "softmax": lambda o, p: o.softmax,
}

#: name -> loss(ops, a, y) summed over output nodes (one sample per row -> per-row losses)
LOSSES: dict[str, Callable] = {
    "sse": lambda o, a, y: ((a - y) ** 2).sum(-1),
    "half_sse": lambda o, a, y: 0.5 * ((a - y) ** 2).sum(-1),
    "mse": lambda o, a, y: ((a - y) ** 2).mean(-1),
    "cross_entropy": lambda o, a, y: -(y * o.xp.log(a)).sum(-1),
    "binary_cross_entropy": lambda o, a, y: -(y * o.xp.log(a) + (1 - y) * o.xp.log(1 - a)).sum(-1),
}


def _loss(ops: _Ops, spec: Spec):
    if spec.loss in LOSSES:
        return lambda a, y: LOSSES[spec.loss](ops, a, y)
    term = parse_custom_loss(spec)
    return lambda a, y: ops.translate(term, {A_OUT: a, Y_OUT: y}).sum(-1)


def forward_loss(ops: _Ops, spec: Spec, generic: dict[int, SmoothFunction]):
    """C(params, X, Y) with the spec's reduction, written in the array library itself: each
    layer's own ``reference`` forward pass, one after another."""
    ops.spec, ops.generic = spec, generic
    loss = _loss(ops, spec)
    keys = {c.index: {p.key: f"{p.key}{c.index}" for p in c.parameters(spec.layers)}
            for c in spec.stack}

    def C(params, X, Y):
        outputs = {0: X.reshape((X.shape[0], -1))}  # a map's samples as flat rows, C order
        for config in spec.stack:
            own = {key: params[full] for key, full in keys[config.index].items()}
            outputs[config.index] = config.reference(ops, own, outputs)
        per_sample = loss(outputs[spec.L], Y)
        return per_sample.mean() if spec.reduction == "mean" else per_sample.sum()
    return C


def forward(backend: str, spec: Spec, params: dict[str, np.ndarray], X: np.ndarray
            ) -> np.ndarray:
    """The output layer's activations for a batch X (rows, or maps flattened in C order), from
    each layer's own reference forward pass in ``backend`` (float64), as a NumPy array."""
    lib = load_backend(backend)
    ops = _Ops(backend, spec, {})
    keys = {c.index: {p.key: f"{p.key}{c.index}" for p in c.parameters(spec.layers)}
            for c in spec.stack}
    array = (lambda v: lib.numpy.asarray(v)) if backend == "jax" else lib.tensor
    outputs = {0: array(X).reshape((len(X), -1))}
    for config in spec.stack:
        own = {key: array(params[full]) for key, full in keys[config.index].items()}
        outputs[config.index] = config.reference(ops, own, outputs)
    out = outputs[spec.L]
    return np.asarray(out) if backend == "jax" else out.detach().numpy()


def gradient(backend: str, spec: Spec, params: dict[str, np.ndarray], X: np.ndarray,
             Y: np.ndarray, generic: dict[int, SmoothFunction] | None = None,
             ) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and gradients from ``backend`` autodiff (float64), as NumPy arrays."""
    lib = load_backend(backend)
    ops = _Ops(backend, spec, generic)
    C = forward_loss(ops, spec, generic or {})
    if backend == "jax":
        jnp = lib.numpy
        p = {k: jnp.asarray(v) for k, v in params.items()}
        value, grads = lib.value_and_grad(C)(p, jnp.asarray(X), jnp.asarray(Y))
        return float(value), {k: np.asarray(v) for k, v in grads.items()}
    torch = lib
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    value = C(p, torch.tensor(X), torch.tensor(Y))
    value.backward()
    return float(value.detach()), {k: v.grad.numpy() for k, v in p.items()}
