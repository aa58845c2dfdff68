"""``symprop check SPEC --function FILE.py:NAME``: is a hand-written NumPy gradient right?

Like ``torch.autograd.gradcheck``, but it explains the error.  ``NAME(params, X, Y)`` must
return ``{"W1": dC/dW1, "b1": ..., ...}`` (design.md section 5: W^(l)[j, k] = w_jk^(l), one
sample per row, the spec's reduction).  It is called at a random point and each array is
compared with the true gradient -- the generated vectorized module, itself proven against
JAX, PyTorch and finite differences.  For each parameter the report says whether the shape
is right, whether the values are, and if not, what the difference looks like: transposed, a
sign, summed over the batch instead of averaged (a factor n), or which entries differ.

The user's file is their own code, imported and run as ``pytest`` would run a test file;
nothing else they type is executed.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import InputError
from ..spec import Spec
from ..verify import random_inputs
from .result import CheckResult

__all__ = ["FunctionCheck", "ParameterVerdict", "check_function", "load_function"]

ATOL, RTOL = 1e-10, 1e-7


@dataclass
class ParameterVerdict:
    """One parameter of the user's gradient against the truth."""

    name: str
    expected_shape: tuple[int, ...]
    shape: tuple[int, ...] | None
    right: bool
    max_abs_error: float = float("nan")
    findings: list[str] = field(default_factory=list)


@dataclass
class FunctionCheck(CheckResult):
    """The verdict on a NumPy gradient function."""

    template: ClassVar[str] = "function"

    function: str
    spec: Spec
    batch: int
    parameters: list[ParameterVerdict] = field(default_factory=list)
    problem: str = ""
    seconds: float = 0.0

    @property
    def right(self) -> bool:
        return not self.problem and all(p.right for p in self.parameters)

    def template_context(self) -> dict:
        return {"atol": ATOL, "rtol": RTOL}


def load_function(reference: str, flag: str = "--function",
                  example: str = "mygrad.py:gradients") -> Callable:
    """``FILE.py:NAME`` -> the function (the file is imported as a module)."""
    from ..codegen.module import load_module

    path, sep, name = reference.rpartition(":")
    if not sep or not path or not name.isidentifier() or name.startswith("__"):
        raise InputError(f"{flag} takes FILE.py:NAME, not {reference!r}",
                         hint=f"e.g. {flag} {example}")
    if not Path(path).is_file():
        raise InputError(f"{path}: no such file")
    folder = str(Path(path).resolve().parent)
    sys.path.insert(0, folder)  # as `python FILE.py` would: modules beside it import
    try:
        module = load_module(path)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 -- the user's code may raise anything
        raise InputError(f"importing {path} raised {type(exc).__name__}: {exc}",
                         where=_user_frame(exc, path)) from None
    finally:
        sys.path.remove(folder)
    function = vars(module).get(name)  # a name the file defines, not an attribute of modules
    if not callable(function):
        names = sorted(n for n, v in vars(module).items() if callable(v) and not
                       n.startswith("_") and getattr(v, "__module__", None) == module.__name__)
        raise InputError(f"{path} has no {'model' if flag == 'import' else 'function'} "
                         f"{name!r}",
                         hint=f"It defines: {', '.join(names) or 'no functions'}")
    return function


def _user_frame(exc: BaseException, path: str) -> str | None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if Path(f.filename).resolve() == Path(path).resolve()]
    return f"{path}:{frames[-1].lineno}" if frames else None


def _batch_size(spec: Spec) -> int:
    """A batch size no width equals, so a batch-sized axis cannot pass for a layer's."""
    n = 5
    while n in spec.layers:
        n += 1
    return n


def check_function(spec: Spec, function: Callable | str, *, seed: int = 0) -> FunctionCheck:
    """Call ``function(params, X, Y)`` at a random point and compare with the true gradient."""
    from ..codegen import generate  # the codegen package imports symprop's version

    spec.require("check_function", "symprop check --function")
    start = time.perf_counter()
    label = function if isinstance(function, str) else getattr(function, "__name__", "function")
    if isinstance(function, str):
        function = load_function(function)
    module = generate(spec, "vectorized").load()
    batch = _batch_size(spec)
    params, X, Y = random_inputs(spec, module, seed=seed, batch=batch)
    truth = module.gradients(params, X, Y)
    result = FunctionCheck(label, spec, batch)
    try:
        got = function({k: v.copy() for k, v in params.items()}, X.copy(), Y.copy())
    except Exception as exc:  # noqa: BLE001 -- the user's code may raise anything
        result.problem = f"calling it raised {type(exc).__name__}: {exc}"
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        result.problem += f" (at {Path(frame.filename).name}:{frame.lineno})"
        result.seconds = time.perf_counter() - start
        return result
    if not isinstance(got, dict):
        result.problem = (f"it returned {type(got).__name__}, not a dict of arrays keyed "
                          f"{', '.join(truth)}")
        result.seconds = time.perf_counter() - start
        return result
    for name, want in truth.items():
        result.parameters.append(_compare(name, want, got.get(name), batch, spec))
    extra = sorted(set(map(str, got)) - set(truth))
    if extra:
        result.problem = f"it returned keys the network does not have: {', '.join(extra)}"
    result.seconds = time.perf_counter() - start
    return result


# ------------------------------------------------------------------ explaining
def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=RTOL, atol=ATOL))


def _compare(name: str, want: np.ndarray, got, batch: int, spec: Spec) -> ParameterVerdict:
    verdict = ParameterVerdict(name, want.shape, None, False)
    if got is None:
        verdict.findings.append("missing from the returned dict")
        return verdict
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        verdict.findings.append(f"not an array of numbers ({type(got).__name__})")
        return verdict
    verdict.shape = got.shape
    if not np.all(np.isfinite(got)):
        verdict.findings.append(f"{int(np.sum(~np.isfinite(got)))} entries are inf or nan")
        return verdict
    if got.shape != want.shape:
        if got.size == want.size and _close(got.reshape(want.shape), want):
            verdict.findings.append(f"the values are right but the shape is {got.shape}; "
                                    f"return shape {want.shape}")
        elif got.ndim == 2 and got.T.shape == want.shape and _close(got.T, want):
            verdict.findings.append(f"transposed: shape {got.shape} is (n_(l-1), n_l); return "
                                    f"its transpose, shape {want.shape}, so that W[j, k] = w_jk")
        else:
            verdict.findings.append(f"shape {got.shape}, expected {want.shape}")
            for explanation in _explain(got.T if got.T.shape == want.shape else None, want,
                                        batch, spec, label="its transpose"):
                verdict.findings.append(explanation)
        return verdict
    verdict.max_abs_error = float(np.max(np.abs(got - want))) if want.size else 0.0
    if _close(got, want):
        verdict.right = True
        return verdict
    verdict.findings.extend(_explain(got, want, batch, spec) or [_entries(got, want)])
    return verdict


def _explain(got, want, batch: int, spec: Spec, label: str = "the array") -> list[str]:
    """Why ``got`` differs from ``want``: transposed, a constant factor, or some entries."""
    if got is None:
        return []
    if got.ndim == 2 and got.shape == got.T.shape and _close(got.T, want):
        return [f"{label} is transposed: W[j, k] must be dC/dw_jk (row j = node of layer l)"]
    kernel = tuple(range(2, got.ndim))
    if got.ndim >= 3 and _close(np.flip(got, kernel), want):  # a conv weight (o, c, kh, kw)
        return [(f"{label} is the true gradient with the kernel flipped: symprop's conv, as "
                "PyTorch's, is a correlation (w_o,c,u,... meets the input at offset (u, ...) "
                "of each window), so dW[o, c, u, ...] = sum over the positions of Delta at "
                "the position times the input at position + (u, ...), not at the flipped "
                "offset k-1-u")]
    mask = np.abs(want) > 1e-12
    if np.any(mask):
        ratios = got[mask] / want[mask]
        factor = float(np.median(ratios))
        if factor != 0 and _close(got, factor * want):
            return [_factor_text(factor, batch, spec, label)]
    return [_entries(got, want)] if got.shape == want.shape else []


def _factor_text(factor: float, batch: int, spec: Spec, label: str) -> str:
    mean = spec.reduction == "mean"
    table = [
        (batch, f"{label} is {batch} times too large, n = the batch size: the spec's reduction "
                "is the mean over the batch, so divide by n" if mean else
                f"{label} is n = {batch} times too large"),
        (1 / batch, f"{label} is {batch} times too small, n = the batch size: the spec's "
                    "reduction is the sum over the batch, so do not divide by n" if not mean
         else f"{label} is divided by n = {batch} once too often"),
        (-1.0, f"{label} has the wrong sign"),
        (2.0, f"{label} is twice the true gradient"),
        (0.5, f"{label} is half the true gradient (a missing factor 2?)"),
    ]
    for value, text in table:
        if abs(factor - value) <= 1e-9 * max(1, abs(value)):
            return text
    return f"{label} is {factor:.6g} times the true gradient"


def _entries(got: np.ndarray, want: np.ndarray) -> str:
    bad = ~np.isclose(got, want, rtol=RTOL, atol=ATOL)
    where = [tuple(int(i) for i in idx) for idx in zip(*np.nonzero(bad))]
    shown = ", ".join(str(w[0] if len(w) == 1 else w) for w in where[:6])
    more = f" and {len(where) - 6} more" if len(where) > 6 else ""
    first = where[0]
    return (f"{len(where)} of {got.size} entries differ: {shown}{more}; e.g. at {first} "
            f"{got[first]:.6g} instead of {want[first]:.6g}")
