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

import math

import numpy as np
import sympy

from .graph import C0
from .layers.maps import MAP_LETTERS, bindings
from .layers.symbolic import SUM_LETTERS, general
from .notation import MAP_NODE_KINDS, Node, index_arithmetic, node_of

__all__ = ["backprop_equations", "instantiate", "layer_equations"]


def instantiate(expr: sympy.Expr, binding: dict[str, int],
                shapes: tuple[tuple[int, ...], ...] | None = None) -> sympy.Expr:
    """A general expression at concrete indices: letters bound to numbers (index arithmetic
    such as ``2p+u-1`` too), every Sum (of one letter or several) written out, a window's
    max over its letters written out (``write_out``), general nodes replaced by the
    network's symbols; with the network's ``shapes`` (layer -> shape), a map's node that the
    arithmetic places outside its map is 0, the zero padding."""
    def again(e: sympy.Expr, b: dict[str, int]) -> sympy.Expr:
        return instantiate(e, b, shapes)

    if isinstance(expr, sympy.Sum):
        return sympy.Add(*[again(expr.function, b) for b in bindings(expr.limits, binding)])
    if hasattr(expr, "write_out"):
        return expr.write_out(again, binding)
    node = node_of(expr)
    if node is not None and any(isinstance(i, str) for i in node.indices):
        indices = tuple(_index(i, binding) for i in node.indices)
        is_input = node.kind == "x" or (node.kind == "a" and node.layer == 0)
        on_map = shapes and len(indices) > 1 and node.kind in MAP_NODE_KINDS
        shape = shapes[0 if is_input else node.layer] if on_map else None
        if shape is not None and not all(0 <= i < n for i, n in zip(indices, shape)):
            return sympy.S.Zero
        return Node("x" if is_input else node.kind, None if is_input else node.layer,
                    *indices).symbol
    if isinstance(expr, sympy.Symbol) and expr.name in binding and node is None:
        return sympy.Integer(binding[expr.name])
    if not expr.args:
        return expr
    return expr.func(*[again(a, binding) for a in expr.args])


def _index(index: int | str, binding: dict[str, int]) -> int:
    if isinstance(index, int):
        return index
    if index in binding:
        return binding[index]
    terms, constant = index_arithmetic(index)
    return constant + sum(c * binding[letter] for letter, c in terms.items())


def layer_equations(engine, p) -> list[dict]:
    """Each layer's row: its number, kind, width, activation, bias and its definitions."""
    g = engine.graph
    rows = []
    for l, layer in g.layers.items():
        config = g.spec.layer(l)
        equations = [f"{p.doprint(lhs)} = {p.doprint(rhs)}"
                     for lhs, rhs in layer.general_definitions()]
        shape = g.spec.shapes[l]
        width = "x".join(map(str, shape)) if len(shape) > 1 else g.widths[l]  # 6x8x8: a map
        rows.append({"layer": p.layer(l), "width": width, "kind": layer.kind,
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
    concrete = instantiate(rhs, at, engine.graph.spec.shapes)
    mapping = {}
    for s in concrete.free_symbols:
        node = node_of(s)
        if node is not None and node.kind in ("delta", "adj") and node.layer == own:
            mapping[s] = engine.adjoint_of(node)
    if sympy.expand(concrete.xreplace(mapping) - truth) != 0:
        raise AssertionError(f"the general equation for {lhs} differs from the engine at {at}")
    return lhs


def _map_equation(engine, l: int) -> tuple[sympy.Expr, sympy.Expr]:
    """The accumulated gradient of a map layer's node (c, p, q), letters as its consumers'
    contributions name it: delta_{c,p,q}^(l) = (dC_0/da_{c,p,q}^(l)) g'(z_{c,p,q}^(l)) for a
    conv layer, dC_0/da_{c,p,q}^(l) = (what its readers pass back) for the others; checked
    at the map's first, middle and last nodes (the padding's zeros included)."""
    g = engine.graph
    layer, shape = g.layers[l], g.spec.shapes[l]
    letters = MAP_LETTERS[:len(shape)]
    incoming = _incoming(engine, l, "k")
    if layer.through_activation:
        lhs = general("delta", l, *letters)
        rhs = incoming * layer.activation.prime(general("z", l, *letters))
    else:
        lhs, rhs = general("adj", l, *letters), incoming
    size = math.prod(shape)
    for flat in sorted({0, size // 2, size - 1}):
        at = dict(zip(letters, map(int, np.unravel_index(flat, shape))))
        _checked(engine, lhs, rhs, at, engine.entry_gradient(l, flat), l)
    return lhs, rhs


def backprop_equations(engine, p) -> list[str]:
    """The backpropagation equations with letter indices, each checked at a concrete node."""
    g, L = engine.graph, engine.graph.L
    d = sympy.Derivative
    lines = []
    for l in range(L, 0, -1):
        layer = g.layers[l]
        if len(g.spec.shapes[l]) > 1:  # a map: letters c, p, q
            lhs, rhs = _map_equation(engine, l)
        elif layer.through_activation:  # a dense layer: delta = (dC_0/da) g'(z)
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
            letters = [i for i in node.indices if isinstance(i, str)]
            shape = next(q.shape for q in g.spec.layer(l).parameters(g.widths)
                         if q.kind == node.kind)
            ends = (False, True) if len(g.spec.shapes[l]) > 1 else (False,)
            for last in ends:  # the first entry, and a map's last (the padding's far side)
                at = {i: (n - 1 if last else 0) for i, n in zip(letters, shape)}
                entry = Node(node.kind, l, *at.values())
                _checked(engine, param, rhs, at, engine.gradient(entry), l)
            lines.append(f"{p.doprint(d(C0, param))} = {p.doprint(rhs)}")
    return lines
