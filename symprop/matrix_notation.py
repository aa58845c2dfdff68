"""Names of the batch form's matrices (seed 001): X, A^(l), Z^(l), W^(l), Delta^(l), the
gradients dC/dW^(l), dC/db^(l), dC/dA^(l), and g'^(l)(Z^(l)).

Notation, like :mod:`symprop.notation` for nodes: a matrix is a SymPy ``MatrixSymbol`` whose
:class:`MatrixName` the printers look up with :func:`matrix_of` and print with
:func:`matrix_label`.  It sits below both the printers and :mod:`symprop.matrix` (which
derives and checks the batch form), so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

__all__ = ["MATRIX_KINDS", "PER_SAMPLE", "MatrixName", "entrywise_symbol", "matrix_label",
           "matrix_of", "matrix_symbol"]


@dataclass(frozen=True)
class MatrixName:
    """A named matrix of the batch form: ``kind`` in MATRIX_KINDS, an absolute layer."""

    kind: str
    layer: int | None
    #: The activation class, for ``gprime`` (g'^(l)(Z^(l)) applied entrywise).
    activation: type | None = field(default=None, compare=False)
    #: For ``dApart``: the layer that passes this part of the gradient back.
    via: int | None = None


#: kind -> (name in text, name in LaTeX, a gradient of the batch loss C?)
MATRIX_KINDS: dict[str, tuple[str, str, bool]] = {
    "X": ("X", "X", False),
    "Y": ("Y", "Y", False),
    "A": ("A", "A", False),
    "Z": ("Z", "Z", False),
    "W": ("W", "W", False),
    "Delta": ("Delta", r"\Delta", False),
    "J": ("J", "J", False),
    #: g'^(l)(Z^(l)) entrywise; printed by the printers from the activation class.
    "gprime": ("g'", "g'", False),
    "dW": ("W", "W", True),
    "db": ("b", "b", True),
    "dA": ("A", "A", True),
    #: What one layer passes back to the gradient of an earlier one (a skip connection's
    #: earlier layer sums two): printed dC/dA^(l) restricted to the layer it comes from.
    "dApart": ("A", "A", True),
    #: A layer's named quantities over the batch: xhat as a matrix, mu, sigma, r per sample.
    "xhat": ("Xhat", r"\hat{X}", False),
    "mu": ("mu", r"\mu", False),
    "sigma": ("sigma", r"\sigma", False),
    "r": ("r", "r", False),
}

_MATRICES: dict[str, MatrixName] = {}


def matrix_symbol(kind: str, layer: int | None, rows, cols, activation=None,
                  via: int | None = None) -> sympy.MatrixSymbol:
    """The MatrixSymbol of a named matrix (registered for the printers)."""
    name = f"{kind}^({layer})" if layer is not None else kind
    name += f"<{via}>" if via is not None else ""
    _MATRICES[name] = MatrixName(kind, layer, activation, via)
    return sympy.MatrixSymbol(name, rows, cols)


#: Kinds of one value per sample: an entry is written with its row only, sigma_b.
PER_SAMPLE = frozenset({"mu", "sigma", "r"})


def entrywise_symbol(kind: str, layer: int | None) -> sympy.Symbol:
    """A scalar stand-in for a whole matrix in an entrywise formula, e.g. 2/n (A - Y)."""
    name = f"{kind}^({layer})" if layer is not None else kind
    _MATRICES[name] = MatrixName(kind, layer)
    return sympy.Symbol(name)


def matrix_label(name: MatrixName, layer: str | None, latex: bool,
                 transpose: bool = False) -> str:
    """``\\Delta^{(L)}``, ``\\Delta^{(L)\\top}``, ``\\frac{\\partial C}{\\partial W^{(L)}}`` (or text).

    ``layer`` is the printed layer label (relative or absolute); g'(Z) is the printers' job.
    """
    text_base, latex_base, gradient = MATRIX_KINDS[name.kind]
    if latex:
        sup = [f"({layer})"] if layer is not None else []
        sup += [r"\top"] if transpose else []
        core = latex_base + (f"^{{{''.join(sup)}}}" if sup else "")
        return rf"\frac{{\partial C}}{{\partial {core}}}" if gradient else core
    core = text_base + (f"^({layer})" if layer is not None else "") + ("^T" if transpose else "")
    return f"dC/d{core}" if gradient else core


def matrix_of(symbol: sympy.Basic) -> MatrixName | None:
    """The :class:`MatrixName` of a MatrixSymbol (or entrywise stand-in), else None."""
    name = getattr(symbol, "name", None)
    return _MATRICES.get(name) if isinstance(name, str) else None
