"""Work that would blow up, estimated and refused before it starts.

Symbolic work on a network grows with its widths and, worse, with its depth: the composed
C_0 of a deep network repeats each layer inside every node of the next.  Each estimator here
costs microseconds, returns an :class:`Estimate` a user can inspect, and
:meth:`Estimate.check` refuses the work with a :class:`TooBigError` (exit code 2) that says
how big it would be and what to do instead.  Refusals can be overridden (``--force``) by
someone who knows their machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import InputError
from .notation import Node
from .spec import Spec

__all__ = ["COMPOSED_LIMIT", "PAGE_LIMIT", "SCALAR_LIMIT", "SYMBOLIC_LIMIT", "Estimate", "TooBigError",
           "composed_estimate", "composed_size", "document_estimate", "matrix_check_estimate",
           "report_estimate", "scalar_estimate"]

#: Symbols in a composed C_0 that a 30-digit proof differentiates and evaluates in seconds
#: (measured on 4-wide tanh nets: 65,536 symbols take 3 s, 262,144 take 20 s).
COMPOSED_LIMIT = 100_000
#: Symbols in a composed C_0 up to which prove()'s "auto" expands diff(C_0) - result
#: symbolically, a decisive proof (measured: 4,244 symbols, dC_0/dx_0 of a 4-8-8-4 generic
#: net, 2.4 s; 1,988, the tutorial's, 0.7 s); above it the 30-digit numeric test decides.
SYMBOLIC_LIMIT = 5_000
#: Parameters the scalar style writes one line each for.
SCALAR_LIMIT = 5000
#: Pages of a LaTeX document (derivation or report) written without --force.
PAGE_LIMIT = 300
#: Pages per layer a derivation steps back through (65 pages for 40 layers, measured).
PAGES_PER_LAYER = 1.6
#: Terms the report's exact matrix-form check expands (784-256-256-10: 0.8 million, 20 s;
#: 4-300-300-300-10: 2.2 million, more than 5 minutes).
MATRIX_TERMS_LIMIT = 1_000_000


class TooBigError(InputError):
    """A request whose work would blow up, refused before it starts (exit code 2)."""


@dataclass(frozen=True)
class Estimate:
    """How big a piece of work would be, against the most this tool does without --force."""

    task: str
    size: int
    unit: str
    limit: int
    instead: str
    where: str | None = None

    @property
    def too_big(self) -> bool:
        return self.size > self.limit

    @property
    def over(self) -> str:
        """'about 1.9e+25 symbols, more than the 100,000': what exceeds the limit."""
        return f"about {_count(self.size)} {self.unit}, more than the {_count(self.limit)}"

    def __str__(self) -> str:
        return f"{self.task}: about {_count(self.size)} {self.unit} (limit {_count(self.limit)})"

    def check(self, force: bool = False) -> Estimate:
        """Raise :class:`TooBigError` when the work is over the limit (unless ``force``)."""
        if self.too_big and not force:
            raise TooBigError(f"{self.task} would have {self.over} this is done for",
                              where=self.where,
                              hint=f"{self.instead}; or pass --force to try anyway")
        return self


def _count(n: int) -> str:
    """12,026,010 or 3.1e+24: exact up to a billion, then the order of magnitude."""
    return f"{n:,}" if n < 10**9 else f"{float(n):.1e}"


def composed_size(spec: Spec, first_layer: int) -> int:
    """Symbols in C_0 written out from ``first_layer`` up (a layer below it stays a symbol).

    z_j^(l) repeats every a of layer l-1 once; a softmax output repeats all of its layer's
    z; C_0 has one loss term per output.  SymPy shares repeated subexpressions in memory,
    but differentiating and evaluating them walks the tree, so its size is what counts.
    """
    widths = spec.layers
    sizes = dict.fromkeys(range(max(first_layer, 1)), 1)
    for l in range(max(first_layer, 1), spec.L + 1):
        sizes[l] = spec.layer(l).composed_size(sizes, spec)
    return widths[-1] * (sizes[spec.L] + 3)


def composed_estimate(spec: Spec, node: Node, limit: int = COMPOSED_LIMIT) -> Estimate:
    """The composed C_0 a proof of dC_0/d(node) differentiates (see symprop.proof)."""
    # parameters and inputs are proven against C_0 in x, w and b; a and z from their layer
    first = 1 if node.is_parameter or node.kind == "x" else node.layer + (node.kind != "z")
    return Estimate(f"the composed C_0 to differentiate for {node}",
                    composed_size(spec, first), "symbols", limit,
                    "Check it against autodiff instead: `symprop verify SPEC` compares every "
                    "gradient with JAX and PyTorch", where=spec.source)


def scalar_estimate(spec: Spec, limit: int = SCALAR_LIMIT) -> Estimate:
    """Lines of the scalar-style module: one per weight, plus the forward and backward nodes."""
    lines = spec.n_parameters + 3 * sum(spec.layers)
    return Estimate("the scalar-style module (one line per weight)", lines, "lines",
                    limit + 3 * sum(spec.layers), "Use --style vectorized (the matrix form), or a "
                    f"network of at most {_count(limit)} parameters for the scalar style",
                    where=f"{spec.source}: key 'layers'")


def _pages(spec: Spec, layer: int) -> int:
    return math.ceil(PAGES_PER_LAYER * (spec.L - layer + 1))


def document_estimate(spec: Spec, node: Node, limit: int = PAGE_LIMIT) -> Estimate:
    """Pages of a derivation document: it steps back through every layer above the node."""
    return Estimate(f"the derivation of dC_0/d{node}", _pages(spec, node.layer or 0), "pages",
                    limit, "Derive a parameter of a later layer: each backward step has the "
                    "same form as the one after it", where=spec.source)


def report_estimate(spec: Spec, limit: int = PAGE_LIMIT) -> Estimate:
    """Pages of a report: one derivation per layer, each stepping back to the output."""
    pages = 3 + sum(_pages(spec, l) for l in range(1, spec.L + 1))
    return Estimate("the report (one derivation per layer)", pages, "pages", limit,
                    "Derive single parameters with `symprop derive SPEC --wrt NAME`",
                    where=f"{spec.source}: key 'layers'")


def matrix_check_estimate(spec: Spec, entries: int = 12,
                          limit: int = MATRIX_TERMS_LIMIT) -> Estimate:
    """Terms the report expands to check seed 001's matrix form entry by entry.

    A checked entry of dC/dA^(l-1) = Delta^(l) W^(l) sums a layer's deltas, each a sum over
    the layer above: widths[l] x widths[l+1] terms, for each of ``entries`` entries.
    """
    widths = spec.layers
    terms = entries * sum(widths[l] * widths[l + 1] for l in range(1, spec.L))
    return Estimate("the report's exact check of the matrix form", terms, "terms", limit,
                    "Derive single parameters with `symprop derive SPEC --wrt NAME`, whose "
                    "results the matrix form restates", where=f"{spec.source}: key 'layers'")
