"""Evaluate SymPy expressions of a network at a point, in float64 or in many digits.

:class:`Evaluator` walks an expression tree with one rule per node type (the table
:data:`_RULES`), memoizing every subexpression, so shared pieces -- a delta used by every
weight of its row, a composed z used by every path -- are computed once.  Symbols without a
value are resolved through their layered definitions (z, a, delta), which is how a compact
result is evaluated at a point.

The generic activation g^(l) has no definition; :func:`random_smooth_functions` gives
each layer a random smooth stand-in and its exact derivative, so a proof holds for "any" g
with probability one.
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass

import mpmath
import sympy

from .activations import ActivationPrime, ElementwiseActivation, GenericActivation, Softmax

__all__ = ["FLOAT", "MPMATH", "Backend", "Evaluator", "Products", "SmoothFunction",
           "random_smooth_functions"]


@dataclass(frozen=True)
class Backend:
    """Number type and elementary functions: float64 (``math``) or ``mpmath``."""

    name: str
    number: Callable
    lib: object

    def function(self, name: str) -> Callable:
        return getattr(self.lib, name)


FLOAT = Backend("float", float, math)
MPMATH = Backend("mpmath", mpmath.mpf, mpmath)


@dataclass(frozen=True)
class SmoothFunction:
    """g(x) = alpha tanh(beta x + gamma) + eps x: smooth, random, with exact g'."""

    alpha: float
    beta: float
    gamma: float
    eps: float

    def value(self, lib, x):
        return self.alpha * lib.tanh(self.beta * x + self.gamma) + self.eps * x

    def prime(self, lib, x):
        # alpha * (beta / ...): alpha * beta first would round to a float before mpmath's
        # 30 or 40 digits see it, and the value and its derivative would disagree at 1e-17
        return self.alpha * (self.beta / lib.cosh(self.beta * x + self.gamma) ** 2) + self.eps


def random_smooth_functions(layers: int, seed: int = 0) -> dict[int, SmoothFunction]:
    """One random smooth stand-in for g^(l) per layer 1..layers."""
    rng = random.Random(seed)
    return {l: SmoothFunction(rng.uniform(0.5, 1.5), rng.uniform(0.5, 1.5),
                              rng.uniform(-0.5, 0.5), rng.uniform(0.05, 0.3))
            for l in range(1, layers + 1)}


#: Python frames an evaluation may take: a symbol resolves through its definition, so a
#: delta of layer 1 of a 40-layer network nests every layer above it (about 25 frames each).
DEPTH = 20_000


class Products:
    """sum_k u_k v_k (+ ``extra``): a definition that evaluates term by term without
    building SymPy's sum (a dense z of a 1000-wide layer is 1000 products; SymPy's Add of
    them cost 0.1 s each, 250 s for a 1000-1000-1000-10 network's forward pass)."""

    __slots__ = ("extra", "pairs")

    def __init__(self, pairs, extra: sympy.Expr | None = None):
        self.pairs = pairs
        self.extra = extra

    def evaluate(self, ev: Evaluator):
        total = sum(ev(u) * ev(v) for u, v in self.pairs)
        return total + ev(self.extra) if self.extra is not None else total


class Evaluator:
    """Numeric value of expressions at one point.

    ``values`` maps symbols to numbers; ``resolve(symbol)`` returns the definition of a
    symbol that has no value (or None); ``generic`` maps a layer to the stand-in for g^(l).
    An outermost call may nest :data:`DEPTH` frames deep (the limit is restored after it).
    """

    def __init__(self, values: dict, *, backend: Backend = FLOAT,
                 resolve: Callable[[sympy.Symbol], sympy.Expr | None] | None = None,
                 generic: dict[int, SmoothFunction] | None = None,
                 rules: dict[type, Callable] | None = None):
        self.backend = backend
        self.values = {s: backend.number(v) for s, v in values.items()}
        self.resolve = resolve
        self.generic = generic or {}
        #: Extra rules (expression class -> rule(evaluator, expr)) tried before the table.
        self.rules = rules or {}
        self._memo: dict = {}
        self._outermost = True

    def __call__(self, expr: sympy.Basic):
        try:
            return self._memo[expr]
        except KeyError:
            pass
        if self._outermost:
            self._outermost, limit = False, sys.getrecursionlimit()
            sys.setrecursionlimit(max(limit, DEPTH))
            try:
                value = self._evaluate(expr)
            finally:
                self._outermost = True
                sys.setrecursionlimit(limit)
        else:
            value = self._evaluate(expr)
        self._memo[expr] = value
        return value

    def _evaluate(self, expr):
        for cls in type(expr).__mro__:
            rule = self.rules.get(cls) or _RULES.get(cls)
            if rule is not None:
                return rule(self, expr)
        if hasattr(expr, "numeric"):  # a layer kind's own function (a window's first max)
            return expr.numeric(self)
        if isinstance(expr, sympy.Function):
            return self.backend.function(type(expr).__name__.lower())(
                *[self(a) for a in expr.args])
        raise TypeError(f"cannot evaluate {type(expr).__name__}: {expr}")

    # ------------------------------------------------------------------ rules
    def symbol(self, s):
        if s in self.values:
            return self.values[s]
        definition = self.resolve(s) if self.resolve else None
        if definition is None:
            raise KeyError(f"no value for the symbol {s}")
        if isinstance(definition, Products):
            return definition.evaluate(self)
        return self(definition)

    def activation(self, e):
        cls, x = type(e), self(e.args[0])
        lib = self.backend.lib
        if isinstance(e, GenericActivation):
            return self.generic[cls.layer].value(lib, x)
        if isinstance(e, ActivationPrime) and issubclass(cls.base, GenericActivation):
            return self.generic[cls.base.layer].prime(lib, x)
        return self._definition(cls)(x)

    def _definition(self, cls) -> Callable:
        key = (cls, self.backend.name)
        fn = _DEFINITIONS.get(key)
        if fn is None:
            from .activations import X

            module = "mpmath" if self.backend is MPMATH else "math"
            fn = _DEFINITIONS[key] = sympy.lambdify(X, cls.definition, modules=[module])
        return fn

    def softmax(self, e):
        zs = [self(z) for z in e.inputs]
        top = max(zs)
        exps = [self.backend.lib.exp(z - top) for z in zs]
        return exps[e.index] / sum(exps)

    def piecewise(self, e):
        for value, condition in e.args:
            if condition is sympy.true or self(condition):
                return self(value)
        raise ValueError(f"no branch of {e} applies")


_DEFINITIONS: dict = {}

_COMPARE = {
    sympy.StrictGreaterThan: lambda p, q: p > q,
    sympy.GreaterThan: lambda p, q: p >= q,
    sympy.StrictLessThan: lambda p, q: p < q,
    sympy.LessThan: lambda p, q: p <= q,
    sympy.Equality: lambda p, q: p == q,
}


def _product(ev, e):
    out = ev.backend.number(1)
    for arg in e.args:
        out = out * ev(arg)
    return out


def _sum(ev, e):
    out = ev.backend.number(0)
    for arg in e.args:
        out = out + ev(arg)
    return out


def _power(ev, e):
    base, exp = e.args
    if exp.is_Integer:
        return ev(base) ** int(exp)
    return ev(base) ** ev(exp)


def _heaviside(ev, e):
    x = ev(e.args[0])
    return ev.backend.number(1 if x > 0 else (0 if x < 0 else 0.5))


_RULES: dict[type, Callable] = {
    sympy.Symbol: Evaluator.symbol,
    sympy.Integer: lambda ev, e: ev.backend.number(int(e)),
    sympy.Rational: lambda ev, e: ev.backend.number(int(e.p)) / int(e.q),
    sympy.Float: lambda ev, e: ev.backend.number(str(e)) if ev.backend is MPMATH else float(e),
    sympy.NumberSymbol: lambda ev, e: ev.backend.number(e.evalf(40)) if ev.backend is MPMATH
    else float(e),
    sympy.Add: _sum,
    sympy.Mul: _product,
    sympy.Pow: _power,
    ElementwiseActivation: Evaluator.activation,
    ActivationPrime: Evaluator.activation,
    Softmax: Evaluator.softmax,
    sympy.KroneckerDelta: lambda ev, e: ev.backend.number(int(ev(e.args[0]) == ev(e.args[1]))),
    sympy.Piecewise: Evaluator.piecewise,
    sympy.Heaviside: _heaviside,
    sympy.Max: lambda ev, e: max(ev(a) for a in e.args),
    sympy.Min: lambda ev, e: min(ev(a) for a in e.args),
    sympy.Abs: lambda ev, e: abs(ev(e.args[0])),
    sympy.And: lambda ev, e: all(ev(a) for a in e.args),
    sympy.logic.boolalg.BooleanTrue: lambda ev, e: True,
    sympy.logic.boolalg.BooleanFalse: lambda ev, e: False,
}
for _cls, _cmp in _COMPARE.items():
    _RULES[_cls] = lambda ev, e, _cmp=_cmp: _cmp(ev(e.args[0]), ev(e.args[1]))
