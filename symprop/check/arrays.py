"""One returned gradient array against the true one: right, or what the difference looks like.

Shared by ``check --function`` (a network's gradient dict) and ``check --layer`` (one
layer's backward): the shape, transposed, the kernel flipped, a constant factor (the batch
size n, a sign, 2, 1/2), or which entries differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "ATOL",
    "INPUT",
    "RTOL",
    "WEIGHT",
    "Batch",
    "Layout",
    "ParameterVerdict",
    "as_numbers",
    "close",
    "compare",
]

ATOL, RTOL = 1e-10, 1e-7


@dataclass
class ParameterVerdict:
    """One returned array (a parameter's gradient, or a layer's dC/dA) against the truth."""

    name: str
    expected_shape: tuple[int, ...]
    shape: tuple[int, ...] | None
    right: bool
    max_abs_error: float = float("nan")
    findings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Batch:
    """What a factor n means: the batch size, and the network's reduction ("mean", "sum"),
    or None for one layer's backward (its dOut already holds the loss's 1/n)."""

    size: int
    reduction: str | None


@dataclass(frozen=True)
class Layout:
    """How an array is laid out, for the words of a transposed or flipped finding: what a
    transposed shape is (``axes``), what the right one means (``so_that``), what its rows
    must be (``rows``), and whether it has a kernel that can be flipped."""

    axes: str
    so_that: str
    rows: str
    kernel: bool


WEIGHT = Layout(" is (n_(l-1), n_l)", "so that W[j, k] = dC/dw_jk",
                "W[j, k] must be dC/dw_jk (row j = node of layer l)", kernel=True)
INPUT = Layout("", "one sample per row, as A", "dC/dA has A's layout, one sample per row",
               kernel=False)


def as_numbers(got) -> tuple[np.ndarray | None, str]:
    """Anything a user returned -> (a float64 array, "") or (None, why it is not one): a
    tensor that requires grad is detached first, complex numbers are refused (casting would
    drop their imaginary part without a word)."""
    detach = getattr(got, "detach", None)
    if callable(detach):  # a torch tensor, perhaps with requires_grad, on any device
        got = detach()
        if callable(getattr(got, "is_complex", None)) and got.is_complex():
            return None, f"complex numbers (dtype {got.dtype}); return real arrays"
        for method in ("cpu", "double"):  # bfloat16 has no NumPy dtype
            got = getattr(got, method)() if callable(getattr(got, method, None)) else got
    try:
        array = np.asarray(got)
        if np.iscomplexobj(array):
            return None, f"complex numbers (dtype {array.dtype}); return real arrays"
        return np.asarray(array, dtype=np.float64), ""
    except (TypeError, ValueError, RuntimeError):
        return None, f"not an array of numbers ({type(got).__name__})"


def close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=RTOL, atol=ATOL))


def compare(name: str, want: np.ndarray, got, batch: Batch, layout: Layout = WEIGHT
            ) -> ParameterVerdict:
    """The verdict on ``got`` (anything the user returned) as ``name``'s gradient, laid out
    as ``layout`` says (a weight's, or an input's)."""
    verdict = ParameterVerdict(name, want.shape, None, False)
    if got is None:
        verdict.findings.append("missing from the returned dict")
        return verdict
    got, problem = as_numbers(got)
    if got is None:
        verdict.findings.append(problem)
        return verdict
    verdict.shape = got.shape
    if not np.all(np.isfinite(got)):
        verdict.findings.append(f"{int(np.sum(~np.isfinite(got)))} entries are inf or nan")
        return verdict
    if got.shape != want.shape:
        if got.size == want.size and close(got.reshape(want.shape), want):
            verdict.findings.append(f"the values are right but the shape is {got.shape}; "
                                    f"return shape {want.shape}")
        elif got.ndim == 2 and got.T.shape == want.shape and close(got.T, want):
            verdict.findings.append(f"transposed: shape {got.shape}{layout.axes}; return its "
                                    f"transpose, shape {want.shape}, {layout.so_that}")
        else:
            verdict.findings.append(f"shape {got.shape}, expected {want.shape}")
            verdict.findings += explain(got.T if got.T.shape == want.shape else None, want,
                                        batch, layout, label="its transpose")
        return verdict
    verdict.max_abs_error = float(np.max(np.abs(got - want))) if want.size else 0.0
    if close(got, want):
        verdict.right = True
        return verdict
    verdict.findings.extend(explain(got, want, batch, layout) or [entries(got, want)])
    return verdict


def explain(got, want, batch: Batch, layout: Layout = WEIGHT, label: str = "the array"
            ) -> list[str]:
    """Why ``got`` differs from ``want``: transposed, a constant factor, or some entries."""
    if got is None:
        return []
    if got.ndim == 2 and got.shape == got.T.shape and close(got.T, want):
        return [f"{label} is transposed: {layout.rows}"]
    kernel = tuple(range(2, got.ndim))
    if layout.kernel and got.ndim >= 3 and close(np.flip(got, kernel), want):  # a conv weight (o, c, kh, kw)
        return [(f"{label} is the true gradient with the kernel flipped: symprop's conv, as "
                "PyTorch's, is a correlation (w_o,c,u,... meets the input at offset (u, ...) "
                "of each window), so dW[o, c, u, ...] = sum over the positions of Delta at "
                "the position times the input at position + (u, ...), not at the flipped "
                "offset k-1-u")]
    mask = np.abs(want) > 1e-12
    if np.any(mask):
        ratios = got[mask] / want[mask]
        factor = float(np.median(ratios))
        if factor != 0 and close(got, factor * want):
            return [factor_text(factor, batch, label)]
    return [entries(got, want)] if got.shape == want.shape else []


def _batch_factors(batch: Batch, label: str) -> list[tuple[float, str]]:
    n = batch.size
    if batch.reduction is None:
        return [(n, f"{label} is n = {n} times too large, n = the batch size"),
                (1 / n, (f"{label} is divided by n = {n}, the batch size: dOut already holds "
                        "the loss's 1/n, so a layer's backward does not divide again"))]
    if batch.reduction == "mean":
        return [(n, (f"{label} is {n} times too large, n = the batch size: the spec's "
                    "reduction is the mean over the batch, so divide by n")),
                (1 / n, f"{label} is divided by n = {n} once too often")]
    return [(n, f"{label} is n = {n} times too large"),
            (1 / n, (f"{label} is {n} times too small, n = the batch size: the spec's "
                    "reduction is the sum over the batch, so do not divide by n"))]


def factor_text(factor: float, batch: Batch, label: str) -> str:
    table = [*_batch_factors(batch, label),
             (-1.0, f"{label} has the wrong sign"),
             (2.0, f"{label} is twice the true gradient"),
             (0.5, f"{label} is half the true gradient (a missing factor 2?)")]
    for value, text in table:
        if abs(factor - value) <= 1e-9 * max(1, abs(value)):
            return text
    return f"{label} is {factor:.6g} times the true gradient"


def entries(got: np.ndarray, want: np.ndarray) -> str:
    bad = ~np.isclose(got, want, rtol=RTOL, atol=ATOL)
    where = [tuple(int(i) for i in idx) for idx in zip(*np.nonzero(bad))]
    shown = ", ".join(str(w[0] if len(w) == 1 else w) for w in where[:6])
    more = f" and {len(where) - 6} more" if len(where) > 6 else ""
    first = where[0]
    return (f"{len(where)} of {got.size} entries differ: {shown}{more}; e.g. at {first} "
            f"{got[first]:.6g} instead of {want[first]:.6g}")
