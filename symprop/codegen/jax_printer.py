"""``JaxCodePrinter``: SymPy's ``JaxPrinter`` with the forms generated JAX modules need.

The row forms of :mod:`.rules` printed for ``jax.numpy`` (spelled ``jnp``): the stable
sigmoid, softplus and softmax are ``jax.nn``'s, a sum over a row of nodes is
``.sum(axis=1, keepdims=True)``, a step function a comparison. Nothing here imports JAX.
"""

from __future__ import annotations

from typing import ClassVar

from sympy.printing.numpy import JaxPrinter
from sympy.printing.precedence import PRECEDENCE

from .printer import ArrayCodeNames

__all__ = ["JaxCodePrinter"]


class JaxCodePrinter(ArrayCodeNames, JaxPrinter):
    """Prints SymPy row forms as JAX code; network symbols under their module names."""

    MAXIMUM, MINIMUM, WHERE = "jax.numpy.maximum", "jax.numpy.minimum", "jax.numpy.where"
    LOGADDEXP = "jax.numpy.logaddexp"

    _default_settings: ClassVar[dict] = {
        **JaxPrinter._default_settings,
        "fully_qualified_modules": True,
        "symbol_names": None,
    }

    def _module_format(self, fqn, register=True):
        """Spell jax.numpy as ``jnp`` (the module does ``import jax.numpy as jnp``)."""
        printed = super()._module_format(fqn, register)
        return "jnp." + printed[len("jax.numpy."):] if printed.startswith("jax.numpy.") \
            else printed

    def _call(self, name: str, *args, axis: bool = False) -> str:
        text = ", ".join(self._print(a) for a in args)
        return f"{name}({text}{', axis=1' if axis else ''})"

    def _print_Sigmoid(self, expr):
        """jax.nn's sigmoid saturates without overflow."""
        return self._call("jax.nn.sigmoid", expr.args[0])

    def _print_Softplus(self, expr):
        """log(1 + e^u), finite for any u."""
        return self._call("jax.nn.softplus", expr.args[0])

    def _print_erf(self, expr):
        """``jax.lax.erf`` (SymPy's JAX printer writes math.erf, which takes one number)."""
        return self._call("jax.lax.erf", expr.args[0])

    def _print_SoftmaxRow(self, expr):
        return self._call("jax.nn.softmax", expr.args[0], axis=True)

    def _print_LogSoftmax(self, expr):
        return self._call("jax.nn.log_softmax", expr.args[0], axis=True)

    def _print_RowSum(self, expr):
        summand = self.parenthesize(expr.args[0], PRECEDENCE["Atom"], strict=True)
        return f"{summand}.sum(axis=1, keepdims=True)"
