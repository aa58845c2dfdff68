"""The chain rule's pieces, as data: factors, paths, sums of paths, and the batch average.

For dC_0/dw_jk^(l) seed 000 writes a product of three factors, each d(numerator)/d(denominator)
worked out from the numerator's definition; a hidden layer's first factor is a sum over the
next layer's nodes.  :class:`Factor`, :class:`Path` (one product) and :class:`ChainRule` (a
sum of products, grouped by the layer each product goes through) hold every such step for
the printers and the proofs; :class:`ChainSteps` builds them from the engine's local
derivatives (it is the half of :class:`symprop.derivation.Backprop` that writes the steps).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sympy

from .graph import C0
from .layers.symbolic import LazyRows
from .notation import Node, node_of

if TYPE_CHECKING:
    from .derivation import Derivation

__all__ = ["BATCH_SIZE", "SAMPLE", "BatchAverage", "ChainRule", "ChainSteps", "Factor", "Path",
           "PathGroup"]

#: Batch size n and sample index i of the batch average (seed 000: C = 1/n sum_i C_i).
BATCH_SIZE = sympy.Symbol("n", integer=True, positive=True)
SAMPLE = sympy.Symbol("i", integer=True, nonnegative=True)
_LOSS = sympy.IndexedBase("C")
_BATCH_LOSS = sympy.Symbol("C", real=True)


@dataclass(frozen=True)
class Factor:
    """One factor d(numerator)/d(denominator), worked out from the numerator's definition.

    ``terms`` is the definition's right-hand side split into its sum's terms, in node order;
    ``term_derivatives[i]`` is the derivative of ``terms[i]`` (a zero when the term does not
    contain the denominator).  These and the value may be built only when read: a z of a wide
    layer has thousands of terms, and a backward sum has thousands of factors, few of them
    printed.  ``backward`` is set instead when the numerator is C_0 and the
    denominator a hidden activation: that factor is a chain rule of its own.
    """

    numerator: sympy.Symbol
    denominator: sympy.Symbol
    #: The factor's value, or a function that computes it when :attr:`value` is first read.
    value_of: sympy.Expr | Callable[[], sympy.Expr] = field(repr=False)
    terms: Sequence[sympy.Expr] = ()
    term_derivatives: Sequence[sympy.Expr] = ()
    backward: Derivation | None = field(default=None, compare=False)
    #: For a factor whose terms are a sum inside the numerator's formula (a custom layer's
    #: sum_k): (u, the numerator written in u, d numerator / du).
    inner: tuple | None = field(default=None, compare=False)

    @functools.cached_property
    def value(self) -> sympy.Expr:
        value = self.value_of
        return value if isinstance(value, sympy.Basic) else value()

    @property
    def definition(self) -> sympy.Expr | None:
        """The numerator's definition: the sum of ``terms``."""
        return sympy.Add(*self.terms) if self.terms else None

    @property
    def derivative(self) -> sympy.Derivative:
        """The factor as an unevaluated ``Derivative(numerator, denominator)``."""
        return sympy.Derivative(self.numerator, self.denominator)

    @property
    def vanishing(self) -> tuple[int, ...]:
        """Positions of the terms whose derivative is zero."""
        return tuple(i for i, d in enumerate(self.term_derivatives) if d == 0)

    @property
    def surviving(self) -> tuple[int, ...]:
        return tuple(i for i, d in enumerate(self.term_derivatives) if d != 0)


@dataclass(frozen=True)
class Path:
    """One product of factors: a path of arrows from the loss node to the target."""

    factors: tuple[Factor, ...]

    @property
    def value(self) -> sympy.Expr:
        return sympy.Mul(*[f.value for f in self.factors])


@dataclass(frozen=True)
class PathGroup:
    """The paths through one layer the target feeds: a sum over its nodes, or one path."""

    paths: tuple[Path, ...]
    #: The index summed over and the layer it runs over, e.g. ("j", L); None for one path.
    sum_index: tuple[str, int] | None = None

    @property
    def value(self) -> sympy.Expr:
        return sympy.Add(*[p.value for p in self.paths])


@dataclass(frozen=True)
class ChainRule:
    """d C_0 / d target as a sum over paths, grouped by the layer each path goes through:
    one group in seed 000's networks, one more for every skip connection the target feeds
    (a residual connection's two paths and their sum)."""

    target: sympy.Symbol
    groups: tuple[PathGroup, ...]

    @classmethod
    def of(cls, target: sympy.Symbol, paths: tuple[Path, ...],
           sum_index: tuple[str, int] | None = None) -> ChainRule:
        """A chain rule of one group."""
        return cls(target, (PathGroup(tuple(paths), sum_index),))

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(p for g in self.groups for p in g.paths)

    @property
    def sum_index(self) -> tuple[str, int] | None:
        """The one group's summation index (None for several groups, or one path)."""
        return self.groups[0].sum_index if len(self.groups) == 1 else None

    @property
    def value(self) -> sympy.Expr:
        return sympy.Add(*[p.value for p in self.paths])


@dataclass(frozen=True)
class BatchAverage:
    """dC/d(target) over a batch: (1/n) sum_i dC_i/d(target) for ``mean``, no 1/n for ``sum``."""

    target: sympy.Symbol
    reduction: str

    @property
    def lhs(self) -> sympy.Derivative:
        return sympy.Derivative(_BATCH_LOSS, self.target)

    @property
    def rhs(self) -> sympy.Expr:
        total = sympy.Sum(sympy.Derivative(_LOSS[SAMPLE], self.target),
                          (SAMPLE, 0, BATCH_SIZE - 1))
        return total / BATCH_SIZE if self.reduction == "mean" else total

    @property
    def equation(self) -> sympy.Eq:
        return sympy.Eq(self.lhs, self.rhs, evaluate=False)

    def combine(self, per_sample: list) -> object:
        """Apply the reduction to per-sample values (numbers or arrays)."""
        total = sum(per_sample[1:], per_sample[0])
        return total / len(per_sample) if self.reduction == "mean" else total


class ChainSteps:
    """How the engine writes dC_0/d(node) as seed 000 does, factor by factor.

    A mixin of :class:`symprop.derivation.Backprop`, which provides ``graph``, the local and
    accumulated derivatives (``loss_derivative``, ``activation_derivative``, ``local``,
    ``dC_da``) and ``derive_node``.
    """

    # ---------------------------------------------------------------- factors
    def factor_loss(self, j: int) -> Factor:
        """dC_0/da_j^(L) from C_0 = sum_j loss(a_j, y_j): only term j survives."""
        g = self.graph
        a_j = g.a[g.L][j]
        return Factor(C0, a_j, self.loss_derivative(j), terms=g.loss_terms,
                      term_derivatives=tuple(sympy.factor_terms(sympy.diff(t, a_j))
                                               for t in g.loss_terms))

    def reaches_loss(self, layer: int, j: int) -> bool:
        """Does output j of ``layer`` reach the loss?  Every node does in a flat network; in
        a map, an entry no window of the next layer reads (a stride above the kernel, a pool
        dropping the last row) does not, nor anything that reaches the loss only through
        such entries.  A path through one of them is 0 and no derivation shows it."""
        g = self.graph
        if layer == g.L or len(g.spec.shapes[layer]) == 1 and \
                all(len(g.spec.shapes[c]) == 1 for c in g.consumers[layer]):
            return True
        key = ("reaches", layer, j)
        if key not in self._reach:
            symbol = g.output(layer, j)
            self._reach[key] = any(self.reaches_loss(c, i) for c in g.consumers[layer]
                                   for m in g.layers[c].readers(symbol)
                                   for i in (self._contributors(c, m)
                                             if g.layers[c].through_activation else (m,)))
        return self._reach[key]

    @functools.cached_property
    def _reach(self) -> dict:
        return {}

    def factor_dC_da(self, layer: int, j: int) -> Factor:
        """dC_0/da_j^(l): from the loss at the output, a backward step in a hidden layer."""
        if layer == self.graph.L:
            return self.factor_loss(j)
        symbol = self.graph.output(layer, j)
        return Factor(C0, symbol, functools.partial(self.dC_da, layer, j),
                      backward=self.derive_node(node_of(symbol)))

    def factor_activation(self, layer: int, i: int, m: int) -> Factor:
        """da_i^(l)/dz_m^(l) from a_i^(l) = g^(l)(z_i^(l)) (or the softmax of all z^(l))."""
        g = self.graph
        definition = g.a_def[layer][i]
        value = self.activation_derivative(layer, i, m)
        return Factor(g.a[layer][i], g.z[layer][m], value, terms=(definition,),
                      term_derivatives=(value,))

    def factor_z(self, layer: int, j: int, wrt: sympy.Symbol) -> Factor:
        """dz_j^(l)/d(wrt) from z_j^(l) = sum_k w_jk a_k (+ b_j): one term survives.

        The surviving term is found from the indices, so the factor costs O(1); its terms
        are built when a printer reads them.
        """
        dense = self.graph.layers[layer]  # any layer with a z: dense, conv
        k = dense.term_of(j, wrt)
        terms = dense.z_terms[j]
        value = sympy.S.Zero if k is None else sympy.diff(terms[k], wrt)
        return Factor(dense.z[j], wrt, value, terms=terms,
                      term_derivatives=LazyRows(len(terms), lambda n: value if n == k
                                                else sympy.S.Zero))

    def factor_local(self, layer: int, i: int, wrt: sympy.Symbol) -> Factor:
        """d a_i^(l) / d(wrt) from the definition of a layer without a z (a normalisation, a
        residual sum, a custom formula): SymPy's derivative, in the layer's own names."""
        lay = self.graph.layers[layer]
        output = lay.outputs[i]
        value = self.local(layer, i, wrt)
        expansion = getattr(lay, "expansion", lambda *_: None)(i, wrt)
        if expansion is not None:  # the sum's terms one by one, then the rest of the formula
            u, outer, terms, derivatives, through = expansion
            return Factor(output, wrt, value, terms=tuple(terms),
                          term_derivatives=tuple(derivatives), inner=(u, outer, through))
        return Factor(output, wrt, value, terms=(lay.definition(output),),
                      term_derivatives=(value,))

    # ----------------------------------------------------------- chain rules
    def chain(self, node: Node) -> ChainRule:
        """The chain rule for dC_0/d(node), as seed 000 writes it."""
        g = self.graph
        symbol = node.symbol
        lay = g.layers.get(node.layer)
        if node.is_parameter and lay.through_activation:  # through the z it enters
            l, entries = node.layer, lay.param_entries(node)
            if len(entries) == 1:
                j = entries[0]
                return self._through_activation(symbol, l, j, (self.factor_z(l, j, symbol),))
            # shared by every z of a set (a conv weight at every position): one path each
            paths = tuple(Path((self.factor_dC_da(l, i), self.factor_activation(l, i, j),
                                self.factor_z(l, j, symbol)))
                          for j in entries for i in self._contributors(l, j)
                          if self.reaches_loss(l, i))
            return ChainRule.of(symbol, paths, ("i", l))
        if node.kind == "z":
            return self._through_activation(symbol, node.layer, g.position(node), ())
        if node.kind == "a" and node.layer == g.L:
            return ChainRule.of(symbol, (Path((self.factor_loss(g.position(node)),)),))
        if node.is_parameter:  # of a layer without a z: through the outputs it enters
            l = node.layer
            paths = tuple(Path((self.factor_dC_da(l, i), self.factor_local(l, i, symbol)))
                          for i in g.layers[l].param_entries(node) if self.reaches_loss(l, i))
            return ChainRule.of(symbol, paths, None if len(paths) == 1 else ("j", l))
        # a hidden node or an input: the backward step over every layer it feeds
        layer = 0 if node.kind == "x" else node.layer
        groups = (self._through_consumer(c, symbol) for c in g.consumers[layer])
        return ChainRule(symbol, tuple(group for group in groups if group.paths))

    def _through_consumer(self, c: int, symbol: sympy.Symbol) -> PathGroup:
        """The paths from the loss to ``symbol`` through layer ``c``, which reads it."""
        consumer = self.graph.layers[c]
        paths = []
        if consumer.through_activation:  # dense: through each z it enters, then a = g(z)
            for m in consumer.readers(symbol):
                last = self.factor_z(c, m, symbol)
                for i in self._contributors(c, m):
                    if self.reaches_loss(c, i):
                        paths.append(Path((self.factor_dC_da(c, i),
                                           self.factor_activation(c, i, m), last)))
            flat = len(consumer.config.shape) == 1  # a map read through one window: no sum
            return PathGroup(tuple(paths), ("j", c) if flat or len(paths) > 1 else None)
        paths = [Path((self.factor_dC_da(c, i), self.factor_local(c, i, symbol)))
                 for i in consumer.readers(symbol) if self.reaches_loss(c, i)]
        return PathGroup(tuple(paths), ("j", c) if len(paths) > 1 else None)

    def _contributors(self, layer: int, m: int) -> range | tuple[int]:
        """The nodes i of ``layer`` whose activation depends on z_m: all of them for softmax."""
        return (m,) if self.graph.is_elementwise(layer) else range(self.graph.widths[layer])

    def _through_activation(self, symbol, layer, j, tail) -> ChainRule:
        paths = tuple(Path((self.factor_dC_da(layer, i), self.factor_activation(layer, i, j))
                           + tail) for i in self._contributors(layer, j)
                      if self.reaches_loss(layer, i))
        index = None if len(paths) == 1 and self.graph.is_elementwise(layer) else ("i", layer)
        return ChainRule.of(symbol, paths, index)
