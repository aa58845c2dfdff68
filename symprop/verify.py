"""Check a generated module numerically: JAX, PyTorch and central finite differences.

:func:`verify` generates the module, imports it from a real file, evaluates ``loss`` and
``gradients`` at a random point and compares them with

* ``jax``: ``jax.value_and_grad`` of an independent forward pass (:mod:`symprop.reference`,
  float64 enabled),
* ``torch``: PyTorch autograd of the same independent forward pass (float64),
* ``fd``: central differences of the generated ``loss`` itself, in the requested dtype, with
  a step chosen for that dtype (:data:`FD_STEPS`); large arrays are sampled.

An entry passes when ``|ours - reference| <= atol + rtol |reference|`` (``np.allclose``
semantics, as ``torch.autograd.gradcheck``).  :data:`TOLERANCES` are far tighter than
gradcheck's float64 defaults (atol 1e-5, rtol 1e-3) against autodiff: rtol 1e-10.
"""

from __future__ import annotations

import inspect
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

from .codegen import GeneratedModule, generate
from .comparison import TOLERANCES, Comparison
from .comparison import compare as _compare
from .errors import InputError
from .losses import LOSSES
from .progress import progress
from .reference import BACKENDS, gradient, load_backend
from .spec import Spec

__all__ = ["AGAINST", "DTYPES", "FD_STEPS", "TOLERANCES", "Comparison", "VerifyReport",
           "random_inputs", "verify", "verify_module"]

AGAINST = ("jax", "torch", "fd")
DTYPES = ("float64", "float32")
#: Central-difference step per dtype, relative to max(1, |parameter|): about eps^(1/3).
FD_STEPS = {"float64": 1e-6, "float32": 1e-2}
#: Finite differences sample at most this many entries of each parameter array.
FD_MAX_ENTRIES = 64


@dataclass
class VerifyReport:
    """Every comparison of one generated module, with what produced it."""

    spec: Spec
    style: str
    dtype: str
    against: tuple[str, ...]
    comparisons: list[Comparison]
    #: Where the verified module was kept (None: a temporary file, removed afterwards).
    module_path: Path | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.comparisons) and all(c.passed for c in self.comparisons)

    @property
    def failures(self) -> list[Comparison]:
        return [c for c in self.comparisons if not c.passed]

    def rows(self) -> list[tuple[str, ...]]:
        head = ("parameter", "against", "entries", "max abs err", "max rel err", "tolerance",
                "verdict")
        body = [(c.parameter, c.against,
                 f"{c.entries}" if c.entries == c.total else f"{c.entries}/{c.total}",
                 f"{c.max_abs_error:.2e}", f"{c.max_rel_error:.2e}", c.tolerance,
                 "ok" if c.passed else "FAIL") for c in self.comparisons]
        return [head, *body]

    def table(self) -> str:
        rows = self.rows()
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip()
                         for r in rows)

    def summary(self) -> str:
        n, bad = len(self.comparisons), len(self.failures)
        if bad == 0:
            return f"PASS: all {n} comparisons within tolerance ({self.seconds:.2f} s)."
        names = ", ".join(f"{c.parameter} vs {c.against}" for c in self.failures[:6])
        return f"FAIL: {bad} of {n} comparisons out of tolerance: {names}."

    def __str__(self) -> str:
        lines = [(f"symprop verify: network {self.spec.name!r} {list(self.spec.layers)}, style "
                 f"{self.style}, dtype {self.dtype}, against {', '.join(self.against)}")]
        lines.append(f"module: generated from {self.spec.source}, style {self.style}, " + (
            f"kept in {self.module_path}" if self.module_path else
            "imported from a temporary file (keep it with -o FILE.py)"))
        lines += ["", self.table(), "", *self.notes, self.summary()]
        return "\n".join(lines) + "\n"

    def _repr_markdown_(self) -> str:
        rows = self.rows()
        md = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        md += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return "\n".join(md) + f"\n\n**{self.summary()}**\n"


# ----------------------------------------------------------------- inputs
def random_inputs(spec: Spec, module: ModuleType, *, seed: int = 0, batch: int = 7
                  ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """A float64 random point: perturbed initial parameters (biases non-zero), X, and
    targets Y that suit the loss (probability rows for cross-entropy, [0, 1] for BCE)."""
    rng = np.random.default_rng(seed)
    params = module.init_params(seed, np.float64)
    params = {k: v + rng.normal(scale=0.3, size=v.shape) for k, v in params.items()}
    X = rng.normal(size=(batch, *spec.input_shape))
    n_out = spec.layers[-1]
    if spec.loss == "cross_entropy":
        Y = rng.dirichlet(np.ones(n_out), size=batch)
    elif spec.loss == "binary_cross_entropy" or spec.loss not in LOSSES:
        Y = rng.uniform(0.05, 0.95, size=(batch, n_out))
    else:
        Y = rng.normal(size=(batch, n_out))
    return params, X, Y


# -------------------------------------------------------------- comparing
def _finite_differences(module: ModuleType, params, X, Y, dtype: str, seed: int
                        ) -> dict[str, tuple[np.ndarray, np.ndarray, tuple]]:
    """Central differences of ``module.loss``: key -> (indices, estimates, shape)."""
    rng = np.random.default_rng(seed + 1)
    step = FD_STEPS[dtype]
    out = {}
    for key, value in progress(params.items(), what="finite differences", total=len(params)):
        flat = value.reshape(-1)
        picks = np.arange(flat.size) if flat.size <= FD_MAX_ENTRIES else np.sort(
            rng.choice(flat.size, FD_MAX_ENTRIES, replace=False))
        estimates = np.empty(picks.size)
        for n, index in enumerate(picks):
            original = flat[index]
            h = step * max(1.0, abs(float(original)))
            flat[index] = original + h
            up = module.loss(params, X, Y)
            flat[index] = original - h
            down = module.loss(params, X, Y)
            flat[index] = original
            # the step actually taken in this dtype, not the one asked for
            taken = float(np.asarray(original + h, value.dtype)) - float(
                np.asarray(original - h, value.dtype))
            estimates[n] = (up - down) / taken
        out[key] = (picks, estimates, value.shape)
    return out


def verify_module(module: ModuleType, spec: Spec, *, against=AGAINST, dtype: str = "float64",
                  seed: int = 0, batch: int = 7) -> list[Comparison]:
    """Compare an imported module's loss and gradients with each reference in ``against``."""
    if dtype not in DTYPES:
        raise InputError(f"unknown dtype {dtype!r}", hint=f"Use one of {', '.join(DTYPES)}")
    for name in against:
        if name not in AGAINST:
            raise InputError(f"unknown reference {name!r}",
                             hint=f"Use one of {', '.join(AGAINST)} or all")
        if name in BACKENDS:
            load_backend(name)
    params64, X, Y = random_inputs(spec, module, seed=seed, batch=batch)
    params = {k: v.astype(dtype) for k, v in params64.items()}
    value = module.loss(params, X, Y)
    grads = module.gradients(params, X, Y)
    comparisons: list[Comparison] = []
    for name in against:
        if name in BACKENDS:
            atol, rtol = TOLERANCES[("autodiff", dtype)]
            ref_value, ref_grads = gradient(name, spec, params64, X, Y)
            comparisons.append(_compare("loss", name, np.array(value), np.array(ref_value),
                                        atol, rtol))
            comparisons += [_compare(k, name, grads.get(k, np.full(0, np.nan)), ref_grads[k],
                                     atol, rtol) for k in params64]
        else:
            atol, rtol = TOLERANCES[("fd", dtype)]
            fd = _finite_differences(module, {k: v.copy() for k, v in params.items()}, X, Y,
                                     dtype, seed)
            for k, (picks, estimates, shape) in fd.items():
                ours = np.asarray(grads[k]).reshape(-1)[picks] if k in grads else np.full(
                    picks.size, np.nan)
                comparisons.append(_compare(k, "fd", ours, estimates, atol, rtol,
                                            total=int(np.prod(shape))))
    comparisons += _dtype_checks(grads, params, dtype)
    comparisons += _workspace_checks(module, params, X, Y, grads, dtype)
    return comparisons


def _workspace_checks(module, params, X, Y, grads, dtype: str) -> list[Comparison]:
    """A module whose ``gradients`` takes a ``workspace`` gives the same gradients through
    it, on the call that fills the workspace and on the next, which reuses its arrays: one
    row for every gradient of both calls."""
    if "workspace" not in inspect.signature(module.gradients).parameters:
        return []
    atol, rtol = TOLERANCES[("autodiff", dtype)]
    workspace: dict = {}
    filled = {k: np.array(v) for k, v in module.gradients(params, X, Y, workspace=workspace)
              .items()}
    _, reused = module.loss_and_gradients(params, X, Y, workspace=workspace)
    flat = [(np.ravel(ours[k]) if k in ours else np.full(np.size(grads[k]), np.nan),
             np.ravel(grads[k])) for ours in (filled, reused) for k in grads]
    return [_compare("gradients", "workspace", np.concatenate([o for o, _ in flat]),
                     np.concatenate([r for _, r in flat]), atol, rtol)]


def _dtype_checks(grads, params, dtype: str) -> list[Comparison]:
    """Every gradient has the parameter's shape and dtype (float32 in gives float32 out)."""
    bad = [k for k in params if k not in grads or np.asarray(grads[k]).dtype != np.dtype(dtype)
           or np.shape(grads[k]) != params[k].shape]
    if not bad:
        return []
    return [Comparison(k, f"dtype/shape {dtype}", 0, 0, np.inf, np.inf, 0, 0, False)
            for k in bad]


def hold_module(spec: Spec, generated: GeneratedModule) -> str:
    """Hold a module about to be written against an independent truth at a random batch of
    3 (float64): PyTorch's or JAX's autodiff of the reference forward pass, or without
    either, central differences of its own loss.  A difference raises
    :class:`~symprop.self_check.SelfCheckFailed` (nothing is written); returns what it was
    held against, for the message."""
    import importlib.util

    from .self_check import SelfCheckFailed

    # PyTorch first: its autodiff of a small batch takes milliseconds, JAX's a second of
    # tracing and dispatch
    against = next((name for name in ("torch", "jax") if importlib.util.find_spec(name)),
                   "fd")
    with tempfile.TemporaryDirectory(prefix="symprop-codegen-") as folder:
        loaded = generated.load(Path(folder) / f"{generated.name}.py")
        if generated.target != "numpy":
            from .verify_frameworks import FrameworkAsArrays

            loaded = FrameworkAsArrays(loaded, generated.target)
        # a difference quotient straddles a relu's kink or a max's tie now and then: with
        # only differences to go by, a module fails where two points of three differ
        points = 1 if against != "fd" else 3
        passed, failed = 0, []
        for seed in range(points):
            comparisons = verify_module(loaded, spec, against=(against,), batch=3, seed=seed)
            bad = [c for c in comparisons if not c.passed]
            passed += not bad
            failed += bad
            if passed > points // 2 or len(failed) and seed + 1 - passed > points // 2:
                break
    bad = failed if passed <= points // 2 else []
    if bad:
        raise SelfCheckFailed(f"the generated module's {bad[0].parameter} differs from "
                              f"{bad[0].against} at a random batch (max abs error "
                              f"{bad[0].max_abs_error:.3g}); nothing was written")
    return {"torch": "PyTorch's autodiff", "jax": "JAX's autodiff",
            "fd": "central differences"}[against]


def verify(spec: Spec, *, style: str = "vectorized", against=AGAINST, dtype: str = "float64",
           seed: int = 0, batch: int = 7, module: GeneratedModule | None = None,
           path: str | Path | None = None, target: str = "numpy") -> VerifyReport:
    """Generate (or take) the module of ``spec``, import it from a real file, and verify it.

    The file is ``path`` when given (kept), else a temporary one, removed afterwards. A torch
    or JAX module is compared through :class:`~.verify_frameworks.FrameworkAsArrays`, then
    checked by the framework's own gradient check (:func:`~.verify_frameworks.
    framework_checks`).
    """
    start = time.perf_counter()
    against = tuple(against)
    generated = module or generate(spec, style, target=target)
    with tempfile.TemporaryDirectory(prefix="symprop-verify-") as folder:
        file = Path(path) if path is not None else Path(folder) / f"{generated.name}.py"
        loaded = generated.load(file)
        if generated.target != "numpy":
            from .verify_frameworks import FrameworkAsArrays, framework_checks

            arrays = FrameworkAsArrays(loaded, generated.target)
            comparisons = verify_module(arrays, spec, against=against, dtype=dtype,
                                        seed=seed, batch=batch)
            params64, X, Y = random_inputs(spec, arrays, seed=seed, batch=batch)
            comparisons += framework_checks(arrays, params64, X, Y, dtype)
        else:
            comparisons = verify_module(loaded, spec, against=against, dtype=dtype,
                                        seed=seed, batch=batch)
    label = generated.style if generated.target == "numpy" else generated.target
    report = VerifyReport(spec, label, dtype, against, comparisons,
                          module_path=file if path is not None else None,
                          seconds=time.perf_counter() - start)
    if "fd" in against:
        report.notes.append(f"fd: central differences of the module's loss in {dtype}, step "
                            f"{FD_STEPS[dtype]:g} x max(1, |p|); at most {FD_MAX_ENTRIES} "
                            "entries per array.")
    return report
