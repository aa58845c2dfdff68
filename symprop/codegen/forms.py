"""How a code target spells array operations (:class:`ArrayForms`): sums over an axis, a
softmax, a copy, the library's own calls where it has faster ones, and dC/da times g' as a
:class:`Product` of the code and the formula it stands for.  NumPy's spellings are
:data:`NUMPY_FORMS`; torch's and JAX's are in :mod:`.framework`.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .printer import NumpyCodePrinter
from .rules import Z

__all__ = ["NUMPY_FORMS", "ArrayForms", "Product"]


@dataclass(frozen=True)
class ArrayForms:
    """How one target spells what a layer's letter forms need besides its printer: a sum
    over an axis kept (``{x}``, ``{axis}``), the batch sum of a parameter gradient, a
    row that does not depend on the node broadcast to the layer's width (``{like}`` an
    array of the layer), two blocks of columns side by side, a row softmax, a copy of an
    array the backward pass hands on, a parameter of layer l by its key (``{key}``), and a
    log-sum-exp over an axis kept (a custom formula's log(sum_k(exp(u))))."""

    printer: type
    total: str
    batch_total: str
    broadcast: str
    concatenate: str
    softmax: str
    copy: str
    param: str
    #: log(sum(exp(x))) over an axis kept (``{x}``, ``{axis}``), shifted by the largest x.
    logsumexp: str = "np.logaddexp.reduce({x}, axis={axis}, keepdims=True)"
    #: A contraction written in index letters (``{spec}``, the arrays ``{args}``), for the
    #: kinds that read windows of a map (conv: z, dW and the input's gradient).
    einsum: str = "np.einsum({spec}, {args}, optimize=True)"
    #: The library's own calls for a map kind's correlations, where it has faster ones than
    #: windows and einsum (``{d}`` the spatial dimensions): ``conv`` z = the correlation of
    #: the input with the kernel, ``conv_weight`` dW = the correlation of the input with
    #: Delta, ``conv_input`` the full correlation of Delta with the flipped kernel, or
    #: ``conv_backward`` instead of both, the input's gradient, dW and db in one call
    #: (``needs_input`` its first output's flag); ``max_pool`` each window's maximum and
    #: where it is; ``times_step`` x * [z > 0] (relu's g' times dC/da) in one pass.
    native: tuple[tuple[str, str], ...] = ()

    def times_prime(self, x: str, prime: str, code, z: str) -> Product:
        """dC/da times g': ``x * prime``, or the target's one-pass call for relu's step."""
        step = dict(self.native).get("times_step")
        formula = f"{x} * {prime}"
        if step and code.prime == sympy.Heaviside(Z):
            return Product(step.format(x=x, z=z), formula)
        return Product(formula, formula)


@dataclass(frozen=True)
class Product:
    """dC/da times g' as the target computes it (``code``) and as the derivation writes it
    (``formula``); where they differ (a native call) the formula is the line's comment."""

    code: str
    formula: str

    @property
    def native(self) -> bool:
        return self.code != self.formula

    @property
    def comment(self) -> str:
        return f"  # {self.formula}" if self.native else ""


#: The NumPy target's spellings (its softmax is the module's helper).
NUMPY_FORMS = ArrayForms(
    printer=NumpyCodePrinter, total="np.sum({x}, axis={axis}, keepdims=True)",
    batch_total="np.sum({x}, axis={axis})", broadcast=" + np.zeros({width})",
    concatenate="np.concatenate([{a}, {b}], axis=1)", softmax="_softmax({x})",
    copy="{x}.copy()", param='params["{key}"]')
