"""Verifying a generated torch or JAX module (``verify --target torch|jax``).

:class:`FrameworkAsArrays` shows the module through the NumPy API (arrays in, arrays out),
so :func:`symprop.verify.verify_module` compares it with JAX, PyTorch autograd of the
independent forward pass and finite differences exactly as it does a NumPy module. Then
:func:`framework_checks` checks what only the framework's module has, on the module itself:

* torch: ``torch.autograd.gradcheck`` of its ``loss`` through the derived backward
  Functions, and ``Net(...).loss(X, Y).backward()`` filling each parameter's ``.grad`` with
  the values of ``loss_and_gradients``;
* jax: ``jax.test_util.check_grads`` of its ``loss`` (reverse mode, through the derived
  custom_vjp backward), and ``jax.grad`` of ``loss`` against the jitted
  ``loss_and_gradients``.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from .comparison import TOLERANCES, Comparison, compare
from .reference import load_backend

__all__ = ["FrameworkAsArrays", "framework_checks"]


class FrameworkAsArrays:
    """A torch or JAX module behind the NumPy module API (``init_params``, ``loss``,
    ``gradients``)."""

    def __init__(self, module: ModuleType, target: str):
        self.module, self.target = module, target
        self.lib = load_backend(target)  # JAX with float64 enabled

    def _array(self, value, dtype=None):
        value = np.ascontiguousarray(value, dtype=dtype)
        if self.target == "torch":
            return self.lib.from_numpy(value)
        return self.lib.numpy.asarray(value)

    def _inputs(self, params, X, Y):
        tensors = {k: self._array(v) for k, v in params.items()}
        dtype = next(iter(params.values())).dtype
        return tensors, self._array(X, dtype), self._array(Y, dtype)

    def init_params(self, seed=0, dtype=np.float64):
        float64 = self.lib.float64 if self.target == "torch" else self.lib.numpy.float64
        params = self.module.init_params(seed, float64)
        return {k: np.asarray(v).astype(dtype) for k, v in params.items()}

    def loss(self, params, X, Y):
        return float(self.module.loss(*self._inputs(params, X, Y)))

    def gradients(self, params, X, Y):
        grads = self.module.gradients(*self._inputs(params, X, Y))
        return {k: np.asarray(v) for k, v in grads.items()}


def framework_checks(arrays: FrameworkAsArrays, params64: dict, X, Y,
                     dtype: str) -> list[Comparison]:
    """The framework's own gradient check of the module, and its autodiff entry point
    (torch's Net and .backward(), jax.grad) against ``loss_and_gradients``."""
    module, lib = arrays.module, arrays.lib
    atol, rtol = TOLERANCES[("autodiff", dtype)]
    keys = list(module.PARAMETER_KEYS)
    entries = sum(int(np.prod(params64[k].shape)) for k in keys)
    params, X64, Y64 = arrays._inputs(params64, X, Y)
    if arrays.target == "torch":
        passed, name = _torch_gradcheck(module, lib, keys, params, X64, Y64), "torch gradcheck"
    else:
        passed, name = _jax_check_grads(module, params, X64, Y64), "jax check_grads"
    out = [Comparison("all", name, entries, entries, 0.0 if passed else np.inf,
                      0.0 if passed else np.inf, 1e-8, 1e-6, passed)]
    entry, (at, X_, Y_, found) = (_torch_net_grads if arrays.target == "torch" else
                                  _jax_grad)(module, lib, keys, params64, X64, Y64, dtype)
    _, expected = module.loss_and_gradients(at, X_, Y_)
    out += [compare(k, entry, np.asarray(found[k]), np.asarray(expected[k]), atol, rtol)
            for k in keys]
    return out


def _torch_gradcheck(module, torch, keys, params, X, Y) -> bool:
    start = tuple(params[k].clone().requires_grad_() for k in keys)
    return bool(torch.autograd.gradcheck(
        lambda *tensors: module.loss(dict(zip(keys, tensors)), X, Y), start, eps=1e-6,
        atol=1e-8, rtol=1e-6, raise_exception=False))


def _jax_check_grads(module, params, X, Y) -> bool:
    from jax.test_util import check_grads

    try:
        check_grads(lambda p: module.loss(p, X, Y), (params,), order=1, modes=["rev"],
                    atol=1e-8, rtol=1e-6, eps=1e-6)
    except AssertionError:
        return False
    return True


def _torch_net_grads(module, torch, keys, params64, X, Y, dtype):
    """Net(...).loss(X, Y).backward() at ``params64`` in ``dtype``: (params, X, Y, .grad)."""
    t = getattr(torch, dtype)
    net = module.Net(dtype=t)
    with torch.no_grad():
        for k in keys:
            getattr(net, k).copy_(torch.from_numpy(params64[k]))
    X_, Y_ = X.to(t), Y.to(t)
    net.loss(X_, Y_).backward()
    at = {k: getattr(net, k).detach() for k in keys}
    return "Net.loss().backward()", (at, X_, Y_, {k: getattr(net, k).grad for k in keys})


def _jax_grad(module, jax, keys, params64, X, Y, dtype):
    """jax.grad of the module's loss at ``params64`` in ``dtype``: (params, X, Y, grads)."""
    t = getattr(jax.numpy, dtype)
    at = {k: jax.numpy.asarray(params64[k], t) for k in keys}
    X_, Y_ = X.astype(t), Y.astype(t)
    return "jax.grad(loss)", (at, X_, Y_, jax.grad(module.loss)(at, X_, Y_))
