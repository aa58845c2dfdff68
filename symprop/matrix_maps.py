"""The batch form of a layer that reads or makes maps (conv, pooling, flatten): its general
equations (:mod:`symprop.equations`) over a batch, the sample index b first in every array,

    dC/dw_{o,c,u,v}^(l) = sum_b sum_{p,q} Delta_{b,o,p,q}^(l) A_{b,c,sp+u-P,sq+v-P}^(l-1),

the correlation form of seed 001's steps (a map has more axes than a matrix): the layer's
Delta = dC/dA o g'(Z) when it has a z, each parameter's gradient summed over the batch and
what it passes back to its input.  Like the dense layer's matrix products, nothing is taken
on trust: each step is written out at a spread of entries for a batch of two samples and
compared with the chain-rule engine's per-sample results (:class:`symprop.matrix._Check`).
"""

from __future__ import annotations

import math

import numpy as np
import sympy

from .equations import instantiate
from .layers.maps import MAP_LETTERS, letter
from .matrix_notation import entrywise_symbol
from .matrix_steps import CHECK_BATCH, ROW, MatrixStep, spread
from .notation import Node, index_arithmetic, node_of

__all__ = ["batch_array", "map_steps", "reads_or_makes_maps"]

#: A general node's kind -> the batch array it is an entry of.
_ARRAYS = {"a": "A", "x": "X", "z": "Z", "delta": "Delta", "adj": "dA"}


def reads_or_makes_maps(graph, l: int) -> bool:
    """Whether layer l's input or output has channels and positions (its batch form is the
    correlation form here, not a dense layer's matrix products)."""
    shapes = graph.spec.shapes
    return len(shapes[l]) > 1 or any(len(shapes[s]) > 1 for s in graph.spec.layer(l).inputs)


def _index(index: int | str) -> sympy.Expr:
    """A general node's index as a SymPy expression of letters: ``2p+u-1`` -> 2p + u - 1."""
    if isinstance(index, int):
        return sympy.Integer(index)
    terms, constant = index_arithmetic(index)
    return sympy.Add(*[c * letter(name) for name, c in terms.items()], constant)


def batch_array(expr: sympy.Expr) -> sympy.Expr:
    """A general equation over the batch: a_{c,p,q}^(l) -> A_{b,c,p,q}^(l), delta -> Delta,
    dC_0/da -> (dC/dA)_{b,...}, x -> X_{b,...}; parameters stay as they are (one per
    network, not per sample)."""
    mapping = {}
    for s in expr.atoms(sympy.Symbol):
        node = node_of(s)
        if node is None or node.kind not in _ARRAYS:
            continue
        is_input = node.kind == "x" or (node.kind == "a" and node.layer == 0)
        base = entrywise_symbol("X", None) if is_input else entrywise_symbol(
            _ARRAYS[node.kind], node.layer)
        mapping[s] = sympy.Indexed(sympy.IndexedBase(base), ROW, *map(_index, node.indices))
    return expr.xreplace(mapping)


class _Entries:
    """A general equation's value at entry (b, index) of the check's batch, and the engine's."""

    def __init__(self, engine, check, own: int):
        self.engine, self.check, self.own = engine, check, own
        self.shapes = engine.graph.spec.shapes

    def one_level(self, expr: sympy.Expr) -> sympy.Expr:
        """Layer ``own``'s accumulated gradients (delta, dC_0/da) by their definitions in the
        next layers' symbols, as the engine states its compact results."""
        e, mapping = self.engine, {}
        for s in expr.free_symbols:
            node = node_of(s)
            if node is None or node.layer != self.own or node.kind not in ("delta", "adj"):
                continue
            i = int(np.ravel_multi_index(node.indices, self.shapes[self.own]))
            mapping[s] = e.dC_dz(self.own, i) if node.kind == "delta" else e.dC_da(self.own, i)
        return expr.xreplace(mapping)

    def general(self, rhs: sympy.Expr, binding: dict[str, int], b: int) -> sympy.Expr:
        value = self.one_level(instantiate(rhs, binding, self.shapes))
        return self.check.copy(self.check.scale * value, b)

    def truth(self, value: sympy.Expr, b: int) -> sympy.Expr:
        return self.check.copy(self.check.scale * self.one_level(value), b)

    def require(self, got: sympy.Expr, want: sympy.Expr, what: str) -> None:
        if not self.check.equal(got, want):
            raise AssertionError(f"matrix form, {what} differs from the scalar derivation")


def _step(step, l, lhs, rhs, shape, at, scalar, summed, checked, total, read=None):
    return MatrixStep(step, l, batch_array(lhs), batch_array(rhs), shape, at,
                      batch_array(rhs), scalar, summed, checked, total, entrywise=True,
                      layer_read=read)


def _own_letters(shape: tuple[int, ...]) -> str:
    return MAP_LETTERS[:len(shape)] if len(shape) > 1 else "k"


def map_steps(engine, check, l: int) -> list[MatrixStep]:
    """Layer l's batch steps, output side first: Delta^(l) (a layer with a z), each
    parameter array's gradient, what it passes back to its input (not to X)."""
    g = engine.graph
    layer, shapes = g.layers[l], g.spec.shapes
    entries = _Entries(engine, check, l)
    steps = []
    if layer.through_activation:
        letters = _own_letters(shapes[l])
        lhs = Node("delta", l, *letters).symbol
        grad = Node("adj", l, *letters).symbol
        rhs = grad * layer.activation.prime(Node("z", l, *letters).symbol)
        picked = spread((CHECK_BATCH, *shapes[l]))
        for b, *index in picked:
            at = dict(zip(letters, index))
            flat = int(np.ravel_multi_index(index, shapes[l]))
            entries.require(entries.general(rhs, at, b),
                            entries.truth(engine.dC_dz(l, flat), b),
                            f"Delta of layer {l} at {(b, *index)}")
        steps.append(_step("delta", l, lhs, rhs, ("n", *shapes[l]), (ROW, *letters),
                           engine.dC_dz(l, 0), False, len(picked),
                           CHECK_BATCH * math.prod(shapes[l])))
    for param, rhs in layer.general_parameters():
        node = node_of(param)
        nodes = [q for q in g.parameters() if q.layer == l and q.kind == node.kind]
        shape = next(q.shape for q in g.spec.layer(l).parameters(g.widths)
                     if q.kind == node.kind)
        picked = [nodes[i] for (i,) in spread((len(nodes),))]
        for q in picked:
            at = dict(zip(node.indices, q.indices))
            got = sympy.Add(*[entries.general(rhs, at, b) for b in range(CHECK_BATCH)])
            want = sympy.Add(*[entries.truth(engine.gradient(q), b) for b in range(CHECK_BATCH)])
            entries.require(got, want, f"the gradient of {q}")
        total = sympy.Sum(rhs, (ROW, 0, sympy.Symbol("n", integer=True) - 1))
        steps.append(MatrixStep("weights" if node.kind == "w" else "biases", l,
                                sympy.Derivative(sympy.Symbol("C", real=True), param),
                                batch_array(total), shape, node.indices, batch_array(total),
                                engine.gradient(nodes[0]), True, len(picked), len(nodes),
                                entrywise=True))
    source = l - 1
    if source == 0:
        return steps
    letters = _own_letters(shapes[source])
    rhs = layer.general_contribution(source)
    picked = spread((CHECK_BATCH, *shapes[source]))
    for b, *index in picked:
        flat = int(np.ravel_multi_index(index, shapes[source]))
        entries.require(entries.general(rhs, dict(zip(letters, index)), b),
                        entries.truth(engine.contribution(l, source, flat), b),
                        f"what layer {l} passes back to layer {source} at {(b, *index)}")
    lhs = Node("adj", source, *letters).symbol
    steps.append(_step("inputs", l, lhs, rhs, ("n", *shapes[source]), (ROW, *letters),
                       engine.contribution(l, source, 0), False, len(picked),
                       CHECK_BATCH * math.prod(shapes[source]), read=source))
    return steps
