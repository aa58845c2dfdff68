"""One parameter's numbers against one reference: the tolerances and the comparison that
``verify`` (NumPy and torch modules alike) tabulates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TOLERANCES", "Comparison", "compare"]

#: (method kind, dtype) -> (atol, rtol).
TOLERANCES = {
    ("autodiff", "float64"): (1e-12, 1e-10),
    ("autodiff", "float32"): (1e-6, 1e-4),
    ("fd", "float64"): (1e-7, 1e-5),
    ("fd", "float32"): (5e-4, 1e-2),
}


@dataclass(frozen=True)
class Comparison:
    """One parameter (or the loss) against one reference."""

    parameter: str
    against: str
    entries: int
    total: int
    max_abs_error: float
    max_rel_error: float
    atol: float
    rtol: float
    passed: bool
    #: Index of the worst entry (relative to its tolerance).
    worst: tuple[int, ...] = ()

    @property
    def tolerance(self) -> str:
        return f"{self.atol:.0e} + {self.rtol:.0e}|ref|"


def compare(name: str, against: str, ours: np.ndarray, ref: np.ndarray, atol: float,
             rtol: float, total: int | None = None) -> Comparison:
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if ours.shape != ref.shape:
        return Comparison(name, against, ref.size, total or ref.size, np.inf, np.inf, atol,
                          rtol, False)
    err = np.abs(ours - ref)
    finite = bool(np.all(np.isfinite(ours)))
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    max_abs = float(np.max(err)) if err.size else 0.0
    ratio = err / (atol + rtol * np.abs(ref)) if err.size else np.zeros(1)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(ratio)), ratio.shape)) \
        if err.size else ()
    return Comparison(name, against, ref.size, total or ref.size, max_abs,
                      max_abs / scale if scale > 0 else max_abs, atol, rtol,
                      finite and bool(np.all(err <= atol + rtol * np.abs(ref))), worst)
