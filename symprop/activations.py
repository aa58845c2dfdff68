"""Activation functions: one table entry each, holding the SymPy expression.

Every elementwise activation becomes a pair of SymPy ``Function`` classes, ``g`` and ``g'``:

* ``g(z)`` differentiates to ``g'(z)`` (its :meth:`fdiff`), so derivations read
  ``g'^{(l)}(z_j^{(l)})`` exactly as seed 000 writes them, for the generic ``g`` and for a
  concrete activation alike;
* ``g'`` of a concrete activation carries ``definition`` = SymPy's own ``diff`` of the
  activation's expression (no second hand-written table of derivatives), and, where SymPy
  can express it through the output ``a = g(z)``, ``through_output`` (sigma' = a(1 - a),
  tanh' = 1 - a^2).

The generic ``g`` is one undefined function per layer: it has no definition, and proofs
replace it by random smooth functions.  ``softmax`` is a vector activation,
:class:`Softmax`, whose Jacobian ``a_i (delta_im - a_m)`` is not diagonal.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import mpmath
import sympy
from sympy import Function, KroneckerDelta

__all__ = [
    "ACTIVATIONS",
    "A",
    "ActivationPrime",
    "ActivationRule",
    "ElementwiseActivation",
    "GenericActivation",
    "GenericActivationPrime",
    "Softmax",
    "X",
    "absorb_sign",
    "activation_class",
    "custom_activation_class",
    "generic_activation",
]

#: The variable activation expressions are written in.
X = sympy.Symbol("x", real=True)
#: The activation output, used by :attr:`ActivationPrime.through_output`.
A = sympy.Symbol("a", real=True)


class ElementwiseActivation(Function):
    """An activation applied node by node: ``a_j = g(z_j)``."""

    nargs = 1
    #: The activation as an expression in :data:`X` (``None`` for the generic g).
    definition: ClassVar[sympy.Expr | None] = None
    #: How printers name it: text and LaTeX.
    text_name: ClassVar[str] = "g"
    latex_name: ClassVar[str] = "g"
    #: The matching derivative class, set by the factory.
    prime: ClassVar[type[ActivationPrime]]

    def fdiff(self, argindex=1):
        """d g(z)/dz is g'(z): keeps derivations in the seed's notation."""
        return self.prime(self.args[0])

    @classmethod
    def explicit(cls, arg: sympy.Expr) -> sympy.Expr:
        """The activation written out, e.g. ``1/(1 + exp(-z))`` for sigmoid."""
        if cls.definition is None:
            return cls(arg)
        return cls.definition.xreplace({X: arg})


class ActivationPrime(Function):
    """The derivative g' of an elementwise activation."""

    nargs = 1
    base: ClassVar[type[ElementwiseActivation]]
    definition: ClassVar[sympy.Expr | None] = None

    def fdiff(self, argindex=1):
        """Second derivative, from SymPy's diff of the first (used by nothing in backprop)."""
        if self.definition is None:
            return super().fdiff(argindex)
        return sympy.diff(self.definition, X).xreplace({X: self.args[0]})

    @classmethod
    def explicit(cls, arg: sympy.Expr) -> sympy.Expr:
        """g'(z) written out from SymPy's derivative of the definition."""
        if cls.definition is None:
            return cls(arg)
        return cls.definition.xreplace({X: arg})

    @classmethod
    def through_output(cls) -> sympy.Expr | None:
        """g' as a polynomial in the output a = g(z), if there is one of degree <= 2."""
        return _through_output(cls)

    @classmethod
    def through_output_factored(cls) -> sympy.Expr | None:
        """:meth:`through_output` in its shortest form: a(1 - a) rather than a - a^2."""
        through = cls.through_output()
        if through is None:
            return None
        forms = [absorb_sign(sympy.factor(through)), sympy.expand(through)]
        return min(forms, key=sympy.count_ops)


class GenericActivation(ElementwiseActivation):
    """The undefined activation g^{(l)} of seed 000; one class per layer."""

    layer: ClassVar[int]


class GenericActivationPrime(ActivationPrime):
    """g'^{(l)}: the derivative of the undefined activation of layer l."""

    layer: ClassVar[int]


class Softmax(Function):
    """``Softmax(i, z_0, ..., z_{n-1})`` = exp(z_i) / sum_m exp(z_m): a vector activation.

    Its Jacobian is d a_i / d z_m = a_i (delta_im - a_m), not diagonal.
    """

    text_name: ClassVar[str] = "softmax"
    latex_name: ClassVar[str] = r"\operatorname{softmax}"

    @property
    def index(self) -> int:
        return int(self.args[0])

    @property
    def inputs(self) -> tuple[sympy.Expr, ...]:
        return self.args[1:]

    def fdiff(self, argindex=1):
        """Jacobian entry a_i (delta_im - a_m) for argument z_m (argindex m + 2)."""
        if argindex == 1:
            raise sympy.ArgumentIndexError(self, argindex)
        m = argindex - 2
        other = Softmax(m, *self.inputs)
        return self * (KroneckerDelta(self.index, m) - other)

    def _eval_rewrite_as_exp(self, *args, **kwargs):
        inputs = args[1:]
        return sympy.exp(inputs[int(args[0])]) / sympy.Add(*[sympy.exp(z) for z in inputs])


@dataclass(frozen=True)
class ActivationRule:
    """One row of the activation table."""

    name: str
    #: Builds the expression in X from the numeric parameters; None for generic/vector.
    build: Callable[..., sympy.Expr] | None
    text_name: str
    latex_name: str
    defaults: tuple[float, ...] = ()
    vector: bool = False
    generic: bool = False


def _piecewise_linear(slope):
    return sympy.Piecewise((X, X > 0), (slope * X, True))


ACTIVATIONS: dict[str, ActivationRule] = {
    rule.name: rule
    for rule in [
        ActivationRule("g", None, "g", "g", generic=True),
        ActivationRule("identity", lambda: X, "id", r"\operatorname{id}"),
        ActivationRule("sigmoid", lambda: 1 / (1 + sympy.exp(-X)), "sigma", r"\sigma"),
        ActivationRule("tanh", lambda: sympy.tanh(X), "tanh", r"\tanh"),
        ActivationRule("relu", lambda: sympy.Max(0, X), "relu", r"\operatorname{ReLU}"),
        ActivationRule("leaky_relu", _piecewise_linear, "leaky_relu",
                       r"\operatorname{LeakyReLU}", defaults=(0.01,)),
        ActivationRule("softplus", lambda: sympy.log(1 + sympy.exp(X)), "softplus",
                       r"\operatorname{softplus}"),
        ActivationRule("elu", lambda alpha: sympy.Piecewise(
            (X, X > 0), (alpha * (sympy.exp(X) - 1), True)), "elu", r"\operatorname{ELU}",
            defaults=(1,)),
        ActivationRule("swish", lambda: X / (1 + sympy.exp(-X)), "swish",
                       r"\operatorname{swish}"),
        ActivationRule("softmax", None, "softmax", r"\operatorname{softmax}", vector=True),
    ]
}


def _number(value: float) -> sympy.Expr:
    """Parameters such as a leaky slope become exact rationals when they are short decimals."""
    return sympy.nsimplify(value, rational=True) if len(repr(value)) < 12 else sympy.Float(value)


def _make_pair(class_name: str, text_name: str, latex_name: str,
               definition: sympy.Expr | None, base=ElementwiseActivation,
               prime_base=ActivationPrime, **attrs) -> type[ElementwiseActivation]:
    prime_definition = None if definition is None else sympy.diff(definition, X)
    cls = type(class_name, (base,), {"definition": definition, "text_name": text_name,
                                     "latex_name": latex_name, **attrs})
    prime = type(class_name + "_prime", (prime_base,),
                 {"definition": prime_definition, "base": cls, **attrs})
    cls.prime = prime
    return cls


@functools.cache
def activation_class(name: str, params: tuple[float, ...] = ()) -> type:
    """The SymPy class of a built-in activation; the same object for the same arguments.

    Returns :class:`Softmax` for ``softmax``.  The generic ``g`` needs a layer: use
    :func:`generic_activation`.
    """
    rule = ACTIVATIONS[name]
    if rule.vector:
        return Softmax
    if rule.generic:
        raise ValueError("the generic g is one function per layer: use generic_activation()")
    args = tuple(_number(p) for p in (params or rule.defaults))
    suffix = "" if not params or tuple(params) == rule.defaults else "_" + "_".join(
        str(p).replace(".", "p").replace("-", "m") for p in params)
    text = rule.text_name + (f"({', '.join(map(str, params))})" if suffix else "")
    return _make_pair(rule.name + suffix, text, rule.latex_name, rule.build(*args))


@functools.cache
def custom_activation_class(name: str, definition: sympy.Expr) -> type[ElementwiseActivation]:
    """A spec's user-defined activation; its derivative is SymPy's diff of ``definition``."""
    latex = r"\operatorname{" + name.replace("_", r"\_") + "}"
    return _make_pair(name, name, latex, definition)


@functools.cache
def generic_activation(layer: int) -> type[GenericActivation]:
    """g^{(layer)}: an undefined activation, with g'^{(layer)} as its derivative."""
    return _make_pair(f"g{layer}", "g", "g", None, base=GenericActivation,
                      prime_base=GenericActivationPrime, layer=layer)


def absorb_sign(expr: sympy.Expr) -> sympy.Expr:
    """-a (a - 1) -> a (1 - a): a leading minus goes into a sum factor (one operation less)."""
    coeff, rest = expr.as_coeff_Mul()
    if coeff.is_negative:
        factors = list(sympy.Mul.make_args(rest))
        for n, f in enumerate(factors):
            if f.is_Add:
                factors[n] = -f
                return sympy.Mul(-coeff, *factors)
    return expr


@functools.cache
def _through_output(prime: type[ActivationPrime]) -> sympy.Expr | None:
    """Find c0 + c1 a + c2 a^2 equal to g'(x) with a = g(x), and prove it at many points.

    Coefficients come from three sample points; the identity is then confirmed at ten more
    random points in 50-digit arithmetic, which a wrong guess passes with probability zero.
    """
    base = prime.base
    if base.definition is None or prime.definition is None:
        return None
    f = sympy.lambdify(X, base.definition, modules="mpmath")
    d = sympy.lambdify(X, prime.definition, modules="mpmath")
    rng = random.Random(1234)
    with mpmath.workdps(50):
        try:
            points = [mpmath.mpf(p) for p in ("-0.7", "0.3", "1.1")]
            rows = [[1, f(p), f(p) ** 2] for p in points]
            coeffs = mpmath.lu_solve(mpmath.matrix(rows), mpmath.matrix([d(p) for p in points]))
            for _ in range(10):
                p = mpmath.mpf(rng.uniform(-3, 3))
                lhs = coeffs[0] + coeffs[1] * f(p) + coeffs[2] * f(p) ** 2
                if abs(lhs - d(p)) > mpmath.mpf(10) ** -35:
                    return None
        except (ZeroDivisionError, ValueError, TypeError, ArithmeticError):
            return None
    terms = [sympy.nsimplify(float(c), rational=True, tolerance=1e-12) for c in coeffs]
    return sympy.expand(terms[0] + terms[1] * A + terms[2] * A**2)
