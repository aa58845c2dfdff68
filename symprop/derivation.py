"""The chain rule, walked exactly as seed 000 walks it, and kept as data.

For a parameter w_jk^(l) the seed writes

    dC_0/dw_jk^(l) = (dC_0/da_j^(l)) (da_j^(l)/dz_j^(l)) (dz_j^(l)/dw_jk^(l))

and works out each factor from its local definition: write the definition, expand the sum,
differentiate term by term (most terms vanish), and read off the result.  When layer l is
hidden, the first factor is itself a chain rule -- the backward step

    dC_0/da_k^(l) = sum_j (dC_0/da_j^(l+1)) (da_j^(l+1)/dz_j^(l+1)) (dz_j^(l+1)/da_k^(l))

recursing back to the output.  :class:`Backprop` computes these quantities node by node and
memoizes them; the delta symbols delta_j^(l) = dC_0/dz_j^(l) stand for the next layer's
accumulated gradient, so a result stays the same size however deep the network is and
deriving every parameter costs time linear in the number of parameters.

What a user inspects:

* :class:`Derivation` -- one target: ``result`` (compact, in layered symbols and the next
  layer's deltas), :meth:`Derivation.expanded` (deltas substituted back to the output),
  ``chain`` (the factors, each a :class:`Factor` with its definition, its expanded terms and
  each term's derivative, zeros kept), ``backward`` (the nested derivation of a hidden
  dC_0/da), and ``batch`` (the average over a batch of n samples).
* :meth:`Backprop.gradients` -- every parameter's compact result at once.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import sympy

from .chain import BatchAverage, ChainRule, Factor, Path
from .graph import C0, LazyRows, SymbolicGraph, build_graph
from .notation import Node, node_of
from .spec import Spec

__all__ = ["Backprop", "Derivation", "backprop", "derive", "prove_all"]

class Backprop:
    """Chain-rule derivatives of C_0 for one graph; node quantities are computed once."""

    def __init__(self, graph: SymbolicGraph):
        self.graph = graph
        self._memo: dict[tuple, sympy.Expr] = {}

    def _cached(self, key, build):
        value = self._memo.get(key)
        if value is None:
            value = self._memo[key] = build()
        return value

    # ------------------------------------------------------ local derivatives
    def loss_derivative(self, j: int) -> sympy.Expr:
        """dC_0/da_j^(L) from the loss's definition (only term j contains a_j^(L))."""
        g = self.graph
        return self._cached(("dC/da_out", j), lambda: sympy.factor_terms(
            sympy.diff(g.loss_terms[j], g.a[g.L][j])))

    def activation_derivative(self, layer: int, i: int, m: int) -> sympy.Expr:
        """da_i^(l)/dz_m^(l) in layered symbols: g'(z_m) on the diagonal, softmax's Jacobian."""
        g = self.graph
        if g.is_elementwise(layer):
            if i != m:
                return sympy.S.Zero
            return self._cached(("da/dz", layer, i), lambda: sympy.diff(
                g.a_def[layer][i], g.z[layer][i]))
        return self._cached(("da/dz", layer, i, m), lambda: self.to_layered(
            sympy.diff(g.a_def[layer][i], g.z[layer][m]), layer))

    def to_layered(self, expr: sympy.Expr, layer: int) -> sympy.Expr:
        """Replace softmax applications of ``layer`` by the a symbols they define."""
        g = self.graph
        return expr.xreplace(dict(zip(g.a_def[layer], g.a[layer])))

    # ------------------------------------------- accumulated (compact) gradients
    def dC_da(self, layer: int, j: int) -> sympy.Expr:
        """dC_0/da_j^(l): the loss derivative at the output, else sum_i delta_i^(l+1) w_ij."""
        g = self.graph
        if layer == g.L:
            return self.loss_derivative(j)
        nxt = layer + 1
        return self._cached(("dC/da", layer, j), lambda: sympy.Add(*[
            g.delta[nxt][i] * g.w[nxt][i][j] for i in range(g.widths[nxt])]))

    def dC_dz(self, layer: int, j: int) -> sympy.Expr:
        """delta_j^(l) = dC_0/dz_j^(l) = sum_i (dC_0/da_i^(l)) (da_i^(l)/dz_j^(l))."""
        g = self.graph
        if g.is_elementwise(layer):
            return self._cached(("dC/dz", layer, j), lambda: sympy.Mul(
                self.dC_da(layer, j), self.activation_derivative(layer, j, j)))
        return self._cached(("dC/dz", layer, j), lambda: sympy.Add(*[
            self.dC_da(layer, i) * self.activation_derivative(layer, i, j)
            for i in range(g.widths[layer])]))

    def gradient(self, node: Node) -> sympy.Expr:
        """The compact result dC_0/d(node) in layered symbols and next-layer deltas."""
        kind, l = node.kind, node.layer
        if kind == "w":
            return sympy.Mul(self.dC_dz(l, node.j), self.graph.a[l - 1][node.k])
        if kind == "b":
            return self.dC_dz(l, node.j)
        if kind == "z":
            return self.dC_dz(l, node.j)
        if kind == "a":
            return self.dC_da(l, node.j)
        if kind == "x":
            return self.dC_da(0, node.j)
        if kind == "delta":
            raise ValueError("delta_j^(l) is itself dC_0/dz_j^(l); derive z_j^(l) instead")
        raise ValueError(f"y_j is a target, not a quantity C_0 is differentiated by: {node}")

    def gradients(self, nodes: list[Node] | None = None) -> dict[Node, sympy.Expr]:
        """Every parameter's compact result (or those of ``nodes``)."""
        return {n: self.gradient(n) for n in (nodes or self.graph.parameters())}

    def delta_definitions(self) -> dict[sympy.Symbol, sympy.Expr]:
        """delta_j^(l) -> its compact definition, for every node of layers 1..L."""
        g = self.graph
        return {g.delta[l][j]: self.dC_dz(l, j)
                for l in range(1, g.L + 1) for j in range(g.widths[l])}

    # --------------------------------------------------------------- expansion
    def delta_expanded(self, layer: int, j: int) -> sympy.Expr:
        """delta_j^(l) with every later delta substituted, back to the output."""
        g = self.graph

        def build():
            expr = self.dC_dz(layer, j)
            if layer == g.L:
                return expr
            return expr.xreplace({g.delta[layer + 1][i]: self.delta_expanded(layer + 1, i)
                                  for i in range(g.widths[layer + 1])})
        return self._cached(("delta*", layer, j), build)

    def expand_deltas(self, expr: sympy.Expr) -> sympy.Expr:
        """Substitute every delta symbol in ``expr`` by its fully expanded definition."""
        mapping = {}
        for s in expr.free_symbols:
            node = node_of(s)
            if node is not None and node.kind == "delta":
                mapping[s] = self.delta_expanded(node.layer, node.j)
        return expr.xreplace(mapping) if mapping else expr

    # ---------------------------------------------------------------- factors
    def factor_loss(self, j: int) -> Factor:
        """dC_0/da_j^(L) from C_0 = sum_j loss(a_j, y_j): only term j survives."""
        g = self.graph
        a_j = g.a[g.L][j]
        return Factor(C0, a_j, self.loss_derivative(j), terms=g.loss_terms,
                      term_derivatives=tuple(sympy.factor_terms(sympy.diff(t, a_j))
                                               for t in g.loss_terms))

    def factor_dC_da(self, layer: int, j: int) -> Factor:
        """dC_0/da_j^(l): from the loss at the output, a backward step in a hidden layer."""
        if layer == self.graph.L:
            return self.factor_loss(j)
        symbol = self.graph.a[layer][j] if layer > 0 else self.graph.x[j]
        return Factor(C0, symbol, functools.partial(self.dC_da, layer, j),
                      backward=Derivation(node_of(symbol), self))

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
        g = self.graph
        k = g.z_term_of(layer, j, node_of(wrt))
        terms = g.z_terms[layer][j]
        value = sympy.S.Zero if k is None else sympy.diff(terms[k], wrt)
        return Factor(g.z[layer][j], wrt, value, terms=terms,
                      term_derivatives=LazyRows(len(terms), lambda n: value if n == k
                                                else sympy.S.Zero))

    # ----------------------------------------------------------- chain rules
    def chain(self, node: Node) -> ChainRule:
        """The chain rule for dC_0/d(node), as seed 000 writes it."""
        g = self.graph
        symbol = node.symbol
        if node.kind in ("w", "b"):
            l, j = node.layer, node.j
            last = self.factor_z(l, j, symbol)
            return self._through_activation(symbol, l, j, (last,))
        if node.kind == "z":
            return self._through_activation(symbol, node.layer, node.j, ())
        if node.kind == "a" and node.layer == g.L:
            return ChainRule(symbol, (Path((self.factor_loss(node.j),)),))
        # a hidden activation or an input: the backward step over the next layer
        layer = 0 if node.kind == "x" else node.layer
        nxt = layer + 1
        paths = []
        for m in range(g.widths[nxt]):
            last = self.factor_z(nxt, m, symbol)
            for i in self._contributors(nxt, m):
                paths.append(Path((self.factor_dC_da(nxt, i),
                                   self.factor_activation(nxt, i, m), last)))
        return ChainRule(symbol, tuple(paths), sum_index=("j", nxt))

    def _contributors(self, layer: int, m: int) -> range | tuple[int]:
        """The nodes i of ``layer`` whose activation depends on z_m: all of them for softmax."""
        return (m,) if self.graph.is_elementwise(layer) else range(self.graph.widths[layer])

    def _through_activation(self, symbol, layer, j, tail) -> ChainRule:
        paths = tuple(Path((self.factor_dC_da(layer, i), self.factor_activation(layer, i, j))
                           + tail) for i in self._contributors(layer, j))
        index = None if len(paths) == 1 and self.graph.is_elementwise(layer) else ("i", layer)
        return ChainRule(symbol, paths, sum_index=index)

    # ------------------------------------------------------------ derivations
    def derive(self, target: str | Node | sympy.Symbol) -> Derivation:
        """The derivation of dC_0/d(target); target in seed notation, e.g. ``w_{12}^{(L)}``."""
        return Derivation(self.graph.resolve(target), self)


@dataclass(frozen=True)
class Derivation:
    """dC_0/d(target), with every step of the chain rule available for printing and proof."""

    target: Node
    engine: Backprop = field(repr=False, compare=False)

    @property
    def graph(self) -> SymbolicGraph:
        return self.engine.graph

    @property
    def symbol(self) -> sympy.Symbol:
        return self.target.symbol

    @property
    def lhs(self) -> sympy.Derivative:
        return sympy.Derivative(C0, self.symbol)

    @functools.cached_property
    def result(self) -> sympy.Expr:
        """Compact result: layered symbols, the next layer's deltas for hidden layers."""
        return self.engine.gradient(self.target)

    @property
    def expanded_size(self) -> int:
        """A bound on the products in :meth:`expanded`: the widths above the target multiplied
        (each layer's backward sum repeats everything above it, so depth multiplies)."""
        layer = self.target.layer or 0
        return math.prod(self.graph.widths[layer + 1:])

    def expanded(self) -> sympy.Expr:
        """The result with every delta substituted back to the output (grows with depth)."""
        return self.engine.expand_deltas(self.result)

    @functools.cached_property
    def chain(self) -> ChainRule:
        return self.engine.chain(self.target)

    @property
    def factors(self) -> tuple[Factor, ...]:
        """The factors of a single-path chain rule (the seed's three terms)."""
        return self.chain.paths[0].factors if len(self.chain.paths) == 1 else ()

    @property
    def backward(self) -> Derivation | None:
        """The nested derivation of dC_0/da_j^(l) when the target sits in a hidden layer."""
        for path in self.chain.paths:
            if path.factors[0].backward is not None:
                return path.factors[0].backward
        return None

    @property
    def batch(self) -> BatchAverage:
        return BatchAverage(self.symbol, self.graph.spec.reduction)

    @property
    def delta_nodes(self) -> list[Node]:
        """The deltas the compact result uses, in node order."""
        return sorted(n for n in map(node_of, self.result.free_symbols)
                      if n is not None and n.kind == "delta")

    @property
    def delta_definitions(self) -> dict[sympy.Symbol, sympy.Expr]:
        """The definitions of the deltas the compact result uses."""
        return {n.symbol: self.engine.dC_dz(n.layer, n.j) for n in self.delta_nodes}

    def specialised(self, expr: sympy.Expr | None = None) -> sympy.Expr:
        """``expr`` (default: the result) with each g' of a concrete activation written out.

        Where g' has a form in the activation's output (sigma' = a(1 - a), tanh' = 1 - a^2)
        and its argument is a node z_j^(l), it becomes that form in a_j^(l), as the seeds
        write it; otherwise SymPy's derivative of the definition is substituted.
        """
        from .activations import A, ActivationPrime

        graph = self.graph

        def write_out(e):
            through = type(e).through_output_factored()
            node = node_of(e.args[0])
            if through is not None and node is not None and node.kind == "z":
                return through.xreplace({A: graph.a[node.layer][node.j]})
            return e.explicit(e.args[0])

        expr = self.result if expr is None else expr
        return expr.replace(lambda e: isinstance(e, ActivationPrime) and e.definition is not None,
                            write_out)

    def prove(self, **options):
        """Prove the result equal to SymPy's diff of the composed C_0 (see :mod:`.proof`)."""
        from .proof import prove

        return prove(self, **options)

    def __str__(self) -> str:
        from .documents import render_derivation

        return render_derivation(self)

    def _repr_latex_(self) -> str:
        """Jupyter: the result as one equation."""
        from .printing.latex import latex

        L = self.graph.L
        return f"$\\displaystyle {latex(self.lhs, L)} = {latex(self.result, L)}$"

    def _repr_markdown_(self) -> str:
        """Jupyter: the whole step-by-step derivation ($$ blocks)."""
        from .documents import derivation_document

        return derivation_document(self, "markdown")


def backprop(spec_or_graph: Spec | SymbolicGraph) -> Backprop:
    """The derivation engine of a spec (or of an already built graph)."""
    graph = spec_or_graph if isinstance(spec_or_graph, SymbolicGraph) else build_graph(
        spec_or_graph)
    return Backprop(graph)


def derive(spec: Spec | SymbolicGraph, target: str | Node) -> Derivation:
    """Shortcut: ``derive(spec, "w_{12}^{(L)}")``."""
    return backprop(spec).derive(target)


def prove_all(spec_or_engine: Spec | SymbolicGraph | Backprop, method: str = "auto", *,
              seed: int = 0, nodes: list[Node] | None = None):
    """Derive and prove every parameter's gradient (or those of ``nodes``): a
    :class:`~symprop.proof.ProofReport` (see :func:`symprop.proof.prove_parameters`)."""
    from .proof import prove_parameters

    engine = spec_or_engine if isinstance(spec_or_engine, Backprop) else backprop(
        spec_or_engine)
    return prove_parameters(engine, method, seed=seed, nodes=nodes)

