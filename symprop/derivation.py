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

from .chain import BatchAverage, ChainRule, ChainSteps, Factor
from .errors import NameLookupError
from .graph import C0, SymbolicGraph, build_graph
from .notation import Node, node_of
from .spec import Spec

__all__ = ["Backprop", "Derivation", "backprop", "derive", "prove_all"]

class Backprop(ChainSteps):
    """Chain-rule derivatives of C_0 for one graph; node quantities are computed once.

    "Follow the arrows" (seed 001): dC_0/dv is the sum, over every node u that v feeds, of
    dC_0/du times du/dv.  Where u is a layer's entry node (a z of a dense layer, the output of
    any other kind) dC_0/du stays a symbol -- delta_j^(l), or dC_0/da_j^(l) -- so every result
    is compact, one layer deep, and deriving every parameter costs time linear in the network.
    """

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
        """da_i^(l)/dz_m^(l) of a dense layer, in layered symbols: g'(z_m) on the diagonal,
        softmax's Jacobian."""
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

    def local(self, layer: int, i: int, wrt: sympy.Symbol) -> sympy.Expr:
        """d entry_i^(l) / d wrt, from the layer's definition (memoized)."""
        return self._cached(("local", layer, i, wrt),
                            lambda: self.graph.layers[layer].local(i, wrt))

    # ------------------------------------------- accumulated (compact) gradients
    def dC_da(self, layer: int, j: int) -> sympy.Expr:
        """dC_0/da_j^(l): the loss derivative at the output, else the sum over the entry
        nodes u that a_j^(l) feeds of (u's accumulated gradient, a symbol) du/da_j^(l):
        sum_i delta_i^(l+1) w_ij^(l+1) when the next layer is dense."""
        g = self.graph
        if layer == g.L:
            return self.loss_derivative(j)

        return self._cached(("dC/da", layer, j), lambda: sympy.Add(*[
            self.contribution(c, layer, j) for c in g.consumers[layer]]))

    def contribution(self, consumer: int, layer: int, j: int) -> sympy.Expr:
        """What layer ``consumer`` passes back to dC_0/da_j^(l): the sum over its entry nodes
        u that read a_j^(l) of (u's accumulated-gradient symbol) du/da_j^(l)."""
        source, lay = self.graph.output(layer, j), self.graph.layers[consumer]
        return sympy.Add(*[lay.adjoints[i] * self.local(consumer, i, source)
                           for i in lay.readers(source)])

    def dC_dz(self, layer: int, j: int) -> sympy.Expr:
        """delta_j^(l) = dC_0/dz_j^(l) = sum_i (dC_0/da_i^(l)) (da_i^(l)/dz_j^(l))."""
        g = self.graph
        if g.is_elementwise(layer):
            return self._cached(("dC/dz", layer, j), lambda: sympy.Mul(
                self.dC_da(layer, j), self.activation_derivative(layer, j, j)))
        return self._cached(("dC/dz", layer, j), lambda: sympy.Add(*[
            self.dC_da(layer, i) * self.activation_derivative(layer, i, j)
            for i in range(g.widths[layer])]))

    def entry_gradient(self, layer: int, j: int) -> sympy.Expr:
        """The compact definition of the symbol of entry j of ``layer``: delta_j^(l) for a
        dense layer, dC_0/da_j^(l) for any other."""
        if self.graph.layers[layer].through_activation:
            return self.dC_dz(layer, j)
        return self.dC_da(layer, j)

    def gradient(self, node: Node) -> sympy.Expr:
        """The compact result dC_0/d(node) in layered symbols and next-layer deltas."""
        kind, l = node.kind, node.layer
        if kind == "z":
            return self.dC_dz(l, self.graph.position(node))
        if kind in ("a", "x"):
            return self.dC_da(l or 0, self.graph.position(node))
        if node.is_parameter:
            layer, symbol = self.graph.layers[l], node.symbol
            entries = layer.param_entries(node)
            if layer.through_activation and len(entries) == 1:  # a dense w_jk, b_j: one z
                return sympy.Mul(self.dC_dz(l, entries[0]), layer.local(entries[0], symbol))
            # a parameter every entry of a set reads (a conv weight, a gamma): the sum
            return self._cached(("param", node), lambda: sympy.Add(*[
                self.entry_gradient(l, i) * self.local(l, i, symbol) for i in entries]))
        raise not_derivable(node)

    def gradients(self, nodes: list[Node] | None = None) -> dict[Node, sympy.Expr]:
        """Every parameter's compact result (or those of ``nodes``)."""
        return {n: self.gradient(n) for n in (nodes or self.graph.parameters())}

    def delta_definitions(self) -> dict[sympy.Symbol, sympy.Expr]:
        """Every accumulated-gradient symbol (delta, dC_0/da) -> its compact definition."""
        g = self.graph
        return {s: self.entry_gradient(l, j) for l, layer in g.layers.items()
                for j, s in enumerate(layer.adjoints)}

    def adjoint_of(self, node: Node) -> sympy.Expr:
        """The compact definition of an accumulated-gradient node (delta_j^(l), adj_j^(l))."""
        return self.entry_gradient(node.layer, self.graph.position(node))

    # --------------------------------------------------------------- expansion
    def delta_expanded(self, layer: int, j: int) -> sympy.Expr:
        """The symbol of entry j of ``layer`` with every later one substituted, back to the
        output."""
        return self._cached(("delta*", layer, j),
                            lambda: self.expand_deltas(self.entry_gradient(layer, j)))

    def expand_deltas(self, expr: sympy.Expr) -> sympy.Expr:
        """Substitute every accumulated-gradient symbol in ``expr`` by its fully expanded
        definition."""
        mapping = {}
        for s in expr.free_symbols:
            node = node_of(s)
            if node is not None and node.kind in ("delta", "adj"):
                mapping[s] = self.delta_expanded(node.layer, self.graph.position(node))
        return expr.xreplace(mapping) if mapping else expr

    # ------------------------------------------------------------ derivations
    def has_path(self, node: Node) -> bool:
        """Whether the chain rule has a path from ``node`` to the loss: not for a map entry no
        window reads (a stride larger than the kernel), nor a weight whose windows all lie in
        the padding."""
        return not self.graph.spec.has_maps or bool(self.chain(node).paths)

    def derive(self, target: str | Node | sympy.Symbol) -> Derivation:
        """The derivation of dC_0/d(target); target in seed notation, e.g. ``w_{12}^{(L)}``.
        A name the network has but C_0 is not differentiated by (a delta, a target y_j, a
        layer's mu or r) raises :class:`~symprop.errors.NameLookupError`."""
        self.graph.spec.require("derive", "symprop derive")
        node = self.graph.resolve(target)
        if not (node.kind in _DERIVABLE or node.is_parameter):
            raise not_derivable(node)
        if not self.has_path(node):
            raise NameLookupError(
                f"{node} reaches the loss by no path: no window of the layer that reads it "
                f"covers it, or a later stride drops every entry such a window makes (for a "
                f"weight: every window it meets lies in the padding), so dC_0/d{node} = 0",
                hint="Derive an entry a window reads, e.g. one nearer the top-left corner")
        return Derivation(node, self)

    def derive_node(self, node: Node) -> Derivation:
        """The derivation of dC_0/d(node) for a node of the graph (no name to resolve)."""
        return Derivation(node, self)


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
        """The nested derivation of dC_0/da_j^(l) when the target sits in a hidden layer
        (the first, when it feeds several layers: see :attr:`backwards`)."""
        found = self.backwards
        return found[0] if found else None

    @property
    def backwards(self) -> list[Derivation]:
        """Every nested derivation of a hidden dC_0/da the chain rule goes through, once
        each, in the order of the chain rule's groups (the next layer, then skip
        connections)."""
        out: dict[Node, Derivation] = {}
        for group in self.chain.groups:
            for path in group.paths:
                nested = path.factors[0].backward
                if nested is not None:
                    out.setdefault(nested.target, nested)
                    break
        return list(out.values())

    @property
    def batch(self) -> BatchAverage:
        return BatchAverage(self.symbol, self.graph.spec.reduction)

    @property
    def delta_nodes(self) -> list[Node]:
        """The accumulated gradients the compact result uses (delta_j^(l) and dC_0/da_j^(l)
        of the layers it reaches), in node order."""
        return sorted(n for n in map(node_of, self.result.free_symbols)
                      if n is not None and n.kind in ("delta", "adj"))

    @property
    def delta_definitions(self) -> dict[sympy.Symbol, sympy.Expr]:
        """The definitions of the accumulated gradients the compact result uses."""
        return {n.symbol: self.engine.adjoint_of(n) for n in self.delta_nodes}

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
            output = _output_of(graph, e)
            if through is not None and output is not None:
                return through.xreplace({A: output})
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


def _output_of(graph: SymbolicGraph, prime) -> sympy.Symbol | None:
    """The node a = g(u) whose g' ``prime`` is, g'(u): a_j^(l) for g'(z_j^(l)) (a dense layer)
    or for g'(a_j^(l-1)) (an activation layer)."""
    node = node_of(prime.args[0])
    if node is not None and node.kind == "z":
        return graph.a[node.layer][graph.position(node)]
    applied = prime.base(prime.args[0])
    for layer in graph.layers.values():
        if hasattr(layer, "a_def") and applied in layer.a_def:
            return layer.outputs[layer.a_def.index(applied)]
    return None


def backprop(spec_or_graph: Spec | SymbolicGraph) -> Backprop:
    """The derivation engine of a spec (or of an already built graph)."""
    graph = spec_or_graph if isinstance(spec_or_graph, SymbolicGraph) else build_graph(
        spec_or_graph)
    return Backprop(graph)


#: Node kinds C_0 is differentiated by besides parameters: the nodes of every layer.
_DERIVABLE = frozenset({"w", "b", "z", "a", "x"})


def not_derivable(node: Node) -> NameLookupError:
    """Why dC_0/d(node) is not a derivation symprop prints, and what to ask for instead."""
    if node.kind in ("delta", "adj"):
        return NameLookupError(f"{node} is itself an accumulated gradient dC_0/d(node)",
                               hint="Derive the node it belongs to (z or a of that layer)")
    if node.kind == "y":
        return NameLookupError(f"{node} is a target, not a quantity C_0 is differentiated by",
                               hint="Derive a parameter or a node a_j, z_j instead")
    return NameLookupError(f"{node} is an intermediate quantity of layer {node.layer} (it "
                           "depends on the layer's input), not a node or a parameter",
                           hint=f"Derive a parameter or a node of layer {node.layer} instead, "
                                f"e.g. a_0^({node.layer})")


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

