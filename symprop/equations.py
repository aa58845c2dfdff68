"""A network's equations in letter indices, as a textbook states them, each checked first.

* :func:`layer_equations`: every layer's definition (z_j^(l) = sum_k w_jk a_k + b_j,
  a_j = g(z_j); a layernorm's mu, sigma, xhat and a_j; ...), from the layers themselves;
* :func:`backprop_equations`: the accumulated gradient of every layer, output first --
  delta_k^(l) = (sum_j delta_j^(l+1) w_jk^(l+1)) g'(z_k^(l)) in seed 000's networks, and in
  general the sum, over the layers a node feeds, of what each passes back -- then every
  parameter's gradient.

Nothing is typed: each layer writes its own general form, and every equation is instantiated
at a concrete node (:func:`instantiate`) and compared with the chain-rule engine's result
before it is stated.
"""

from __future__ import annotations

import sympy

from .graph import C0
from .layers.symbolic import SUM_LETTERS, general
from .notation import Node, node_of

__all__ = ["backprop_equations", "instantiate", "layer_equations"]


def instantiate(expr: sympy.Expr, binding: dict[str, int]) -> sympy.Expr:
    """A general expression at concrete indices: letters bound to numbers (``k + 4`` too),
    every Sum written out, general nodes replaced by the network's symbols."""
    if isinstance(expr, sympy.Sum):
        (var, low, high), = expr.limits
        return sympy.Add(*[instantiate(expr.function, {**binding, str(var): v})
                           for v in range(int(low), int(instantiate(high, binding)) + 1)])
    node = node_of(expr)
    if node is not None and any(isinstance(i, str) for i in node.indices):
        indices = [_index(i, binding) for i in node.indices]
        if node.kind == "x" or (node.kind == "a" and node.layer == 0):
            return Node("x", None, *indices).symbol
        return Node(node.kind, node.layer, *indices).symbol
    if isinstance(expr, sympy.Symbol) and expr.name in binding and node is None:
        return sympy.Integer(binding[expr.name])
    if not expr.args:
        return expr
    return expr.func(*[instantiate(a, binding) for a in expr.args])


def _index(index: int | str, binding: dict[str, int]) -> int:
    if isinstance(index, int):
        return index
    letter, _, shift = index.partition("+")
    return binding[letter] + int(shift or 0)


def layer_equations(engine, p) -> list[dict]:
    """Each layer's row: its number, kind, width, activation, bias and its definitions."""
    g = engine.graph
    rows = []
    for l, layer in g.layers.items():
        config = g.spec.layer(l)
        equations = [f"{p.doprint(lhs)} = {p.doprint(rhs)}"
                     for lhs, rhs in layer.general_definitions()]
        rows.append({"layer": p.layer(l), "width": g.widths[l], "kind": layer.kind,
                     "activation": str(g.spec.activation_of(l)),
                     "bias": g.spec.has_bias(l), "describe": config.describe(),
                     "reads": ", ".join(p.layer(s) for s in config.inputs),
                     "parameters": ", ".join(f"{q.key}{l} {q.shape}"
                                             for q in config.parameters(g.widths)) or "none",
                     "equations": equations})
    return rows


def _incoming(engine, layer: int, letter: str) -> sympy.Expr:
    """dC_0/da^(l) at node ``letter``: the loss at the output, else what each layer reading
    layer l passes back (letter k)."""
    g = engine.graph
    if layer == g.L:
        return sympy.Derivative(C0, general("a", layer, letter))
    return sympy.Add(*[g.layers[c].general_contribution(layer) for c in g.consumers[layer]])


def _checked(engine, lhs, rhs, at: dict[str, int], truth: sympy.Expr, own: int) -> str:
    """``rhs`` at a concrete node must equal the engine's ``truth`` (the symbols of layer
    ``own`` written out one level, as the engine's compact results are)."""
    concrete = instantiate(rhs, at)
    mapping = {}
    for s in concrete.free_symbols:
        node = node_of(s)
        if node is not None and node.kind in ("delta", "adj") and node.layer == own:
            mapping[s] = engine.adjoint_of(node)
    if sympy.expand(concrete.xreplace(mapping) - truth) != 0:
        raise AssertionError(f"the general equation for {lhs} differs from the engine at {at}")
    return lhs


def backprop_equations(engine, p) -> list[str]:
    """The backpropagation equations with letter indices, each checked at a concrete node."""
    g, L = engine.graph, engine.graph.L
    d = sympy.Derivative
    lines = []
    for l in range(L, 0, -1):
        layer = g.layers[l]
        if layer.through_activation:  # a dense layer: delta = (dC_0/da) g'(z)
            letter = "j" if l == L else "k"
            lhs = general("delta", l, letter)
            if l == L and not g.is_elementwise(L):
                m = SUM_LETTERS["m"]
                rhs = sympy.Sum(d(C0, general("a", L, "m"))
                                * d(general("a", L, "m"), general("z", L, "j")),
                                (m, 0, g.widths[L] - 1))
            else:
                rhs = _incoming(engine, l, letter) * layer.activation.prime(
                    general("z", l, letter))
            if l < L:
                _checked(engine, lhs, rhs, {"k": 0}, engine.dC_dz(l, 0), l)
        elif l == L:
            continue  # dC_0/da_j^(L) is the loss's own derivative
        else:
            lhs, rhs = general("adj", l, "k"), _incoming(engine, l, "k")
            _checked(engine, lhs, rhs, {"k": 0}, engine.dC_da(l, 0), l)
        lines.append(f"{p.doprint(lhs)} = {p.doprint(rhs)}")
    for l in range(L, 0, -1):
        layer = g.layers[l]
        for param, rhs in layer.general_parameters():
            node = node_of(param)
            at = dict.fromkeys((i for i in node.indices if isinstance(i, str)), 0)
            first = Node(node.kind, l, *[0] * len(node.indices))
            _checked(engine, param, rhs, at, engine.gradient(first), l)
            lines.append(f"{p.doprint(d(C0, param))} = {p.doprint(rhs)}")
    return lines
