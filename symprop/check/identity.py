"""Are two expressions of a network the same function?  Numerically always, symbolically when
that is decisive.

* :func:`make_probes`: random points of the network -- inputs, targets and parameters, one
  set of inputs and targets per sample of a small batch, and the generic g^(l) replaced by a
  random smooth function per layer and point -- evaluated in float64 or in many digits.
* :func:`symbolic_equal`: with only generic activations and a polynomial loss, every quantity
  is a polynomial in the g and g' applications and the variables, so expanding the difference
  of the two sides, composed down to x, w and b, decides equality exactly.  Otherwise it
  returns None and the numeric test alone decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mpmath
import sympy

from ..activations import ActivationPrime, GenericActivation, Softmax
from ..chain import BATCH_SIZE
from ..derivation import Backprop
from ..formula.meaning import AtSample, BatchSum
from ..numeric import FLOAT, MPMATH, Backend, Evaluator, SmoothFunction, random_smooth_functions
from ..proof import definitions_of, random_point

__all__ = ["DIGITS", "FLOAT", "MPMATH", "Probe", "agree", "make_probes", "ratio", "symbolic_equal"]

#: Working precision of the numeric identity test, and its relative tolerance.
DIGITS = 30
RTOL = {"mpmath": mpmath.mpf(10) ** -20, "float": 1e-9}
BATCH = 3


@dataclass
class Probe:
    """One random point: the values of every sample and the stand-ins for the generic g."""

    seed: int
    backend: Backend
    values: list[dict]
    generic: dict[int, SmoothFunction]
    evaluators: list[Evaluator] = field(default_factory=list, repr=False)

    def __call__(self, expr: sympy.Expr):
        """The value of ``expr`` at this point (sample 0 for per-sample quantities)."""
        try:
            if self.backend is MPMATH:
                with mpmath.workdps(DIGITS):
                    value = self.evaluators[0](expr)
            else:
                value = self.evaluators[0](expr)
        except (ZeroDivisionError, OverflowError, ValueError, TypeError):
            return None  # undefined here (a log of a negative number, a complex constant)
        if isinstance(value, complex | mpmath.mpc):  # a negative base to a real power
            return None if value.imag != 0 else value.real
        return value


def make_probes(engine: Backprop, count: int, *, backend: Backend = MPMATH, seed: int = 0,
                batch: int = BATCH) -> list[Probe]:
    """``count`` random points of ``engine``'s network, each with a batch of ``batch`` samples."""
    graph = engine.graph
    resolve = definitions_of(engine)
    probes = []
    for p in range(count):
        point_seed = seed * 7919 + p
        base = random_point(graph, point_seed)
        samples = [base]
        for s in range(1, batch):
            other = random_point(graph, point_seed * 131 + s + 1)
            samples.append({**base, **{v: other[v] for v in (*graph.x, *graph.y)}})
        for values in samples:
            values[BATCH_SIZE] = batch
        generic = random_smooth_functions(graph.L, point_seed)
        probe = Probe(point_seed, backend, samples, generic)
        rules = {
            BatchSum: lambda ev, e, probe=probe: sum(
                (other(e.args[0]) for other in probe.evaluators[1:]),
                probe.evaluators[0](e.args[0])),
            AtSample: lambda ev, e, probe=probe: probe.evaluators[int(e.args[0])](e.args[1]),
        }
        probe.evaluators = [Evaluator(v, backend=backend, resolve=resolve, generic=generic,
                                      rules=rules) for v in samples]
        probes.append(probe)
    return probes


def agree(u, v, backend: Backend) -> bool:
    """Equal to the test's precision (relative, with a floor for values that are zero)."""
    if u is None or v is None:
        return False
    rtol = RTOL[backend.name]
    scale = max(abs(u), abs(v))
    return abs(u - v) <= rtol * scale + rtol * 1e-6


def ratio(u, v):
    """u / v, or None when it is undefined."""
    if u is None or v is None or v == 0:
        return None
    return u / v


def symbolic_equal(engine: Backprop, lhs: sympy.Expr, rhs: sympy.Expr) -> bool | None:
    """Decide lhs == rhs as functions of x, y, w, b when the algebra is polynomial, else None."""
    graph = engine.graph
    if not all(issubclass(c, GenericActivation) for c in graph.activation.values()):
        return None
    if not graph.loss.is_polynomial(*graph.a[graph.L], *graph.y):
        return None
    for side in (lhs, rhs):
        if side.has(BatchSum, AtSample, Softmax):
            return None
        for f in side.atoms(sympy.Function):
            if not isinstance(f, GenericActivation | ActivationPrime) or (
                    isinstance(f, ActivationPrime) and not issubclass(f.base, GenericActivation)):
                return None
    mapping = graph.to_inputs()
    difference = (engine.expand_deltas(lhs) - engine.expand_deltas(rhs)).xreplace(mapping)
    return sympy.expand(difference) == 0

