"""Every derivative symprop shows is held against an independent truth first.

:func:`truth` picks the strongest truth the work allows for one derivation:

* SymPy's ``diff`` of the composed C_0 at a random point in 30-digit arithmetic, where the
  composed C_0 is within :data:`~symprop.budget.COMPOSED_LIMIT` symbols (``--prove`` asks
  for the decisive symbolic proof there, see :mod:`.proof`);
* above that, autodiff (JAX, else PyTorch) of the independent reference forward pass for a
  parameter;
* otherwise -- a node of a network too big to compose, or no JAX or PyTorch installed --
  central differences of the forward pass itself (each node by its definition) in 45-digit
  arithmetic, whose error is far below the comparison's tolerance.

:func:`ensure` raises :class:`SelfCheckFailed` when the derivation differs: a bug in
symprop, which the command line reports as exit 3 instead of printing a wrong derivation.
"""

from __future__ import annotations

import importlib.util
import random
from dataclasses import replace
from typing import TYPE_CHECKING

import mpmath

from .budget import composed_estimate
from .numeric import MPMATH, Evaluator
from .proof import (
    NUMERIC_RTOL,
    ProofResult,
    _generic_layers,
    _prove_autodiff,
    definitions_of,
    prove,
    random_point,
)

if TYPE_CHECKING:
    from .derivation import Derivation

__all__ = ["SelfCheckFailed", "describe", "ensure", "prove_by_differences", "truth"]

#: Digits and step of the central differences: the step's error (about h^2) and the
#: rounding's (10^-DPS / h) both stay near 10^-30, far inside NUMERIC_RTOL (10^-20) of a
#: derivative of at least DIFFERENCE_FLOOR (below it, of the floor).
DIFFERENCE_DPS = 45
DIFFERENCE_STEP = mpmath.mpf(10) ** -15
DIFFERENCE_FLOOR = mpmath.mpf(10) ** -8


class SelfCheckFailed(RuntimeError):
    """A derivation differs from the independent truth: a bug in symprop (exit 3)."""


def autodiff_backend() -> str | None:
    """JAX or PyTorch, whichever is installed (JAX first), or None."""
    for name in ("jax", "torch"):
        if importlib.util.find_spec(name) is not None:
            return name
    return None


def truth(derivation: Derivation, *, seed: int = 0, decisive: bool = False,
          force: bool = False) -> ProofResult:
    """The derivation against the strongest independent truth within the budget (see the
    module docstring); ``decisive`` asks for the symbolic proof where it is affordable."""
    node = derivation.target
    estimate = composed_estimate(derivation.graph.spec, node)
    if force or not estimate.too_big:
        return prove(derivation, "auto" if decisive else "numeric", points=1, seed=seed,
                     force=True)
    backend = autodiff_backend()
    if node.is_parameter and backend is not None:
        result = _prove_autodiff(derivation.engine, [node], backend, seed)[0]
    else:
        result = prove_by_differences(derivation, seed=seed)
    return replace(result, detail=f"the composed C_0 would have {estimate.over} a proof "
                                  "against it is done for")


def prove_by_differences(derivation: Derivation, *, seed: int = 0) -> ProofResult:
    """The result against a central difference of C_0 in the target, C_0 evaluated through
    the forward pass (every node by its definition) in 45-digit arithmetic.

    A point where C_0 has a kink in the target (the target tied with another entry of a max
    pool's window: a relu's exact zeros, or two outputs of an overlapping pool that share
    their maximum; the one-sided differences disagree) cannot judge a derivative. Such ties
    hold on sets of positive probability, so a new random point alone may meet them again;
    the next points also move the target itself off its forward value by a few per cent,
    up and down in turn (the downstream nodes follow it), which breaks any tie with it, up
    to ``KINK_RETRIES`` points. A moved target may leave a function's domain (a sqrt(1 - a)
    above it): that point judges nothing either. After a kink, a point where the derivative
    is 0 (the target no window's maximum there) is a pass only when no later point has a
    derivative that is not 0."""
    zero_pass = None
    for attempt in range(KINK_RETRIES):
        try:
            result, smooth, zero = _differences_at(derivation, seed + attempt,
                                                   shift=_SHIFTS[attempt % 2] if attempt else 0)
        except _OutsideDomain:
            continue
        if attempt == 0 and (result.passed or smooth):
            return result
        if result.passed and not zero:
            return result
        if result.passed:
            zero_pass = zero_pass or result
        elif smooth:  # a smooth point where the derivation differs: it is wrong
            return result
        else:
            kinked = result
    if zero_pass is not None:
        return zero_pass
    return replace(kinked, detail=f"C_0 has a kink in the target at each of the "
                                  f"{KINK_RETRIES} random points tried")


#: Random points tried before a check by differences gives up on kinks.
KINK_RETRIES = 8
#: The direction a retry moves the target in: down, then up (attempts 2, 4, ... and 1, 3, ...).
_SHIFTS = (-1, 1)


class _OutsideDomain(ArithmeticError):
    """The moved target left a function's domain: complex values, or a comparison of them."""


def _differences_at(derivation: Derivation, seed: int, *, shift: int = 0
                    ) -> tuple[ProofResult, bool, bool]:
    """The check at one random point, whether C_0 is smooth in the target there (its
    forward and backward differences agree), and whether the derivative is 0 there;
    ``shift`` (1 or -1) moves the target from its forward value, up or down, by 1-10 per
    cent of its size (at least 0.001 to 0.01)."""
    graph, node, symbol = derivation.graph, derivation.target, derivation.symbol
    values = random_point(graph, seed)
    generic = _generic_layers(graph, seed)
    resolve = definitions_of(derivation.engine)

    def loss_at(value):
        return Evaluator({**values, symbol: value}, backend=MPMATH, resolve=resolve,
                         generic=generic)(graph.loss)

    with mpmath.workdps(DIFFERENCE_DPS):
        here = Evaluator(values, backend=MPMATH, resolve=resolve, generic=generic)
        centre = here(symbol)
        try:
            if shift:
                nudge = random.Random(f"shift {seed}").uniform(0.01, 0.1)
                centre += shift * nudge * max(abs(centre), mpmath.mpf("0.1"))
                here = Evaluator({**values, symbol: centre}, backend=MPMATH,
                                 resolve=resolve, generic=generic)
            h = DIFFERENCE_STEP
            up, down = loss_at(centre + h), loss_at(centre - h)
            got = here(derivation.result)
            middle = loss_at(centre) if shift else None
        except (TypeError, ValueError, ZeroDivisionError):  # e.g. a max of complex numbers
            if shift:
                raise _OutsideDomain from None
            raise
        if shift and any(isinstance(v, mpmath.mpc) for v in (up, down, middle, got)):
            raise _OutsideDomain
        want = (up - down) / (2 * h)
        err = abs(want - got)
        rel = err / max(abs(want), DIFFERENCE_FLOOR)
        smooth = True
        if rel > NUMERIC_RTOL:  # a kink? (one-sided differences, when the check fails)
            middle = loss_at(centre) if middle is None else middle
            forward, backward = (up - middle) / h, (middle - down) / h
            smooth = abs(forward - backward) <= mpmath.mpf(10) ** -6 * max(
                abs(forward), abs(backward), DIFFERENCE_FLOOR)
    result = ProofResult(node, "differences", rel <= NUMERIC_RTOL, float(err), float(rel))
    return result, smooth, want == 0


#: How each kind of truth reads in the last line of a derivation.
_TRUTHS = {
    "symbolic": "SymPy's diff of the composed C_0 (symbolic: expanding diff(C_0) - result "
                "gives exactly 0)",
    "numeric": "SymPy's diff of the composed C_0 (numeric: at a random point in 30 digits)",
    "jax": "JAX autodiff of the reference forward pass at a random point (float64)",
    "torch": "PyTorch autodiff of the reference forward pass at a random point (float64)",
    "differences": "central differences of the forward pass at a random point (45 digits)",
}


def describe(result: ProofResult) -> str:
    """What the result was checked against, for a reader: 'SymPy's diff of ...', and why
    not against the composed C_0 where it was not."""
    what = _TRUTHS.get(result.method, result.detail)
    return what if result.method in ("symbolic", "numeric") else f"{what}: {result.detail}"


def ensure(derivation: Derivation, *, seed: int = 0, decisive: bool = False,
           force: bool = False, quick: bool = False) -> ProofResult:
    """:func:`truth` (or with ``quick`` the forward pass's central differences alone, for
    many derivations at once), raising :class:`SelfCheckFailed` when the derivation
    differs."""
    result = prove_by_differences(derivation, seed=seed) if quick else \
        truth(derivation, seed=seed, decisive=decisive, force=force)
    if not result.passed:
        raise SelfCheckFailed(
            f"the derived dC_0/d{derivation.target} differs from {describe(result)} "
            f"(relative error {result.max_rel_error:.1e}); nothing was printed")
    return result
