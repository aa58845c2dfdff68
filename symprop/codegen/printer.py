"""``NumpyCodePrinter``: SymPy's ``NumPyPrinter`` with the few changes generated modules need.

Each override says why.  Everything else (operators, powers, known functions such as
``tanh``, ``exp``, ``expm1``) is SymPy's own printing.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import sympy
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE

from ..activations import ActivationPrime, ElementwiseActivation
from ..errors import InputError
from .stable import Sigmoid

__all__ = ["HELPERS", "ArrayCodeNames", "NumpyCodePrinter", "inplace_statements", "ufunc_name"]

#: Helper functions a printed expression may call; the module template defines the ones used.
HELPERS = ("sigmoid", "softmax", "log_softmax", "softmax_keep_log", "erf")


class ArrayCodeNames:
    """What symprop's array-code printers (NumPy, torch) share, mixed in before SymPy's
    printer: network symbols under their names in the module, the generic activation
    refused, relu's step as a comparison, max, min and piecewise forms elementwise."""

    #: The library's elementwise maximum, minimum, where and logaddexp, fully qualified.
    MAXIMUM: ClassVar[str]
    MINIMUM: ClassVar[str]
    WHERE: ClassVar[str]
    LOGADDEXP: ClassVar[str]

    def _print_Symbol(self, expr):
        """Network symbols print under their names in the module (``z1_0``, ``W2[1, 0]``)."""
        names = self._settings["symbol_names"] or {}
        if expr in names:
            return names[expr]
        return super()._print_Symbol(expr)

    def _print(self, expr, **kwargs):
        """Network activations never print by name (SymPy would print our class ``tanh`` as
        np.tanh and ``sigmoid_prime`` as an unknown call): codegen writes concrete ones out
        before printing, so only the generic g gets here, and it has no numerical value."""
        if isinstance(expr, (ElementwiseActivation, ActivationPrime)):
            raise _generic_error(expr.base(expr.args[0]) if isinstance(expr, ActivationPrime)
                                 else expr)
        return super()._print(expr, **kwargs)

    def _print_Heaviside(self, expr):
        """Step function, 0 at 0 (the subgradient PyTorch and JAX use for relu), as the
        boolean ``x > 0``: a product with it keeps the other factor's dtype, and it costs a
        comparison where ``np.heaviside`` costs as much as a matmul (2.6 ms vs 0.05 ms on
        2048 x 256 here)."""
        return f"({self._print(expr.args[0])} > 0)"

    def _print_FirstMax(self, expr):
        """[u is its window's first maximum] as 0 or 1 in u's dtype: greater than the
        entries before it, at least those after (ties to the first, as PyTorch)."""
        u, *window = expr.args
        i, name = window.index(u), self._print(u)
        tests = [f"{name} > {self._print(w)}" for w in window[:i]]
        tests += [f"{name} >= {self._print(w)}" for w in window[i + 1:]]
        if not tests:
            return "1"
        both = " & ".join(f"({t})" for t in tests) if len(tests) > 1 else tests[0]
        return f"({both}).astype({name}.dtype)"

    def _print_Max(self, expr):
        """Elementwise ``maximum`` (SymPy's default reduces over a list)."""
        return self._nested(self.MAXIMUM, expr.args)

    def _print_Min(self, expr):
        return self._nested(self.MINIMUM, expr.args)

    def _nested(self, fqn: str, args) -> str:
        func = self._module_format(fqn)
        like = self._like(sympy.Tuple(*args))
        printed = self._print(args[-1])
        for arg in reversed(args[:-1]):
            printed = f"{func}({self._operand(arg, like)}, {printed})"
        return printed

    def _print_LogAddExp(self, expr):
        """log(exp(u_0) + exp(u_1) + ...) as nested ``logaddexp``: no exp overflows."""
        return self._nested(self.LOGADDEXP, expr.args)

    def _print_LogSumExp(self, expr):
        raise ValueError(f"{expr}: a log-sum-exp over k prints on the layer's axes only")

    def _print_Piecewise(self, expr):
        """Nested ``where``; constant branches keep the input's dtype (float32 stays)."""
        pieces = list(expr.args)
        if pieces[-1].cond != sympy.true:
            raise ValueError(f"Piecewise without an otherwise-branch: {expr}")
        constant = all(p.expr.is_Number for p in pieces)
        where = self._module_format(self.WHERE)
        printed = self._print(pieces[-1].expr)
        for piece in reversed(pieces[:-1]):
            printed = f"{where}({self._print(piece.cond)}, {self._print(piece.expr)}, {printed})"
        if constant:
            like = min(expr.free_symbols, key=str)
            printed = f"{printed}.astype({self._print(like)}.dtype)"
        return printed

    def _like(self, expr) -> str | None:
        """The array a number among ``expr``'s operands must take its dtype from, where the
        library wants arrays there (NumPy does not: none)."""
        return None

    def _operand(self, arg, like: str | None = None) -> str:
        """An argument of maximum or minimum beside the last one."""
        return self._print(arg)


class NumpyCodePrinter(ArrayCodeNames, NumPyPrinter):
    """Prints SymPy expressions as NumPy code for symprop's generated modules."""

    MAXIMUM, MINIMUM, WHERE = "numpy.maximum", "numpy.minimum", "numpy.where"
    LOGADDEXP = "numpy.logaddexp"

    _default_settings: ClassVar[dict] = {
        **NumPyPrinter._default_settings,
        "fully_qualified_modules": True,
        #: Symbol -> the Python name it has in the generated code.
        "symbol_names": None,
    }

    def __init__(self, settings=None):
        super().__init__(settings)
        self.helpers_used: set[str] = set()
        self.uses_where = False

    def _module_format(self, fqn, register=True):
        """Spell NumPy as ``np`` (the generated module does ``import numpy as np``)."""
        printed = super()._module_format(fqn, register)
        return "np." + printed[len("numpy."):] if printed.startswith("numpy.") else printed

    def _helper(self, name: str, *args) -> str:
        self.helpers_used.add(name)
        return f"_{name}({', '.join(self._print(a) for a in args)})"

    def _print_Sigmoid(self, expr):
        """The module's ``_sigmoid``: (1 + tanh(u/2))/2 cannot overflow."""
        return self._helper("sigmoid", expr.args[0])

    def _print_Softplus(self, expr):
        """log(1 + e^u) as ``logaddexp(0, u)``: finite for any u."""
        return f"{self._module_format('numpy.logaddexp')}(0, {self._print(expr.args[0])})"

    def _print_erf(self, expr):
        """The module's ``_erf``: NumPy has none (SymPy would print math.erf, which takes
        one number and is not imported)."""
        return self._helper("erf", expr.args[0])

    def _print_SoftmaxRow(self, expr):
        return self._helper("softmax", expr.args[0])

    def _print_LogSoftmax(self, expr):
        return self._helper("log_softmax", expr.args[0])

    def _print_RowSum(self, expr):
        """Sum over a layer's nodes, one value per sample (row), kept as a column.  The
        method, not ``np.sum``: the same reduction without a Python-level wrapper."""
        summand = self.parenthesize(expr.args[0], PRECEDENCE["Atom"], strict=True)
        return f"{summand}.sum(axis=1, keepdims=True)"

    def _print_Piecewise(self, expr):
        """Nested ``np.where``, which evaluates both branches: the module silences overflow
        in the discarded one (``uses_where``)."""
        self.uses_where = True
        return super()._print_Piecewise(expr)

    def _print_Softmax(self, expr):
        raise ValueError("Softmax(i, ...) must be replaced by the row form before printing")


def _generic_error(expr, source: str = "<spec>") -> InputError:
    layer = getattr(type(expr), "layer", None)
    where = f"layer {layer} uses" if layer is not None else "the spec uses"
    return InputError(
        f"{where} the generic activation g, which has no numerical definition",
        where=f"{source}: key 'activation'",
        hint="Code generation and verification need concrete activations: use identity, "
             "sigmoid, tanh, relu, leaky_relu, softplus, elu, swish, softmax or one defined "
             "under [activations] (derivations work with g)")


def ufunc_name(func, printer: NumpyCodePrinter) -> str | None:
    """The NumPy ufunc (or module helper taking ``out=``) that applies a one-argument SymPy
    function elementwise, or None: ``tanh`` -> ``np.tanh``, Sigmoid -> ``_sigmoid``."""
    if func is Sigmoid:
        printer.helpers_used.add("sigmoid")
        return "_sigmoid"
    known = printer.known_functions.get(func.__name__)
    if not isinstance(known, str) or not known.startswith("numpy."):
        return None
    ufunc = getattr(np, known[len("numpy."):], None)
    return printer._module_format(known) if isinstance(ufunc, np.ufunc) and ufunc.nin == 1 \
        else None


def inplace_statements(expr: sympy.Expr, out: str, printer: NumpyCodePrinter
                       ) -> list[str] | None:
    """Statements that evaluate ``expr`` into the existing array ``out`` with ufuncs' ``out=``
    (no temporary array), or None when ``expr`` is not a chain (each operation having at
    most one non-trivial operand).  Used for a = g(z) in the forward pass, written over
    Z^(l), and for g' in the backward pass, where a dead array serves as the scratch."""
    np_ = printer._module_format

    def constant(c) -> str:
        """A number as a Python float: NumPy converts 1.0 to the array's dtype faster than 1."""
        return repr(float(c)) if c.is_Integer else printer.doprint(c)

    def leaf(e):
        return e.is_Number or e.is_Symbol

    def emit(e) -> list[str] | None:
        if e.is_Symbol:
            name = printer.doprint(e)
            return [] if name == out else [f"{np_('numpy.copyto')}({out}, {name})"]
        if e.is_Pow and e.base.is_Symbol and e.exp == 2:
            return [f"{np_('numpy.square')}({printer.doprint(e.base)}, out={out})"]
        if isinstance(e, sympy.Function) and len(e.args) == 1:
            func, (inner,) = ufunc_name(e.func, printer), e.args
            source = printer.doprint(inner) if inner.is_Symbol else out
            setup = [] if inner.is_Symbol else emit(inner)
            if func is None or setup is None:
                return None
            return [*setup, f"{func}({source}, out={out})"]
        if e.is_Add or e.is_Mul:
            constants = [a for a in e.args if a.is_Number]
            rest = [a for a in e.args if not a.is_Number]
            if len(rest) != 1 or len(constants) != 1:
                return None
            c, inner = constants[0], rest[0]
            if e.is_Add and inner.is_Mul and inner.args[0] == -1 and len(inner.args) == 2:
                x = inner.args[1]  # c - x: x into out (unless it is a leaf), then subtract
                source = printer.doprint(x) if leaf(x) else out
                setup = [] if leaf(x) else emit(x)
                if setup is None:
                    return None
                return [*setup, (f"{np_('numpy.subtract')}({constant(c)}, {source}, "
                                f"out={out})")]
            first = emit(inner)
            if first is None:
                return None
            op = np_("numpy.add" if e.is_Add else "numpy.multiply")
            return [*first, f"{op}({out}, {constant(c)}, out={out})"]
        return None

    return emit(expr)
