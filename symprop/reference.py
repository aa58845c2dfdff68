"""Independent forward passes in JAX and PyTorch, for proofs against autodiff.

Nothing here comes from symprop's derivation: each built-in activation and loss is written
once more, directly in the array library's own functions (tables :data:`ACTIVATIONS` and
:data:`LOSSES`), and the gradient comes from ``jax.grad`` or ``torch.autograd``.  Only a
user's custom activation or loss is translated from its SymPy expression (there is no other
source for it), through SymPy's own JAX/PyTorch printers via ``lambdify``.

JAX and PyTorch are the ``verify`` extra; a missing one is an
:class:`~symprop.errors.InputError`-free :class:`MissingExtra` with the install command.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np
import sympy

from .activations import X
from .errors import SympropError
from .losses import A_OUT, Y_OUT
from .numeric import SmoothFunction
from .spec import Spec, parse_custom_activation, parse_custom_loss

__all__ = ["BACKENDS", "MissingExtra", "gradient", "load_backend"]


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
    an activation, ``concat`` and ``lambdify`` what the two libraries name differently.
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
            return _lambdify(X, parse_custom_activation(self.spec, choice.name), self.name)
        return ACTIVATIONS[choice.name](self, choice.params)

    def lambdify(self, variables, expr, functions: dict | None = None):
        """A SymPy expression as a function of the library's arrays (SymPy's own printers;
        ``functions`` names our own functions, such as sum_k, which the printer leaves as
        calls)."""
        printer = None
        if functions and self.name == "torch":
            from sympy.printing.pytorch import TorchPrinter

            printer = TorchPrinter({"strict": False})
        return sympy.lambdify(variables, expr, modules=[functions or {}, self.name],
                              dummify=True, printer=printer)


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


def _lambdify(variables, expr, name):
    module = "jax" if name == "jax" else "torch"
    return sympy.lambdify(variables, expr, modules=[module])


def _loss(ops: _Ops, spec: Spec):
    if spec.loss in LOSSES:
        return lambda a, y: LOSSES[spec.loss](ops, a, y)
    term = _lambdify((A_OUT, Y_OUT), parse_custom_loss(spec), ops.name)
    return lambda a, y: term(a, y).sum(-1)


def forward_loss(ops: _Ops, spec: Spec, generic: dict[int, SmoothFunction]):
    """C(params, X, Y) with the spec's reduction, written in the array library itself: each
    layer's own ``reference`` forward pass, one after another."""
    ops.spec, ops.generic = spec, generic
    loss = _loss(ops, spec)
    keys = {c.index: {p.key: f"{p.key}{c.index}" for p in c.parameters(spec.layers)}
            for c in spec.stack}

    def C(params, X, Y):
        outputs = {0: X}
        for config in spec.stack:
            own = {key: params[full] for key, full in keys[config.index].items()}
            outputs[config.index] = config.reference(ops, own, outputs)
        per_sample = loss(outputs[spec.L], Y)
        return per_sample.mean() if spec.reduction == "mean" else per_sample.sum()
    return C


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
