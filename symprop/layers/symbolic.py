"""A layer's symbols and definitions, as the chain-rule engine walks them.

Every kind builds a :class:`SymbolicLayer` (its config's ``build``) with the same few views:

* ``outputs``: a_j^(l), the nodes later layers and the loss read;
* ``entries``: the nodes whose accumulated gradient has a symbol of its own -- z_j^(l) for a
  dense layer (delta_j^(l) = dC_0/dz_j^(l), as in seed 000), the outputs a_j^(l) for every
  other kind (``adj``, printed dC_0/da_j^(l));
* ``sources(i)``: the nodes of earlier layers that entry i reads, and ``local(i, v)`` the
  derivative d entry_i / d v of its definition (w_jk for z_j by a_k, the layernorm's
  Jacobian entry, SymPy's diff of a custom formula), written in the layer's own symbols;
* ``parameters``: the layer's parameter nodes, and ``param_entries(p)`` the entries they
  enter;
* ``definition(symbol)``: the right-hand side of an output, a z or a named quantity (mu,
  sigma, xhat), and ``compose(mapping)``: the layer's outputs written in what ``mapping``
  gives for its inputs (the composed view of C_0).

The engine (:class:`symprop.derivation.Backprop`) needs nothing else, whatever the kind.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from ..activations import (
    ElementwiseActivation,
    X,
    activation_class,
    custom_activation_class,
    generic_activation,
)
from ..notation import Node, node_symbol
from ..safe_parse import parse_expression

__all__ = ["ArrayOnlyLayer", "GraphContext", "LazyRows", "SymbolicLayer", "WithZ",
           "activation_function", "node", "parameter_nodes"]


def node(kind: str, layer: int | None, *indices: int) -> sympy.Symbol:
    """The symbol of a node: ``node("w", 2, 1, 0)`` is w_10^(2); no indices for mu^(l)."""
    return node_symbol(Node(kind, layer, *indices) if indices else Node(kind, layer, None))


#: The summation letters of general equations (the report's \sum_{k=0}^{n-1}).
SUM_LETTERS = {c: sympy.Symbol(c, integer=True) for c in "jkm"}


def general(kind: str, layer: int | None, *letters: str) -> sympy.Symbol:
    """A node with letter indices for general equations: a_k^(l-1), or the input x_k when
    the layer is 0; ``general("mu", 2)`` is mu^(2)."""
    if kind == "a" and layer == 0:
        return node_symbol(Node("x", None, *letters))
    return node_symbol(Node(kind, layer, *letters) if letters else Node(kind, layer, None))


def parameter_nodes(layer: int, specs) -> list[Node]:
    """Every entry of each parameter array of ``specs`` (ParamSpecs) as a node, array by
    array, row-major."""
    return [Node(p.kind, layer, *map(int, idx)) for p in specs for idx in np.ndindex(*p.shape)]


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


def activation_function(name: str, params: tuple[float, ...], layer: int,
                        custom: dict[str, str]) -> type:
    """The SymPy class of an activation: g^(l) for the generic g, a spec's own, a built-in."""
    if name == "g":
        return generic_activation(layer)
    if name in custom:
        return custom_activation_class(name, parse_expression(custom[name], {"x": X}))
    return activation_class(name, params)


@dataclass(frozen=True)
class GraphContext:
    """What a layer's build needs: the outputs of every earlier layer and the spec."""

    spec: object
    #: outputs[l]: the output symbols of layer l (outputs[0] is the input x).
    outputs: dict[int, Sequence[sympy.Symbol]]

    def widths(self) -> tuple[int, ...]:
        return self.spec.layers


class SymbolicLayer:
    """The shared half of every kind's symbolic layer (see the module docstring)."""

    #: Set by each kind.
    kind: str
    index: int
    width: int
    inputs: tuple[int, ...]
    outputs: Sequence[sympy.Symbol]
    entries: Sequence[sympy.Symbol]
    adjoints: Sequence[sympy.Symbol]

    def __init__(self, config, ctx: GraphContext):
        self.config = config
        self.index = config.index
        self.width = config.width
        self.inputs = config.inputs
        self.sources_of = {m: ctx.outputs[m] for m in self.inputs}
        self.outputs = self.nodes("a")

    def nodes(self, kind: str) -> tuple[sympy.Symbol, ...]:
        """One node of ``kind`` per node of the layer: a_j^(l), or a_{c,p,q}^(l) in a map."""
        shape = self.config.shape
        return tuple(node(kind, self.index, j) for j in range(self.width)) \
            if len(shape) == 1 else tuple(node(kind, self.index, *map(int, idx))
                                          for idx in np.ndindex(*shape))

    # ----------------------------------------------------------- overridden
    @property
    def parameters(self) -> list[Node]:
        """The layer's parameter nodes, array by array, row-major."""
        return []

    def sources(self, i: int) -> Sequence[sympy.Symbol]:
        """The nodes of earlier layers entry i reads."""
        raise NotImplementedError

    def local(self, i: int, wrt: sympy.Symbol) -> sympy.Expr:
        """d entry_i / d wrt (a source node or a parameter of this layer), compact."""
        raise NotImplementedError

    def param_entries(self, param: Node) -> Sequence[int]:
        """The entries a parameter enters."""
        raise NotImplementedError

    def definitions(self) -> dict[sympy.Symbol, sympy.Expr]:
        """Every symbol the layer defines (outputs, z, named quantities) -> its right side."""
        raise NotImplementedError

    @property
    def named(self) -> dict[sympy.Symbol, sympy.Expr]:
        """The layer's named intermediate quantities (mu, sigma, xhat) -> their definitions."""
        return {}

    # ------------------------------------------------ general equations (letters)
    def general_definitions(self) -> list[tuple[sympy.Expr, sympy.Expr]]:
        """The layer's definitions with letter indices, (left, right) in general nodes."""
        raise NotImplementedError

    def general_contribution(self, source: int) -> sympy.Expr:
        """What this layer adds to dC_0/da_k^(source), node k of a layer it reads, in general
        nodes (a sum over j of its own nodes, or node k alone)."""
        raise NotImplementedError

    def general_parameters(self) -> list[tuple[sympy.Expr, sympy.Expr]]:
        """dC_0/dp = ... for each parameter array, in general nodes."""
        return []

    def adjoint_general(self, letter: str) -> sympy.Symbol:
        """The accumulated gradient of entry ``letter``: delta_j^(l) or dC_0/da_j^(l)."""
        return general("delta" if self.through_activation else "adj", self.index, letter)

    # ----------------------------------------------------------- shared
    @functools.cached_property
    def _below_index(self) -> dict[sympy.Symbol, int]:
        """Node k of layer l - 1 by its symbol."""
        return {s: k for k, s in enumerate(self.sources_of[self.index - 1])}

    def sources_width(self, layer: int) -> int:
        """The width of a layer this one reads."""
        return len(self.sources_of[layer])

    @functools.cached_property
    def _definitions(self) -> dict[sympy.Symbol, sympy.Expr]:
        return self.definitions()

    def definition(self, symbol: sympy.Symbol) -> sympy.Expr | None:
        return self._definitions.get(symbol)

    def numeric_definition(self, symbol: sympy.Symbol):
        """The definition an evaluation at a point reads (a dense layer's is cheaper)."""
        return self.definition(symbol)

    @property
    def through_activation(self) -> bool:
        """Whether entries and outputs differ (a dense layer: z, then a = g(z))."""
        return False

    def compose(self, mapping: dict[sympy.Symbol, sympy.Expr]) -> dict[sympy.Symbol, sympy.Expr]:
        """Each symbol the layer defines, written in ``mapping``'s values for the symbols it
        reads (symbols missing from ``mapping`` stay as they are); in definition order."""
        out: dict[sympy.Symbol, sympy.Expr] = {}
        for symbol, rhs in self._definitions.items():
            out[symbol] = rhs.xreplace({**mapping, **out})
        return out


class WithZ:
    """What a layer with a z and an activation shares (dense, conv): entries z with
    delta = dC_0/dz, a = g(z) node by node (or softmax), z written as its terms.

    The layer sets ``z``, ``z_terms`` (the terms of each z, built when read), ``a_def`` and
    ``activation``; the engine reads ``z_terms``, ``term_of`` and ``a_def`` through this
    capability, never the kind's name."""

    @property
    def through_activation(self) -> bool:
        return True

    @property
    def elementwise(self) -> bool:
        return issubclass(self.activation, ElementwiseActivation)

    def z_def(self, j: int) -> sympy.Expr:
        return sympy.Add(*self.z_terms[j])

    def definitions(self) -> dict[sympy.Symbol, sympy.Expr]:
        out = {z: self.z_def(j) for j, z in enumerate(self.z)}
        return out | dict(zip(self.outputs, self.a_def))

    def compose(self, mapping: dict[sympy.Symbol, sympy.Expr]) -> dict[sympy.Symbol, sympy.Expr]:
        zs = tuple(sympy.Add(*[t.xreplace(mapping) for t in terms]) for terms in self.z_terms)
        z_map = dict(zip(self.z, zs))
        return z_map | {a: d.xreplace(z_map) for a, d in zip(self.outputs, self.a_def)}


class ArrayOnlyLayer(SymbolicLayer):
    """A kind whose chain-rule views are not built yet (batchnorm, rnn): its nodes,
    parameters and array code (the kind's ``array_code``) only; a derivation that reaches
    it is refused with exit 2 (the commands refuse such a network before, through
    :attr:`~symprop.layers.base.LayerConfig.SUPPORTS`)."""

    def __init__(self, config, ctx: GraphContext):
        super().__init__(config, ctx)
        self.entries = self.outputs
        self.adjoints = self.nodes("adj")
        #: the kind's parameters by their letter (an rnn's u_jk is read as a name)
        self.param_specs = {p.kind: p for p in config.parameters(())}

    @property
    def parameters(self) -> list[Node]:
        return parameter_nodes(self.index, self.param_specs.values())

    def _not_built(self, *args, **kwargs):
        from ..errors import SpecError

        raise SpecError(f"derivations through a {self.kind} layer are not built yet",
                        where=f"layer {self.index} ({self.kind})",
                        hint="Use symprop codegen or verify for its gradients, checked "
                             "against autodiff")

    sources = local = param_entries = definitions = general_definitions = _not_built
    general_contribution = readers = _not_built
