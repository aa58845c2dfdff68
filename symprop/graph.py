"""The symbolic graph of a spec: every symbol, the layered definitions, and the composed C_0.

Two views that must agree (and :mod:`symprop.proof` checks that they do):

* the **layered** view, one layer at a time, as seed 000 states it:
  ``z_j^(l) = sum_k w_jk^(l) a_k^(l-1) (+ b_j^(l))``, ``a_j^(l) = g^(l)(z_j^(l))``,
  ``C_0 = sum_j loss(a_j^(L), y_j)``;
* the **composed** view: C_0 written out in x, y, w and b only,
  ``C_0(a^(L)(z^(L)(w^(L), a^(L-1)(...))))``.

Definitions keep their terms in node order (k = 0, 1, ...), so a derivation can expand a sum
exactly as the seed writes it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sympy

from .activations import (
    ElementwiseActivation,
    Softmax,
    activation_class,
    custom_activation_class,
    generic_activation,
)
from .errors import NameLookupError
from .losses import A_OUT, LOSSES, Y_OUT
from .notation import Node, node_of, node_symbol, parse_node_name
from .spec import Spec, parse_custom_activation, parse_custom_loss

__all__ = ["C0", "LazyRows", "SymbolicGraph", "build_graph"]

#: The per-sample loss as a symbol, for printing ``\partial C_0 / \partial ...``.
C0 = sympy.Symbol("C_0", real=True)


def _sym(kind: str, layer: int | None, j: int, k: int | None = None) -> sympy.Symbol:
    return node_symbol(Node(kind, layer, j, k))


class LazyRows(Sequence):
    """A read-only sequence whose items are built on first access, then kept.

    A wide layer has width x width weights (784 x 256 = 200,704 symbols and products in
    MNIST's first layer).  Most work touches a few rows of them -- a derivation of w_jk^(L)
    reads one z of the output layer -- so the weights and the terms of z are built per row
    as they are read, and building the graph costs time linear in the number of nodes.
    """

    __slots__ = ("_items", "_make")

    def __init__(self, length: int, make: Callable[[int], object]):
        self._items: list = [None] * length
        self._make = make

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        item = self._items[index]
        if item is None:
            item = self._items[index] = self._make(range(len(self))[index])
        return item

    def __eq__(self, other) -> bool:
        if isinstance(other, (tuple, list, LazyRows)):
            return len(self) == len(other) and all(p == q for p, q in zip(self, other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        built = sum(item is not None for item in self._items)
        return f"<{len(self)} rows, {built} built>"


@dataclass
class SymbolicGraph:
    """Symbols and definitions of one network (built by :func:`build_graph`)."""

    spec: Spec
    x: tuple[sympy.Symbol, ...]
    y: tuple[sympy.Symbol, ...]
    #: w[l][j][k] = w_jk^(l) (rows built when first read); b[l][j] or None without bias.
    w: dict[int, LazyRows]
    b: dict[int, tuple[sympy.Symbol, ...] | None]
    #: z[l][j], a[l][j] (a[0] is x), delta[l][j] = dC_0/dz_j^(l).
    z: dict[int, tuple[sympy.Symbol, ...]]
    a: dict[int, tuple[sympy.Symbol, ...]]
    delta: dict[int, tuple[sympy.Symbol, ...]]
    #: The activation class of each layer 1..L.
    activation: dict[int, type]
    #: z_terms[l][j]: the terms of z_j^(l), in order (w_j0 a_0, w_j1 a_1, ..., b_j); each
    #: term is built when first read, so term k costs O(1) in a wide layer.
    z_terms: dict[int, LazyRows]
    #: a_def[l][j] = g^(l)(z_j^(l)) or Softmax(j, z_0^(l), ...).
    a_def: dict[int, tuple[sympy.Expr, ...]]
    #: loss_terms[j]: the term of output node j in C_0, in a_j^(L) and y_j.
    loss_terms: tuple[sympy.Expr, ...]
    _cache: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------ basic views
    @property
    def L(self) -> int:
        return self.spec.L

    @property
    def widths(self) -> tuple[int, ...]:
        return self.spec.layers

    @property
    def loss(self) -> sympy.Expr:
        """C_0 in the layered view: sum of the output nodes' loss terms."""
        return sympy.Add(*self.loss_terms)

    def z_def(self, layer: int, j: int) -> sympy.Expr:
        return sympy.Add(*self.z_terms[layer][j])

    def z_term_of(self, layer: int, j: int, node: Node) -> int | None:
        """The one term of z_j^(l) that contains ``node`` (a parameter or an input of the
        layer), or None when no term does; anything else raises ValueError."""
        below = "x" if layer == 1 else "a"
        if node.kind == below and (node.layer == layer - 1 or below == "x"):
            return node.j
        if node.kind in ("w", "b"):
            if node.layer != layer or node.j != j:
                return None
            return node.k if node.kind == "w" else self.widths[layer - 1]
        raise ValueError(f"{node} is not an input or parameter of layer {layer}")

    def is_elementwise(self, layer: int) -> bool:
        return issubclass(self.activation[layer], ElementwiseActivation)

    def parameters(self) -> list[Node]:
        """Every weight and bias, layer by layer (w before b, row-major)."""
        out: list[Node] = []
        for l in range(1, self.L + 1):
            n_out, n_in = self.widths[l], self.widths[l - 1]
            out.extend(Node("w", l, j, k) for j in range(n_out) for k in range(n_in))
            if self.b[l] is not None:
                out.extend(Node("b", l, j) for j in range(n_out))
        return out

    def parameter_symbols(self) -> list[sympy.Symbol]:
        return [p.symbol for p in self.parameters()]

    def resolve(self, name: str | Node | sympy.Symbol) -> Node:
        """A node from a user's name (``w_{12}^{(L)}``), a :class:`Node` or a symbol."""
        if isinstance(name, sympy.Symbol):
            node = node_of(name)
            if node is None:
                raise NameLookupError(f"{name} is not a symbol of this network")
        elif isinstance(name, Node):
            node = name
        else:
            node = parse_node_name(name, self.widths)
        if node.kind == "b" and self.b[node.layer] is None:
            raise NameLookupError(
                f"{name!s} is a bias, but layer {node.layer} has none",
                hint="Set bias = true (or a list per layer) in the spec to add biases.")
        if node.kind == "a" and node.layer == 0:
            node = Node("x", None, node.j)
        return node

    def definition(self, symbol: sympy.Symbol) -> sympy.Expr | None:
        """Right-hand side of a layered definition (z, a), or None for inputs/parameters."""
        node = node_of(symbol)
        if node is None:
            return None
        if node.kind == "z":
            return self.z_def(node.layer, node.j)
        if node.kind == "a":
            return self.a_def[node.layer][node.j]
        return None

    # ------------------------------------------------------------ composed view
    def composed_layer(self, layer: int) -> tuple[tuple[sympy.Expr, ...], tuple[sympy.Expr, ...]]:
        """(z, a) of ``layer`` written in x, w and b only (memoized, built bottom-up)."""
        key = ("composed", layer)
        if key not in self._cache:
            below = self.x if layer == 1 else self.composed_layer(layer - 1)[1]
            mapping = dict(zip(self.a[layer - 1], below))
            zs = tuple(sympy.Add(*[t.xreplace(mapping) for t in terms])
                       for terms in self.z_terms[layer])
            mapping_z = dict(zip(self.z[layer], zs))
            acts = tuple(d.xreplace(mapping_z) for d in self.a_def[layer])
            self._cache[key] = (zs, acts)
        return self._cache[key]

    @property
    def composed_C0(self) -> sympy.Expr:
        """C_0 as an explicit composition in x, y, w, b (seed 000's C_0(a(z(w, a(...)))))."""
        key = "composed_C0"
        if key not in self._cache:
            outputs = self.composed_layer(self.L)[1]
            self._cache[key] = self.loss.xreplace(dict(zip(self.a[self.L], outputs)))
        return self._cache[key]

    def composed_above(self, node: Node) -> dict[sympy.Symbol, sympy.Expr]:
        """Every layered symbol that depends on ``node``, written in ``node``'s level.

        For w_jk^(l) or b_j^(l) that is z^(l), a^(l) and every later layer, composed from
        the symbols of layer l-1 and the parameters; for z_j^(l) the a^(l) and later layers
        (in z^(l)); for a_k^(l) or x_k the layers after l (in a^(l)).  Substituting this map
        turns "a function of the network" into a function of ``node`` one can ``diff``.
        The map depends only on the first layer composed (and, for z, on its a^(l) written
        in z^(l)), so it is memoized per that: do not change the returned map.
        """
        if node.kind in ("w", "b"):
            key = ("above", node.layer, False)
        else:
            layer = 0 if node.kind == "x" else node.layer
            key = ("above", layer + 1, node.kind == "z")
        if key not in self._cache:
            self._cache[key] = self._composed_from(key[1], through_z=key[2])
        return self._cache[key]

    def _composed_from(self, start: int, through_z: bool) -> dict[sympy.Symbol, sympy.Expr]:
        mapping: dict[sympy.Symbol, sympy.Expr] = {}
        if through_z:
            mapping.update(zip(self.a[start - 1], self.a_def[start - 1]))
        for l in range(start, self.L + 1):
            zs = tuple(sympy.Add(*[t.xreplace(mapping) for t in terms])
                       for terms in self.z_terms[l])
            mapping.update(zip(self.z[l], zs))
            z_map = dict(zip(self.z[l], zs))
            mapping.update(zip(self.a[l], [d.xreplace(z_map) for d in self.a_def[l]]))
        return mapping

    def to_inputs(self) -> dict[sympy.Symbol, sympy.Expr]:
        """Substitution of every z and a symbol by its composed expression."""
        mapping: dict[sympy.Symbol, sympy.Expr] = {}
        for l in range(1, self.L + 1):
            zs, acts = self.composed_layer(l)
            mapping.update(zip(self.z[l], zs))
            mapping.update(zip(self.a[l], acts))
        return mapping


def _activation_for(spec: Spec, layer: int) -> type:
    choice = spec.activation_of(layer)
    if choice.name == "g":
        return generic_activation(layer)
    if choice.name in spec.activations:
        return custom_activation_class(choice.name, parse_custom_activation(spec, choice.name))
    return activation_class(choice.name, choice.params)


def _loss_terms(spec: Spec, a_out, y) -> tuple[sympy.Expr, ...]:
    n = spec.layers[-1]
    rule = LOSSES.get(spec.loss)
    if rule is not None:
        return tuple(rule.term(a_j, y_j, n) for a_j, y_j in zip(a_out, y))
    expr = parse_custom_loss(spec)
    return tuple(expr.xreplace({A_OUT: a_j, Y_OUT: y_j}) for a_j, y_j in zip(a_out, y))


def _weight_row(layer: int, n_in: int, j: int) -> LazyRows:
    return LazyRows(n_in, functools.partial(_sym, "w", layer, j))


def _z_term(w_row: LazyRows, a_below: tuple, b_j: sympy.Symbol | None, k: int) -> sympy.Expr:
    return b_j if k == len(a_below) else w_row[k] * a_below[k]


def _z_terms_row(w: LazyRows, a_below: tuple, b: tuple | None, j: int) -> LazyRows:
    """The terms of z_j, each built when read: w_j0 a_0, w_j1 a_1, ..., then b_j."""
    return LazyRows(len(a_below) + (b is not None),
                    functools.partial(_z_term, w[j], a_below, b[j] if b else None))


@functools.lru_cache(maxsize=32)
def build_graph(spec: Spec) -> SymbolicGraph:
    """Build the symbols and layered definitions of ``spec``.

    Cheap: linear in the number of nodes, since weight rows and the terms of z are built
    when first read (:class:`LazyRows`).
    """
    widths, L = spec.layers, spec.L
    x = tuple(_sym("x", None, k) for k in range(widths[0]))
    y = tuple(_sym("y", None, j) for j in range(widths[L]))
    w, b, z, a, delta, act, z_terms, a_def = {}, {}, {}, {0: x}, {}, {}, {}, {}
    for l in range(1, L + 1):
        n_out, n_in = widths[l], widths[l - 1]
        w[l] = LazyRows(n_out, functools.partial(_weight_row, l, n_in))
        b[l] = tuple(_sym("b", l, j) for j in range(n_out)) if spec.has_bias(l) else None
        z[l] = tuple(_sym("z", l, j) for j in range(n_out))
        a[l] = tuple(_sym("a", l, j) for j in range(n_out))
        delta[l] = tuple(_sym("delta", l, j) for j in range(n_out))
        act[l] = _activation_for(spec, l)
        z_terms[l] = LazyRows(n_out, functools.partial(_z_terms_row, w[l], a[l - 1], b[l]))
        if act[l] is Softmax:
            a_def[l] = tuple(Softmax(j, *z[l]) for j in range(n_out))
        else:
            a_def[l] = tuple(act[l](z_j) for z_j in z[l])
    return SymbolicGraph(spec=spec, x=x, y=y, w=w, b=b, z=z, a=a, delta=delta, activation=act,
                         z_terms=z_terms, a_def=a_def, loss_terms=_loss_terms(spec, a[L], y))
