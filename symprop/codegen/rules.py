"""From the derivation to array code: the forms one generated line evaluates.

Everything here is read off the chain-rule engine (:class:`~symprop.derivation.Backprop`)
and SymPy, never typed in per activation or loss:

* :func:`activation_code` -- the forward a = g(z) in stable form (:mod:`.stable`) and g',
  written through the output a where SymPy finds such a form (sigma' = a (1 - a),
  tanh' = 1 - a^2, see :meth:`~symprop.activations.ActivationPrime.through_output`), so the
  backward pass reuses forward values; otherwise SymPy's diff of the stable forward.
* :func:`output_code` -- delta^(L) = dC_0/dz^(L) for a whole row of output nodes.  For an
  elementwise output it is dC_0/da times g', simplified by SymPy (sigmoid with binary
  cross-entropy becomes a - y).  For softmax the engine's Jacobian entries are split into a
  diagonal part and a separable part f(a_i) h(a_m), which gives delta without a Python loop:
  delta_m = dC_0/da_m d(a_m) + h(a_m) sum_i dC_0/da_i f(a_i) (cross-entropy: a sum(y) - y).
  The per-node loss is rewritten through z (log softmax, softplus) so it never takes log 0.

Row placeholders :data:`Z`, :data:`A`, :data:`Y` stand for a layer's matrices (one sample per
row); :class:`~symprop.codegen.stable.RowSum` sums over a row's nodes.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass

import sympy

from ..activations import (
    ActivationPrime,
    ElementwiseActivation,
    GenericActivation,
    Softmax,
    X,
)
from ..derivation import Backprop
from .printer import _generic_error
from .stable import RowSum, SoftmaxRow, rewrite_stable

__all__ = [
    "A",
    "ActivationCode",
    "OutputCode",
    "Y",
    "Z",
    "activation_code",
    "output_code",
    "stable_loss_term",
    "tidy",
]

#: Placeholders for one layer's matrices in the row forms (printed as the helper's arguments).
Z, A, Y = sympy.symbols("z a y", real=True)


@dataclass(frozen=True)
class ActivationCode:
    """How generated code evaluates one activation and its derivative."""

    #: A Python identifier for the module's helpers (``sigmoid``, ``leaky_relu_0p2``).
    key: str
    #: The activation's name in comments (``sigma``, ``leaky_relu(0.2)``).
    label: str
    #: a = forward(z), in :data:`Z`.
    forward: sympy.Expr
    #: g'(z) in :data:`A` and/or :data:`Z`; None for softmax (see :func:`output_code`).
    prime: sympy.Expr | None
    #: True when ``prime`` is written through the output a = g(z) only.
    through_output: bool = False

    @property
    def prime_is_constant(self) -> bool:
        return self.prime is not None and not self.prime.free_symbols


@dataclass(frozen=True)
class OutputCode:
    """The output layer's backward start and the loss, as row forms in z, a, y."""

    #: dC_0/da_j^(L) for one node (documentation and the scalar style).
    loss_derivative: sympy.Expr
    #: delta^(L) = dC_0/dz^(L), one entry per output node; may contain RowSum.
    delta: sympy.Expr
    #: The loss of one output node; the batch loss sums it over nodes and reduces over rows.
    loss: sympy.Expr
    #: How delta was obtained, for the module's comments.
    how: str

    @property
    def cautions(self) -> list[str]:
        """What the stable-form table could not remove: divisions and logs of a or y."""
        notes = []
        if _divisions(self.delta):
            notes.append(f"delta^(L) = {self.delta} divides by a quantity that can round to 0 "
                         "when an output saturates (no overflow-safe form is known to symprop "
                         "for this activation and loss)")
        logs = [f for f in self.loss.atoms(sympy.log) if f.args[0].free_symbols]
        if logs:
            notes.append(f"the loss takes {', '.join(map(str, logs))}, which is -inf when its "
                         "argument rounds to 0")
        return notes


def _identifier(name: str) -> str:
    return re.sub(r"\W", "_", name).strip("_") or "activation"


def _divisions(expr: sympy.Expr) -> int:
    """How many divisions by a variable quantity: each is a chance to divide by 0."""
    return sum(1 for p in expr.atoms(sympy.Pow) if p.exp.is_negative and p.base.free_symbols)


def tidy(expr: sympy.Expr) -> sympy.Expr:
    """The simplest of SymPy's equivalent forms: fewest divisions, then fewest operations."""
    candidates = [expr]
    for simplify in (sympy.cancel, sympy.factor, sympy.expand):
        try:
            candidates.append(simplify(expr))
        except (sympy.PolynomialError, NotImplementedError, TypeError, ValueError):
            continue
    return min(candidates, key=lambda e: (_divisions(e), sympy.count_ops(e)))


def _check_identity(stable: sympy.Expr, original: sympy.Expr, what: str) -> None:
    """Guard the rewrite table: ``stable`` must equal ``original`` (30 digits, 6 points)."""
    rng = random.Random(7)
    plain = stable.rewrite(sympy.exp)
    for _ in range(6):
        point = sympy.Float(rng.uniform(-3, 3), 30)
        lhs = plain.evalf(30, subs={X: point})
        rhs = original.evalf(30, subs={X: point})
        if abs(sympy.N(lhs - rhs, 30)) > sympy.Float(10) ** -20 * (1 + abs(rhs)):
            raise AssertionError(f"stable form of {what} differs from its definition at "
                                 f"x = {point}: {stable} vs {original}")


@functools.cache
def activation_code(cls: type) -> ActivationCode:
    """The generated-code forms of an activation class (cached per class)."""
    if cls is Softmax:
        return ActivationCode("softmax", "softmax", SoftmaxRow(Z), None)
    if issubclass(cls, GenericActivation) or cls.definition is None:
        raise _generic_error(cls(Z))
    assert issubclass(cls, ElementwiseActivation)
    stable = rewrite_stable(cls.definition)
    _check_identity(stable, cls.definition, cls.text_name)
    prime_cls: type[ActivationPrime] = cls.prime
    through = prime_cls.through_output_factored()
    if through is not None:
        from ..activations import A as A_OUTPUT

        prime = through.xreplace({A_OUTPUT: A})
    else:
        derivative = sympy.diff(stable, X)
        _check_identity(derivative, prime_cls.definition, cls.text_name + "'")
        prime = derivative.xreplace({X: Z})
    return ActivationCode(_identifier(cls.__name__), cls.text_name, stable.xreplace({X: Z}),
                          prime, through_output=through is not None)


def _separable_jacobian(engine: Backprop, layer: int, derivative):
    """Split softmax-like Jacobian entries J(i, m) = delta_im d(a_i) + f(a_i) h(a_m)
    (``derivative(i, m)``: da_i / d(the activation's input m))."""
    g = engine.graph
    a = g.a[layer]
    parts = sympy.separatevars(derivative(0, 1), symbols=[a[0], a[1]], dict=True)
    if parts is None:
        raise NotImplementedError(f"layer {layer}: the Jacobian is not separable")
    f = parts["coeff"] * parts.get(a[0], 1)
    h = parts.get(a[1], sympy.S.One)
    d = sympy.expand(derivative(0, 0) - f * h.xreplace({a[1]: a[0]}))
    n = len(a)
    for i, m in {(0, 1), (1, 0), (n - 1, 0), (0, n - 1), (n - 1, n - 1)}:
        expected = derivative(i, m)
        split = f.xreplace({a[0]: a[i]}) * h.xreplace({a[1]: a[m]})
        if i == m:
            split += d.xreplace({a[0]: a[i]})
        if sympy.expand(expected - split) != 0:
            raise AssertionError(f"layer {layer}: Jacobian split fails at ({i}, {m})")
    return (f.xreplace({a[0]: A}), h.xreplace({a[1]: A}), d.xreplace({a[0]: A}))


def stable_loss_term(term: sympy.Expr, a: sympy.Symbol, forward: sympy.Expr,
                     output: sympy.Symbol) -> sympy.Expr:
    """A loss term in ``a`` with logs of a rewritten through z: a -> forward(z), apply the
    stable table, then name what is left of forward(z) ``output`` (reusing the forward pass)."""
    return rewrite_stable(term.xreplace({a: forward})).xreplace({forward: output})


def output_code(engine: Backprop) -> OutputCode:
    """delta^(L) and the stable loss of one output row, from the engine's results.

    The output layer's activation -- of a dense layer, or an activation layer whose input
    then plays z -- meets the loss here, so their combined form is stable (softmax and
    cross-entropy: a sum(y) - y); an output of another kind passes dC_0/da^(L) back as it is.
    """
    g = engine.graph
    L = g.L
    layer = g.layers[L]
    dC_da = engine.loss_derivative(0).xreplace({g.a[L][0]: A, g.y[0]: Y})
    if layer.kind not in ("dense", "activation"):
        loss = g.loss_terms[0].xreplace({g.a[L][0]: A, g.y[0]: Y})
        return OutputCode(loss_derivative=dC_da, delta=tidy(dC_da), loss=loss,
                          how="the loss's derivative, simplified by SymPy")
    pre = g.z[L] if layer.kind == "dense" else layer.below

    def derivative(i, m):
        if layer.kind == "dense":
            return engine.activation_derivative(L, i, m)
        return layer.local(i, pre[m])
    dC_da = dC_da.xreplace({pre[0]: Z})
    act = activation_code(g.activation[L])
    if g.is_elementwise(L):
        delta = tidy(dC_da * act.prime)
        how = f"dC_0/da^(L) * {act.label}'(z^(L)), simplified by SymPy"
    else:
        f, h, d = _separable_jacobian(engine, L, derivative)
        delta = tidy(dC_da * d) + h * RowSum(tidy(dC_da * f))
        how = (f"sum_i dC_0/da_i^(L) da_i^(L)/dz_m^(L) with the {act.label} Jacobian "
               "split into its diagonal and a rank-one part, simplified by SymPy")
    loss = stable_loss_term(g.loss_terms[0].xreplace({g.y[0]: Y}), g.a[L][0], act.forward, A)
    return OutputCode(loss_derivative=dC_da, delta=delta, loss=loss, how=how)
