"""The symbolic graph of a spec: every symbol, the layered definitions, and the composed C_0.

Each layer of the spec builds its own symbolic layer (:mod:`symprop.layers`); the graph holds
them, in order, with who reads whom (``consumers``: a skip connection makes a layer feed a
later one besides the next).  Two views that must agree (and :mod:`symprop.proof` checks that
they do):

* the **layered** view, one layer at a time, as seed 000 states it:
  ``z_j^(l) = sum_k w_jk^(l) a_k^(l-1) (+ b_j^(l))``, ``a_j^(l) = g^(l)(z_j^(l))`` for a dense
  layer, each kind's own definition for the others, ``C_0 = sum_j loss(a_j^(L), y_j)``;
* the **composed** view: C_0 written out in x, y and the parameters only,
  ``C_0(a^(L)(z^(L)(w^(L), a^(L-1)(...))))``.

Definitions keep their terms in node order (k = 0, 1, ...), so a derivation can expand a sum
exactly as the seed writes it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import sympy

from .errors import NameLookupError
from .layers import with_article
from .layers.symbolic import GraphContext, LazyRows, SymbolicLayer, node
from .losses import A_OUT, LOSSES, Y_OUT
from .notation import KINDS, Node, node_of, parse_node_name
from .spec import Spec, parse_custom_loss

__all__ = ["C0", "LazyRows", "SymbolicGraph", "build_graph"]

#: The per-sample loss as a symbol, for printing ``\partial C_0 / \partial ...``.
C0 = sympy.Symbol("C_0", real=True)


@dataclass
class SymbolicGraph:
    """Symbols and definitions of one network (built by :func:`build_graph`)."""

    spec: Spec
    x: tuple[sympy.Symbol, ...]
    y: tuple[sympy.Symbol, ...]
    #: layers[l]: the symbolic layer l = 1..L (see symprop.layers.symbolic).
    layers: dict[int, SymbolicLayer]
    #: consumers[l]: the layers that read layer l (l + 1, and any skip connection), in order.
    consumers: dict[int, tuple[int, ...]]
    #: a[l][j]: the output nodes of layer l (a[0] is x).
    a: dict[int, tuple[sympy.Symbol, ...]]
    #: loss_terms[j]: the term of output node j in C_0, in a_j^(L) and y_j.
    loss_terms: tuple[sympy.Expr, ...]
    _cache: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------ views of the dense layers
    @functools.cached_property
    def w(self) -> dict[int, LazyRows]:
        """w[l][j][k] = w_jk^(l) for each dense layer l (rows built when first read)."""
        return self._dense("w")

    @functools.cached_property
    def b(self) -> dict[int, tuple[sympy.Symbol, ...] | None]:
        """b[l][j], or None for a dense layer without biases."""
        return self._dense("b")

    @functools.cached_property
    def z(self) -> dict[int, tuple[sympy.Symbol, ...]]:
        """z[l][j] for each layer with a z (dense, conv)."""
        return self._with_z("z")

    @functools.cached_property
    def delta(self) -> dict[int, tuple[sympy.Symbol, ...]]:
        """delta[l][j] = dC_0/dz_j^(l) for each layer with a z."""
        return self._with_z("delta")

    @functools.cached_property
    def z_terms(self) -> dict[int, LazyRows]:
        """z_terms[l][j]: the terms of z_j^(l), in order (w_j0 a_0, ..., b_j)."""
        return self._with_z("z_terms")

    @functools.cached_property
    def a_def(self) -> dict[int, tuple[sympy.Expr, ...]]:
        """a_def[l][j] = g^(l)(z_j^(l)) or Softmax(j, ...), for every layer with an
        activation (dense, conv, activation)."""
        return {l: layer.a_def for l, layer in self.layers.items() if hasattr(layer, "a_def")}

    @functools.cached_property
    def activation(self) -> dict[int, type]:
        """The activation class of each layer with an activation."""
        return {l: layer.activation for l, layer in self.layers.items()
                if hasattr(layer, "a_def")}

    def _dense(self, name: str) -> dict:
        return {l: getattr(layer, name) for l, layer in self.layers.items()
                if layer.kind == "dense"}

    def _with_z(self, name: str) -> dict:
        return {l: getattr(layer, name) for l, layer in self.layers.items()
                if layer.through_activation}

    # ------------------------------------------------------------ basic views
    @property
    def L(self) -> int:
        return self.spec.L

    @property
    def widths(self) -> tuple[int, ...]:
        return self.spec.layers

    @property
    def is_dense(self) -> bool:
        return self.spec.is_dense

    @property
    def loss(self) -> sympy.Expr:
        """C_0 in the layered view: sum of the output nodes' loss terms."""
        return sympy.Add(*self.loss_terms)

    def z_def(self, layer: int, j: int) -> sympy.Expr:
        return self.layers[layer].z_def(j)

    def is_elementwise(self, layer: int) -> bool:
        """Whether a dense or activation layer's activation acts node by node."""
        return self.layers[layer].elementwise

    @functools.cached_property
    def kinds(self) -> dict[str, tuple[bool, int]]:
        """Every node kind of this network (seed 000's, the layers' own): has a layer, indices.
        A kind two layers use with different indices (an rmsnorm's r^(l), a custom
        parameter r_j^(l)) counts them as :meth:`kinds_of` the layer a name names."""
        out = dict(KINDS)
        for layer in self.layers.values():
            for p in getattr(layer, "param_specs", {}).values():
                out.setdefault(p.kind, (True, len(p.letters)))
        out["x"] = (False, len(self.spec.input_shape))
        return out

    def kinds_of(self, layer: int) -> dict[str, tuple[bool, int]]:
        """The node kinds as layer ``layer`` names them, by their spelling: its own
        parameters' letters before the other kinds' (a custom layer's r_j^(l) has one index
        where an rmsnorm's r^(l) has none)."""
        out = dict(KINDS)
        lay = self.layers.get(layer)
        for p in getattr(lay, "param_specs", {}).values():
            out[str(p.kind)] = (True, len(p.letters))
        for kind, count in getattr(lay, "node_kinds", {}).items():
            out[kind] = (True, count)
        return out

    def _in_own_layer(self, node_: Node) -> Node:
        """A name typed in a layer with a parameter spelt like it (a custom layer's r) is
        that parameter: its kind becomes the layer's own (:class:`~symprop.notation.OwnKind`)."""
        for p in getattr(self.layers.get(node_.layer), "param_specs", {}).values():
            if p.kind != node_.kind and str(p.kind) == node_.kind:
                return Node(p.kind, node_.layer, node_.j, node_.k)
        return node_

    def parameters(self) -> list[Node]:
        """Every parameter, layer by layer (w before b, row-major; each kind its own order)."""
        return [p for layer in self.layers.values() for p in layer.parameters]

    def parameter_symbols(self) -> list[sympy.Symbol]:
        return [p.symbol for p in self.parameters()]

    def position(self, node_: Node) -> int:
        """The flat number of a node in its layer (C order over the layer's shape): j for a
        flat layer, the C-order position of (c, p, q) in a map."""
        if len(node_.indices) == 1:
            return node_.j
        layer = 0 if node_.kind in ("x", "y") else node_.layer
        return int(np.ravel_multi_index(node_.indices, self.spec.shapes[layer]))

    def output(self, layer: int, j: int) -> sympy.Symbol:
        """a_j^(l), or the input x_j for layer 0."""
        return self.a[layer][j]

    def resolve(self, name: str | Node | sympy.Symbol) -> Node:
        """A node from a user's name (``w_{12}^{(L)}``), a :class:`Node` or a symbol."""
        if isinstance(name, sympy.Symbol):
            node_ = node_of(name)
            if node_ is None:
                raise NameLookupError(f"{name} is not a symbol of this network")
        elif isinstance(name, Node):
            node_ = name
        else:
            node_ = parse_node_name(name, self.widths, self.kinds, self.kinds_of)
        if node_.kind == "a" and node_.layer == 0:
            node_ = Node("x", None, *node_.indices)
        if node_.kind in ("x", "a") and len(node_.indices) > 1:
            self._check_map_node(node_, name)
        if node_.kind in ("x", "y", "a"):
            return node_
        node_ = self._in_own_layer(node_)
        layer = self.layers.get(node_.layer)
        if node_.kind == "b" and layer is not None and layer.through_activation \
                and layer.b is None:
            raise NameLookupError(
                f"{name!s} is a bias, but layer {node_.layer} has none",
                hint="Set bias = true (or a list per layer) in the spec to add biases.")
        if layer is None:
            raise NameLookupError(f"{name!s} names layer {node_.layer}, which has no "
                                  f"{node_.kind}", hint=f"Layers run 1..{self.L}")
        if node_.symbol not in self._symbols_of(node_.layer):
            what = layer.kind
            raise NameLookupError(f"{name!s} is not a node or parameter of layer "
                                  f"{node_.layer}, {with_article(what)} layer",
                                  hint=self._has_hint(node_.layer))
        return node_

    def _check_map_node(self, node_: Node, name) -> None:
        """A node of a map (x_{c,p,q}, a_{o,p,q}^(l)) must lie inside its layer's shape."""
        layer = node_.layer or 0
        shape = self.spec.shapes[layer] if 0 <= layer <= self.L else ()
        if len(shape) != len(node_.indices) or any(
                i >= n for i, n in zip(node_.indices, shape)):
            raise NameLookupError(f"{name!s} is not a node of layer {layer}, of shape "
                                  f"{list(shape)}", hint="Indices run from 0 along each axis "
                                                         "(channel first)")

    def _symbols_of(self, layer: int) -> set[sympy.Symbol]:
        key = ("symbols", layer)
        if key not in self._cache:
            lay = self.layers[layer]
            found = {p.symbol for p in lay.parameters} | set(lay.entries) | set(lay.adjoints)
            self._cache[key] = found | set(lay.named)
        return self._cache[key]

    def _has_hint(self, layer: int) -> str:
        lay = self.layers[layer]
        shape = self.spec.shapes[layer]
        if len(shape) > 1:  # a map: its shape, and each parameter array's
            arrays = [f"{p.kind} of shape {list(p.shape)}" for l, p in self.spec.parameters()
                      if l == layer]
            return (f"Layer {layer} is {with_article(lay.kind)} layer of shape {list(shape)} with "
                    + (", ".join(arrays) if arrays else "no parameters")
                    + "; indices run from 0 along each axis.")
        params = sorted({p.kind for p in lay.parameters})
        names = ", ".join(params) if params else "no parameters"
        return (f"Layer {layer} is {with_article(lay.kind)} layer of {lay.width} node(s) with "
                f"{names}.")

    def definition(self, symbol: sympy.Symbol) -> sympy.Expr | None:
        """Right-hand side of a layered definition (z, a, a named quantity), or None for
        inputs and parameters."""
        found = node_of(symbol)
        if found is None or found.layer not in self.layers:
            return None
        return self.layers[found.layer].definition(symbol)

    def numeric_definition(self, symbol: sympy.Symbol):
        """:meth:`definition` for evaluating at a point: a layer may give a
        :class:`~symprop.numeric.Products` that evaluates without building its sum."""
        found = node_of(symbol)
        if found is None or found.layer not in self.layers:
            return None
        return self.layers[found.layer].numeric_definition(symbol)

    # ------------------------------------------------------------ composed view
    def composed_layer(self, layer: int) -> dict[sympy.Symbol, sympy.Expr]:
        """Every symbol of ``layer`` written in x and the parameters only (memoized)."""
        key = ("composed", layer)
        if key not in self._cache:
            mapping: dict[sympy.Symbol, sympy.Expr] = {}
            for l in self.layers[layer].inputs:
                if l:
                    mapping.update(self.composed_layer(l))
            self._cache[key] = self.layers[layer].compose(mapping)
        return self._cache[key]

    @property
    def composed_C0(self) -> sympy.Expr:
        """C_0 as an explicit composition in x, y and the parameters (seed 000's
        C_0(a(z(w, a(...)))))."""
        key = "composed_C0"
        if key not in self._cache:
            outputs = self.composed_layer(self.L)
            self._cache[key] = self.loss.xreplace(outputs)
        return self._cache[key]

    def composed_above(self, node_: Node) -> dict[sympy.Symbol, sympy.Expr]:
        """Every layered symbol that depends on ``node_``, written in ``node_``'s level.

        For a parameter of layer l that is layer l's symbols and every later layer's,
        composed from the symbols of the layers below l and the parameters; for z_j^(l) the
        a^(l) and later layers (in z^(l)); for a_k^(l) or x_k the layers after l (in the
        symbols of layer l and below).  Substituting this map turns "a function of the
        network" into a function of ``node_`` one can ``diff``.  Memoized per first layer
        composed: do not change the returned map.
        """
        if node_.is_parameter:
            key = ("above", node_.layer, False)
        else:
            layer = 0 if node_.kind == "x" else node_.layer
            key = ("above", layer + 1, node_.kind == "z")
        if key not in self._cache:
            self._cache[key] = self._composed_from(key[1], through_z=key[2])
        return self._cache[key]

    def _composed_from(self, start: int, through_z: bool) -> dict[sympy.Symbol, sympy.Expr]:
        mapping: dict[sympy.Symbol, sympy.Expr] = {}
        if through_z:
            below = self.layers[start - 1]
            mapping.update(zip(below.outputs, below.a_def))
        for l in range(start, self.L + 1):
            mapping.update(self.layers[l].compose(mapping))
        return mapping

    def to_inputs(self) -> dict[sympy.Symbol, sympy.Expr]:
        """Substitution of every layered symbol by its composed expression."""
        mapping: dict[sympy.Symbol, sympy.Expr] = {}
        for l in range(1, self.L + 1):
            mapping.update(self.composed_layer(l))
        return mapping


def _loss_terms(spec: Spec, a_out, y) -> tuple[sympy.Expr, ...]:
    n = spec.layers[-1]
    rule = LOSSES.get(spec.loss)
    if rule is not None:
        return tuple(rule.term(a_j, y_j, n) for a_j, y_j in zip(a_out, y))
    expr = parse_custom_loss(spec)
    return tuple(expr.xreplace({A_OUT: a_j, Y_OUT: y_j}) for a_j, y_j in zip(a_out, y))


@functools.lru_cache(maxsize=32)
def build_graph(spec: Spec) -> SymbolicGraph:
    """Build the symbols and layered definitions of ``spec``, layer by layer.

    Cheap: linear in the number of nodes, since the symbols a layer has in quadratic number
    (a dense layer's weights and the terms of its z) are built when first read.
    """
    shape = spec.input_shape
    x = tuple(node("x", None, k) for k in range(spec.layers[0])) if len(shape) == 1 else \
        tuple(node("x", None, *map(int, idx)) for idx in np.ndindex(*shape))
    y = tuple(node("y", None, j) for j in range(spec.layers[-1]))
    outputs: dict[int, tuple[sympy.Symbol, ...]] = {0: x}
    layers: dict[int, SymbolicLayer] = {}
    for config in spec.stack:
        layer = config.build(GraphContext(spec, outputs))
        layers[config.index] = layer
        outputs[config.index] = tuple(layer.outputs)
    consumers = {l: tuple(c for c, layer in layers.items() if l in layer.inputs)
                 for l in range(spec.L + 1)}
    return SymbolicGraph(spec=spec, x=x, y=y, layers=layers, consumers=consumers, a=outputs,
                         loss_terms=_loss_terms(spec, outputs[spec.L], y))
