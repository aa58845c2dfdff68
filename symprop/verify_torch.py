"""Verifying a generated torch module (``verify --target torch``).

:class:`TorchAsArrays` shows the module through the NumPy API (arrays in, arrays out), so
:func:`symprop.verify.verify_module` compares it with JAX, PyTorch autograd of the
independent forward pass and finite differences exactly as it does a NumPy module. Then
:func:`torch_checks` checks what only the torch module has, on the module itself:
``torch.autograd.gradcheck`` of its ``loss`` through the derived backward Functions, and
``Net(...).loss(X, Y).backward()`` filling each parameter's ``.grad`` with the values of
``loss_and_gradients``.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from .comparison import TOLERANCES, Comparison, compare

__all__ = ["TorchAsArrays", "torch_checks"]


class TorchAsArrays:
    """A torch module behind the NumPy module API (``init_params``, ``loss``, ``gradients``)."""

    def __init__(self, module: ModuleType):
        import torch

        self.module, self.torch = module, torch

    def _tensors(self, params, X, Y):
        t = self.torch
        tensors = {k: t.from_numpy(np.ascontiguousarray(v)) for k, v in params.items()}
        dtype = next(iter(tensors.values())).dtype
        return (tensors, t.as_tensor(np.asarray(X), dtype=dtype),
                t.as_tensor(np.asarray(Y), dtype=dtype))

    def init_params(self, seed=0, dtype=np.float64):
        params = self.module.init_params(seed, self.torch.float64)
        return {k: v.numpy().astype(dtype) for k, v in params.items()}

    def loss(self, params, X, Y):
        with self.torch.no_grad():
            return float(self.module.loss(*self._tensors(params, X, Y)))

    def gradients(self, params, X, Y):
        grads = self.module.gradients(*self._tensors(params, X, Y))
        return {k: v.numpy() for k, v in grads.items()}


def torch_checks(module: ModuleType, params64: dict, X, Y, dtype: str) -> list[Comparison]:
    """gradcheck of the module's own Functions, and Net's .grad against loss_and_gradients."""
    import torch

    atol, rtol = TOLERANCES[("autodiff", dtype)]
    keys = list(module.PARAMETER_KEYS)
    X64, Y64 = torch.from_numpy(np.asarray(X, np.float64)), torch.from_numpy(np.asarray(Y))
    start = [torch.from_numpy(params64[k].copy()).requires_grad_() for k in keys]

    def loss(*tensors):
        return module.loss(dict(zip(keys, tensors)), X64, Y64)

    passed = torch.autograd.gradcheck(loss, tuple(start), eps=1e-6, atol=1e-8, rtol=1e-6,
                                      raise_exception=False)
    out = [Comparison("all", "torch gradcheck", sum(p.numel() for p in start),
                      sum(p.numel() for p in start), 0.0 if passed else np.inf,
                      0.0 if passed else np.inf, 1e-8, 1e-6, bool(passed))]
    t = getattr(torch, dtype)
    net = module.Net(dtype=t)
    with torch.no_grad():
        for k in keys:
            getattr(net, k).copy_(torch.from_numpy(params64[k]))
    X_, Y_ = X64.to(t), Y64.to(t)
    net.loss(X_, Y_).backward()
    _, expected = module.loss_and_gradients({k: getattr(net, k).detach() for k in keys}, X_, Y_)
    for k in keys:
        out.append(compare(k, "Net.loss().backward()", getattr(net, k).grad.numpy(),
                            expected[k].numpy(), atol, rtol))
    return out
