"""Prove derived gradients equal to the truth, three independent ways.

* ``symbolic``: SymPy's plain ``diff`` of the composed C_0 minus the derived result (deltas
  expanded, layered symbols composed back to x, w, b), expanded, is exactly zero.  With the
  generic g everything is a polynomial in g, g' and the variables, so this is decisive.
* ``numeric``: the same two sides evaluated at random points in 30-digit arithmetic, the
  generic g replaced by random smooth functions (a probabilistic identity test).
* ``jax`` / ``torch``: for networks too large to compose, every parameter's derived result
  evaluated in float64 against the array library's autodiff of an independent forward pass.

Each returns :class:`ProofResult` values; :func:`prove_all` gathers every parameter of a
network into a :class:`ProofReport`.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import mpmath
import numpy as np
import sympy

from .budget import COMPOSED_LIMIT, SYMBOLIC_LIMIT, composed_estimate, composed_size
from .graph import SymbolicGraph
from .losses import LOSSES
from .notation import Node, node_of
from .numeric import FLOAT, MPMATH, Evaluator, SmoothFunction, random_smooth_functions
from .progress import progress
from .spec import Spec

if TYPE_CHECKING:
    from .derivation import Backprop, Derivation

__all__ = ["METHODS", "ProofReport", "ProofResult", "definitions_of", "prove",
           "prove_parameters", "random_point"]

METHODS = ("auto", "symbolic", "numeric", "jax", "torch")
#: Relative tolerance of the 30-digit numeric test, and of float64 autodiff comparisons.
NUMERIC_RTOL = mpmath.mpf(10) ** -20
AUTODIFF_RTOL, AUTODIFF_ATOL = 1e-9, 1e-12
#: prove_all proves one parameter after another against the composed C_0 up to this many.
PARAMETER_LIMIT = 400


@dataclass(frozen=True)
class ProofResult:
    """The verdict for one derivative."""

    target: Node
    method: str
    passed: bool
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    detail: str = ""

    def __bool__(self) -> bool:
        return self.passed


@dataclass
class ProofReport:
    """Verdicts for every parameter of a network."""

    spec: Spec
    method: str
    results: list[ProofResult]
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[ProofResult]:
        return [r for r in self.results if not r.passed]

    def summary(self) -> str:
        worst = max((r.max_rel_error for r in self.results), default=0.0)
        verdict = "all equal" if self.passed else f"{len(self.failures)} DIFFER"
        return (f"{len(self.results)} derivatives checked by {self.method}: {verdict} "
                f"(max relative error {worst:.1e}, {self.seconds:.2f} s)")


# ------------------------------------------------------------------ points
def random_point(graph: SymbolicGraph, seed: int = 0) -> dict[sympy.Symbol, float]:
    """Random x, y, w, b; targets in (0.05, 0.95) when the loss takes logs."""
    rng = random.Random(seed)
    rule = LOSSES.get(graph.spec.loss)
    probabilities = rule is not None and rule.needs_probabilities
    values: dict[sympy.Symbol, float] = {}
    for s in graph.x:
        values[s] = rng.uniform(-1, 1)
    for s in graph.y:
        values[s] = rng.uniform(0.05, 0.95) if probabilities else rng.uniform(-1, 1)
    if graph.spec.loss == "cross_entropy":
        # cross-entropy targets are a distribution (one-hot or soft): they sum to exactly 1,
        # which needs numbers without rounding error -- multiples of 2^-20
        total = sum(values[s] for s in graph.y)
        grid = 2.0**20
        for s in graph.y[:-1]:
            values[s] = round(values[s] / total * grid) / grid
        values[graph.y[-1]] = 1 - sum(values[s] for s in graph.y[:-1])
    for node in graph.parameters():
        scale = 1 / max(1, graph.widths[node.layer - 1]) ** 0.5
        values[node.symbol] = rng.uniform(-1.5, 1.5) * scale
    return values


def definitions_of(engine: Backprop):
    """symbol -> what it stands for in the layered view (z and a by their definitions, a
    delta by its compact backward sum), or None for inputs and parameters: the ``resolve``
    an :class:`~symprop.numeric.Evaluator` needs to evaluate a derived result at a point."""
    graph = engine.graph

    def resolve(symbol):
        node = node_of(symbol)
        if node is None:
            return None
        if node.kind in ("delta", "adj"):
            return engine.adjoint_of(node)
        return graph.numeric_definition(symbol)
    return resolve


def _generic_layers(graph: SymbolicGraph, seed: int) -> dict[int, SmoothFunction]:
    return random_smooth_functions(graph.L, seed)


# ------------------------------------------------------------------ targets
def _composed_above(graph: SymbolicGraph, node: Node) -> tuple[sympy.Expr, dict]:
    """C_0 composed down to the target's level, and the map of layered symbols above it.

    For parameters and inputs that is the full composition in x, w, b; for a_k^(l) the
    activations of layer l stay free symbols; for z_j^(l) the pre-activations do.
    """
    if node.is_parameter or node.kind == "x":
        return graph.composed_C0, graph.to_inputs()
    mapping = graph.composed_above(node)
    return graph.loss.xreplace({a: mapping.get(a, a) for a in graph.a[graph.L]}), mapping


# ------------------------------------------------------------------ proofs
def prove(derivation: Derivation, method: str = "auto", *, points: int = 2, seed: int = 0,
          dps: int = 30, force: bool = False) -> ProofResult:
    """Prove one derivation equal to plain differentiation of the composed C_0.

    ``auto`` is the decisive symbolic proof when the composed C_0 is at most
    :data:`~symprop.budget.SYMBOLIC_LIMIT` symbols, else the 30-digit numeric test.  A
    composed C_0 too big to differentiate (a deep or wide network) is refused before any
    work (:class:`~symprop.budget.TooBigError`) unless ``force``.
    """
    estimate = composed_estimate(derivation.graph.spec, derivation.target).check(force)
    if method == "auto":
        method = "symbolic" if estimate.size <= SYMBOLIC_LIMIT else "numeric"
    if method == "symbolic":
        result = _prove_symbolic(derivation)
        if result is not None:
            return result
        method = "numeric"
    if method == "numeric":
        return _prove_numeric(derivation, points=points, seed=seed, dps=dps)
    raise ValueError(f"prove() takes 'symbolic' or 'numeric', not {method!r}; use prove_all() "
                     "for autodiff")


def _prove_symbolic(derivation: Derivation) -> ProofResult | None:
    graph, node = derivation.graph, derivation.target
    composed, mapping = _composed_above(graph, node)
    truth = sympy.diff(composed, derivation.symbol)
    ours = derivation.expanded().xreplace(mapping)
    difference = sympy.expand(truth - ours)
    if difference == 0:
        return ProofResult(node, "symbolic", True, detail="diff(C_0) - result expands to 0")
    # expand() is not a canonical form for exp, log or piecewise terms: a non-zero remainder
    # proves nothing either way, so the numeric test decides.
    return None


def _prove_numeric(derivation: Derivation, *, points: int, seed: int, dps: int) -> ProofResult:
    graph, node = derivation.graph, derivation.target
    composed, _ = _composed_above(graph, node)
    truth = sympy.diff(composed, derivation.symbol)
    worst_abs = worst_rel = mpmath.mpf(0)
    with mpmath.workdps(dps):
        for p in range(points):
            ev = Evaluator(random_point(graph, seed + p), backend=MPMATH,
                           resolve=definitions_of(derivation.engine),
                           generic=_generic_layers(graph, seed + p))
            want, got = ev(truth), ev(derivation.result)
            err = abs(want - got)
            worst_abs = max(worst_abs, err)
            worst_rel = max(worst_rel, err / max(abs(want), mpmath.mpf(10) ** -(dps // 2)))
    passed = worst_rel <= NUMERIC_RTOL
    return ProofResult(node, "numeric", passed, float(worst_abs), float(worst_rel),
                       detail=f"{points} random point(s), {dps} digits, generic g replaced by "
                              "random smooth functions")


def prove_parameters(engine: Backprop, method: str = "auto", *, seed: int = 0,
                     nodes: list[Node] | None = None) -> ProofReport:
    """Derive and prove every parameter's gradient (or those of ``nodes``).

    ``auto`` proves against the composed C_0 (numerically in 30 digits) up to
    :data:`PARAMETER_LIMIT` parameters and :data:`~symprop.budget.COMPOSED_LIMIT` symbols in
    C_0, and against JAX autodiff (float64) above that.
    """
    graph = engine.graph
    nodes = nodes or graph.parameters()
    if method == "auto":
        small = (graph.spec.n_parameters <= PARAMETER_LIMIT
                 and composed_size(graph.spec, 1) <= COMPOSED_LIMIT)
        method = "numeric" if small else "jax"
    start = time.perf_counter()
    if method in ("jax", "torch"):
        results = _prove_autodiff(engine, nodes, method, seed)
    else:
        results = [prove(engine.derive(n), method, seed=seed, points=1)
                   for n in progress(nodes, what=f"proving ({method})")]
    return ProofReport(graph.spec, method, results, time.perf_counter() - start)


def _param_arrays(graph: SymbolicGraph, values: dict) -> dict[str, np.ndarray]:
    """The module's parameter arrays (W1, b1, gamma2, c4, ...) at a point's values."""
    arrays = {}
    for l, p in graph.spec.parameters():
        array = np.empty(p.shape)
        for index in np.ndindex(*p.shape):
            array[index] = values[Node(p.kind, l, *index).symbol]
        arrays[f"{p.key}{l}"] = array
    return arrays


def _array_entry(graph: SymbolicGraph, arrays: dict[str, np.ndarray], node: Node) -> float:
    key = next(p.key for l, p in graph.spec.parameters() if l == node.layer and p.kind == node.kind)
    return float(arrays[f"{key}{node.layer}"][node.indices])


def _prove_autodiff(engine: Backprop, nodes: list[Node], backend: str, seed: int
                    ) -> list[ProofResult]:
    from .reference import gradient

    graph = engine.graph
    values = random_point(graph, seed)
    generic = _generic_layers(graph, seed)

    def reference_gradients():
        X = np.array([[values[s] for s in graph.x]])
        Y = np.array([[values[s] for s in graph.y]])
        return gradient(backend, graph.spec, _param_arrays(graph, values), X, Y, generic)[1]
    # one autodiff pass gives every parameter: kept for the engine's later proofs
    reference = engine._cached(("autodiff", backend, seed), reference_gradients)
    ev = Evaluator(values, backend=FLOAT, resolve=definitions_of(engine), generic=generic)
    results = []
    for node in nodes:
        got = ev(engine.gradient(node))
        want = _array_entry(graph, reference, node)
        err = abs(got - want)
        rel = err / max(abs(want), AUTODIFF_ATOL)
        results.append(ProofResult(node, backend, err <= AUTODIFF_ATOL + AUTODIFF_RTOL * abs(want),
                                   err, rel))
    return results
