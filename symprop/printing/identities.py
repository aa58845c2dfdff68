"""The identities a derivation states beside its result, each derived, none typed:

* a concrete activation's g' (SymPy's derivative, and its form through the output);
* softmax's Jacobian entry, in general form;
* the Jacobian entry of a layer without a z on the path (a layernorm's
  gamma_j/sigma ([j = m] - (1 + xhat_j xhat_m)/n_(l-1)), n_(l-1) printed as the
  number it is), from the layer's letter form;
* the definitions of the named quantities a result uses (mu, sigma, xhat).
"""

from __future__ import annotations

import sympy

from ..activations import A, ActivationPrime, Softmax
from ..layers.letters import N
from ..notation import Node, node_of
from .seed import Width

__all__ = ["activation_identities", "general_node", "jacobian_identities", "layer_jacobians",
           "named_definitions"]


def general_node(kind: str, layer: int | str, *indices: str) -> sympy.Symbol:
    """The symbol of a node with letter indices, e.g. a_j^(L), for general equations."""
    return Node(kind, layer, *indices).symbol


def activation_identities(expr: sympy.Expr, printer) -> list[str]:
    """For each concrete g' in ``expr``: g'(z) = SymPy's derivative (= its form in g(z))."""
    lines = []
    z = sympy.Symbol("z", real=True)
    primes = sorted({type(e) for e in expr.atoms(ActivationPrime) if e.definition is not None},
                    key=lambda c: c.__name__)
    for prime in primes:
        sides = [prime(z), prime.explicit(z)]
        through = prime.through_output_factored()
        if through is not None:
            sides.append(through.xreplace({A: prime.base(z)}))
        # id' = 1 through the output is 1 again: each form once
        lines.append(" = ".join(dict.fromkeys(printer.doprint(s) for s in sides)))
    return lines


def jacobian_identities(chain, printer) -> list[str]:
    """For a vector activation (softmax) on the path: its Jacobian entry in general form."""
    lines = []
    layers = sorted({node_of(f.numerator).layer for path in chain.paths for f in path.factors
                     if f.backward is None and node_of(f.numerator) is not None
                     and node_of(f.numerator).kind == "a"
                     and isinstance(f.definition, Softmax)})
    i, m = sympy.symbols("i m", integer=True)
    for layer in layers:
        a_i, a_m = general_node("a", layer, "i"), general_node("a", layer, "m")
        lhs = sympy.Derivative(a_i, general_node("z", layer, "m"))
        rhs = a_i * (sympy.KroneckerDelta(i, m) - a_m)
        lines.append(f"{printer.doprint(lhs)} = {printer.doprint(rhs)}")
    return lines


def _formula_layers(chain, graph) -> list:
    """The layers without a z (formula kinds) whose Jacobian a path of ``chain`` uses."""
    found = set()
    for path in chain.paths:
        for f in path.factors:
            node = node_of(f.numerator)
            if f.backward is None and node is not None and node.kind == "a" \
                    and hasattr(graph.layers.get(node.layer), "jacobians"):
                found.add(node.layer)
    return [graph.layers[l] for l in sorted(found)]


def layer_jacobians(chain, graph, printer) -> list[str]:
    """d a_j^(l) / d a_m of each input of a formula layer on the path, in general form.

    The width a layer averages over is its number (a layernorm of 8 nodes: (... )/8), as in
    the definitions of mu and sigma beside it: in a document n is the batch size only.
    """
    lines = []
    for layer in _formula_layers(chain, graph):
        for role, jacobian in layer.jacobians.items():
            source = layer.roles[role]
            wrt = general_node("x", None, "m") if source == 0 else \
                general_node("a", source, "m")
            lhs = sympy.Derivative(general_node("a", layer.index, "j"), wrt)
            rhs = layer.general(jacobian.xreplace({N: Width(layer.n_in)}))
            lines.append(f"{printer.doprint(lhs)} = {printer.doprint(rhs)}")
    return lines


def named_definitions(exprs, graph, printer) -> list[str]:
    """The definitions of the named quantities (mu, sigma, xhat) ``exprs`` use, in general
    form, each layer's in the order they build on each other."""
    used = set()
    for expr in exprs:
        for s in expr.free_symbols:
            node = node_of(s)
            if node is not None and node.kind in ("mu", "sigma", "r", "xhat"):
                used.add(node.layer)
    lines = []
    for l in sorted(used):
        layer = graph.layers[l]
        for slot_symbol, form in layer.named_forms.items():
            lines.append(f"{printer.doprint(layer.general(slot_symbol))} = "
                         f"{printer.doprint(layer.general(form))}")
    return lines
