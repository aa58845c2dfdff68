"""Seed-000 names: one :class:`Node` per symbol, and the parser for names users type.

Every symbol of the network (w_jk^(l), b_j^(l), z_j^(l), a_j^(l), x_k = a_k^(0), y_j,
delta_j^(l), and the other layer kinds' names: gamma_j^(l), beta_j^(l), mu^(l), sigma^(l),
xhat_j^(l), a custom layer's own letters c_jk^(l)) is a real SymPy ``Symbol`` whose name is
canonical and absolute (``"w_1,2^(3)"``).  :func:`node_of` recovers the :class:`Node` from
the symbol, so printers can render it in the seed's notation, relative to the output layer L
or absolute.  ``adj_j^(l)`` is the accumulated gradient dC_0/da_j^(l) of a layer that has no
z (a normalisation, a residual sum, a custom layer): it prints as that derivative.

:func:`parse_node_name` reads what a user types for ``--wrt``: ``w_{12}^{(L)}``,
``w_12^(L-1)``, ``w_{10,3}^{(2)}``, ``b_1^(2)``, ``a_2^(L-1)``, ``z_0^(1)``, ``x_0``, ``y_1``,
``gamma_3^(2)``, ``c_{01}^{(4)}``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import sympy

from .errors import NameLookupError

__all__ = ["KINDS", "LATEX_NAMES", "MAP_NODE_KINDS", "Node", "index_arithmetic", "index_label", "layer_label", "layer_spelling",
           "node_of", "node_symbol", "parse_node_name"]

#: kind -> (has a layer, number of node indices).  A custom layer's parameters add their own
#: kinds per network (``SymbolicGraph.kinds``).
KINDS: dict[str, tuple[bool, int]] = {
    "w": (True, 2),
    "b": (True, 1),
    "z": (True, 1),
    "a": (True, 1),
    "delta": (True, 1),
    "x": (False, 1),
    "y": (False, 1),
    "gamma": (True, 1),
    "beta": (True, 1),
    "mu": (True, 0),
    "sigma": (True, 0),
    "r": (True, 0),
    "xhat": (True, 1),
    "adj": (True, 1),
}
#: kind -> its name in LaTeX and in plain text, where it is not the kind itself.
LATEX_NAMES = {"delta": r"\delta", "gamma": r"\gamma", "beta": r"\beta", "mu": r"\mu",
               "sigma": r"\sigma", "xhat": r"\hat{x}"}


@functools.total_ordering
class Node:
    """A named quantity of the network: kind, absolute layer and any number of node indices.

    ``Node("w", 2, 1, 0)`` is w_10^(2), ``Node("w", 1, 0, 1, 2, 2)`` a conv weight
    w_{0,1,2,2}^(1), ``Node("mu", 2)`` (or ``Node("mu", 2, None)``) mu^(2) of a whole layer.
    An index is a whole number, or a letter (``"j"``) for the general nodes of printed
    equations.  Immutable and hashable; ordered by kind, layer, then indices.
    """

    __slots__ = ("indices", "kind", "layer")

    kind: str
    layer: int | str | None
    indices: tuple

    def __init__(self, kind: str, layer: int | str | None, *indices):
        while indices and indices[-1] is None:  # Node(kind, l, None), Node(kind, l, j, None)
            indices = indices[:-1]
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "layer", layer)
        object.__setattr__(self, "indices", tuple(indices))

    def __setattr__(self, name, value):
        raise AttributeError("a Node is immutable")

    def _key(self) -> tuple:
        return (self.kind, self.layer, self.indices)

    def __eq__(self, other) -> bool:
        return isinstance(other, Node) and self._key() == other._key()

    def __lt__(self, other) -> bool:
        if not isinstance(other, Node):
            return NotImplemented
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Node({', '.join(map(repr, self._key()[:2] + self.indices))})"

    def __reduce__(self):
        return Node, (self.kind, self.layer, *self.indices)

    @property
    def j(self):
        """The first node index (None without one)."""
        return self.indices[0] if self.indices else None

    @property
    def k(self):
        """The second node index (None without one)."""
        return self.indices[1] if len(self.indices) > 1 else None

    @property
    def symbol(self) -> sympy.Symbol:
        return node_symbol(self)

    @property
    def is_parameter(self) -> bool:
        """A weight, bias or any other layer parameter (not a node the network computes)."""
        return self.kind not in _COMPUTED

    def text(self, L: int | None = None) -> str:
        """Plain seed notation: ``w_12^(L)``, ``w_10,3^(2)`` (relative when L is given)."""
        if self.kind == "adj":
            return f"dC_0/d{Node('a', self.layer, *self.indices).text(L)}"
        sub = f"_{index_label(self.indices, self.kind)}" if self.indices else ""
        if self.layer is None:
            return f"{self.kind}{sub}"
        return f"{self.kind}{sub}^({layer_label(self.layer, L)})"

    def latex(self, L: int | None = None) -> str:
        """LaTeX seed notation: ``w_{12}^{(L)}``, ``w_{10,3}^{(2)}``, ``\\delta_{1}^{(L)}``."""
        if self.kind == "adj":
            a = Node("a", self.layer, *self.indices).latex(L)
            return rf"\frac{{\partial C_{{0}}}}{{\partial {a}}}"
        name = LATEX_NAMES.get(self.kind, self.kind)
        sub = f"_{{{index_label(self.indices, self.kind)}}}" if self.indices else ""
        if self.layer is None:
            return f"{name}{sub}"
        return f"{name}{sub}^{{({layer_label(self.layer, L)})}}"

    def __str__(self) -> str:
        return self.text()


#: One term of an index written as arithmetic: ``2p``, ``-u``, ``+1``.
_INDEX_TERM = re.compile(r"([+-]?)(\d*)([A-Za-z]?)")


def index_arithmetic(text: str) -> tuple[dict[str, int], int] | None:
    """``2p+u-1`` as ({"p": 2, "u": 1}, -1): the letters' whole coefficients and the
    constant of an index a window reads; None when ``text`` is not such arithmetic (no
    letter, or a letter followed by a digit)."""
    if not re.fullmatch(r"[+-]?\d*[A-Za-z]?(?:[+-]\d*[A-Za-z]?)*", text) or \
            not re.search(r"[A-Za-z]", text) or re.search(r"[A-Za-z]\d", text):
        return None
    terms: dict[str, int] = {}
    constant = 0
    for sign, digits, letter in _INDEX_TERM.findall(text):
        if not digits and not letter:
            continue
        value = (-1 if sign == "-" else 1) * int(digits or 1)
        if letter:
            terms[letter] = terms.get(letter, 0) + value
        else:
            constant += value
    return terms, constant


#: The kinds of a map's nodes, one index in a flat layer (two: a 1-D map's channel and
#: position); a weight's indices are its own.
MAP_NODE_KINDS = frozenset({"a", "x", "z", "delta", "adj"})


def index_label(indices: tuple[int, ...], kind: str = "w") -> str:
    """Run one or two single digits together as the seed does (w_12); otherwise (an index of
    two digits, three or more indices: a_{0,2,1}, a node of a map: a_{0,1} of a 1-D map,
    whose kind has one index in a flat layer) separate by commas.

    An index may also be a letter (``"j"``) for the general nodes of printed equations, or
    letter arithmetic as a formula writes it (``2p+u-1``, printed by its ``str``).
    """
    if len(indices) <= 2 and all(len(str(i)) == 1 for i in indices) and not (
            len(indices) == 2 and kind in MAP_NODE_KINDS):
        return "".join(map(str, indices))
    return ",".join(map(str, indices))


def layer_label(layer: int, L: int | None = None) -> str:
    """``L``, ``L-1``, ... relative to the output layer L, or the absolute number.

    A layer given as text (``"l"``, ``"l+1"``) is a general layer and prints as it is.
    """
    if isinstance(layer, str) or L is None or layer == 0:
        return str(layer)
    return "L" if layer == L else f"L-{L - layer}"


#: Kinds of the quantities a network computes from its inputs and parameters.
_COMPUTED = frozenset({"z", "a", "delta", "x", "y", "mu", "sigma", "r", "xhat", "adj"})
#: The kinds of :data:`KINDS` that a custom layer may also give its parameters (design.md
#: section 3b reserves the others): a name is resolved in the layer it names, so r^(2) can
#: be an rmsnorm's and r_0^(3) a custom layer's parameter in one network.
SHARED_KINDS = frozenset({"mu", "sigma", "r", "xhat", "adj"})


class OwnKind(str):
    """The kind of a custom layer's parameter named like another kind's quantity (r, mu,
    sigma, xhat, adj; :data:`SHARED_KINDS`): it prints as its name, but it is a kind of its
    own, equal only to itself -- not to the quantity spelt the same -- so r_0^(3), a custom
    layer's parameter, is a parameter (:attr:`Node.is_parameter`) with a symbol of its own,
    whatever an rmsnorm's r^(2) or a layernorm's xhat_0^(2) is.  The graph gives a typed
    name this kind in the layer that has such a parameter
    (:meth:`symprop.graph.SymbolicGraph.resolve`)."""

    __slots__ = ()

    def __eq__(self, other) -> bool:
        return isinstance(other, OwnKind) and str.__eq__(self, other)

    def __ne__(self, other) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(("own kind", str(self)))

    def __repr__(self) -> str:
        return f"OwnKind({str(self)!r})"

    def __reduce__(self):
        return OwnKind, (str(self),)


def own_kind(name: str) -> str:
    """The node kind of a custom layer's parameter called ``name``: the name itself, or its
    :class:`OwnKind` where another kind uses the same spelling."""
    return OwnKind(name) if name in SHARED_KINDS else name

_NAMES: dict[str, Node] = {}


@functools.cache
def node_symbol(node: Node) -> sympy.Symbol:
    """The canonical symbol of ``node``; absolute layer, indices always comma-separated."""
    sub = "_" + ",".join(map(str, node.indices)) if node.indices else ""
    kind = f"{node.kind}[own]" if isinstance(node.kind, OwnKind) else node.kind
    name = f"{kind}{sub}" if node.layer is None else f"{kind}{sub}^({node.layer})"
    _NAMES[name] = node
    return sympy.Symbol(name, real=True)


def node_of(symbol: sympy.Basic) -> Node | None:
    """The :class:`Node` a symbol stands for, or None for any other symbol."""
    return _NAMES.get(getattr(symbol, "name", None))


# ----------------------------------------------------------------- user names
_KIND = r"(?P<kind>\\hat\{x\}|\\?[A-Za-z]+|[γβμσδ])"
_SUB = r"(?:_(?:\{(?P<sub1>[^{}]*)\}|(?P<sub2>[0-9]+(?:,[0-9]+)*|[0-9])))?"
_SUP = r"(?:\^(?:\{\s*\(?(?P<sup1>[^{}()]*)\)?\s*\}|\((?P<sup2>[^()]*)\)|(?P<sup3>[0-9L])))?"
_NAME_RE = re.compile(_KIND + _SUB + _SUP)
_LAYER_RE = re.compile(r"(?:(?P<L>L)(?:-(?P<back>[0-9]+))?|(?P<abs>[0-9]+))")
#: Other spellings of a kind: LaTeX commands and Greek letters.
_ALIASES = {"γ": "gamma", "β": "beta", "μ": "mu", "σ": "sigma", "δ": "delta",
            r"\hat{x}": "xhat"}
#: The kinds whose existence the widths alone decide (the others: the layer's kind decides).
_WIDTH_KINDS = frozenset({"w", "b", "z", "a", "x", "y", "delta"})


def parse_node_name(text: str, widths: tuple[int, ...],
                    kinds: dict[str, tuple[bool, int]] | None = None,
                    layer_kinds: Callable[[int], dict[str, tuple[bool, int]]] | None = None
                    ) -> Node:
    """Resolve a name typed in seed notation against a network of the given widths.

    ``kinds`` are the network's node kinds (default :data:`KINDS`; a custom layer adds its
    parameters' letters), ``layer_kinds(l)`` those of layer l, where a kind's number of
    indices is read once the layer is known (r^(l) of an rmsnorm has none, a custom layer's
    parameter r_j^(l) one).  Raises :class:`NameLookupError` saying what is wrong and what
    exists instead.  Whether a layer has a node of that kind (gamma in a layernorm, not in a
    dense layer) is the graph's to say (:meth:`symprop.graph.SymbolicGraph.resolve`).
    """
    kinds = KINDS if kinds is None else kinds
    L = len(widths) - 1
    raw = text
    compact = re.sub(r"\s+", "", text or "").replace(r"\left(", "(").replace(r"\right)", ")")
    if len(compact) > 100:
        raise NameLookupError("the name is too long to be a parameter or node name")
    match = _NAME_RE.fullmatch(compact)
    kind = match and _ALIASES.get(match["kind"], match["kind"].lstrip("\\"))
    if not match or kind not in kinds:
        raise NameLookupError(
            f"cannot read the name {raw!r}",
            hint="Write a parameter or node in seed notation, e.g. w_{12}^{(L)}, w_12^(L-1), "
                 "w_{10,3}^{(2)}, b_1^(2), a_2^(L-1), z_0^(1)" + _other_kinds(kinds) + ".")
    has_layer, n_indices = kinds[kind]
    sub = match["sub1"] if match["sub1"] is not None else match["sub2"]
    sup = next((match[g] for g in ("sup1", "sup2", "sup3") if match[g] is not None), None)
    if has_layer:
        if sup is None:
            raise NameLookupError(f"{raw!r} needs a layer superscript, e.g. ^(L) or ^(2)")
        layer = _parse_layer(sup, L, raw)
        if layer_kinds is not None and 1 <= layer <= L:
            n_indices = layer_kinds(layer).get(kind, (has_layer, n_indices))[1]
    else:
        if sup is not None:
            raise NameLookupError(f"{raw!r}: {kind} has no layer superscript")
        layer = None
    if n_indices == 0 and sub is not None:
        raise NameLookupError(f"{raw!r}: {kind}^(l) is one value per layer; it has no index")
    indices = _parse_indices(sub, n_indices, raw, kind) if n_indices else ()
    node = Node(kind, layer, *indices) if indices else Node(kind, layer, None)
    if kind in _WIDTH_KINDS and len(indices) == KINDS[kind][1]:
        _check_exists(node, widths, raw)
    elif kind in _WIDTH_KINDS and node.layer is not None and not 0 <= node.layer <= L:
        raise NameLookupError(f"{raw!r} names layer {node.layer}, which does not exist",
                              hint=f"The network has layers 0..{L}.")
    elif layer is not None and not 1 <= layer <= L:
        raise NameLookupError(f"{raw!r} names layer {layer}, which does not exist",
                              hint=f"The network has layers 0..{L}.")
    if node.kind == "a" and node.layer == 0:
        return Node("x", None, *node.indices)  # a_k^(0) is the input x_k
    return node


def _other_kinds(kinds: dict[str, tuple[bool, int]]) -> str:
    """The names beyond seed 000's that this network has, for the hint."""
    extra = sorted(k for k in kinds if k not in KINDS)
    return ", or this network's own: " + ", ".join(extra) if extra else \
        ", gamma_1^(2), c_{01}^{(4)}"


def _parse_indices(sub: str | None, count: int, raw: str, kind: str = "a") -> tuple[int, ...]:
    sub = (sub or "").strip()
    if "," in sub:
        parts = [p for p in sub.split(",")]
    elif count == 2 and len(sub) == 2:
        parts = list(sub)
    else:
        parts = [sub]
    if len(parts) != count or not all(p.isdigit() for p in parts):
        example = {1: f"{kind}_{{2}}", 2: f"{kind}_{{12}} or {kind}_{{10,3}}"}.get(
            count, f"{kind}_{{{','.join(map(str, range(count)))}}}")
        raise NameLookupError(f"{raw!r} needs {count} node index(es), e.g. {example}",
                              hint="Separate two-digit indices with a comma.")
    return tuple(int(p) for p in parts)


def _parse_layer(sup: str, L: int, raw: str) -> int:
    match = _LAYER_RE.fullmatch(sup)
    if not match:
        raise NameLookupError(f"{raw!r}: cannot read the layer {sup!r}",
                              hint="Write L, L-1, L-2, ... or a layer number 0..L.")
    if match["abs"] is not None:
        return int(match["abs"])
    return L - int(match["back"] or 0)


def layer_spelling(text: str | None) -> str:
    """How a typed name spells its layer, for answering in the same spelling: ``"absolute"``
    for a number (``w_12^(2)``), ``"relative"`` for L, L-1, ... and for a name without a layer
    (``x_0``) or one that cannot be read (its error says so elsewhere)."""
    compact = re.sub(r"\s+", "", text or "").replace(r"\left(", "(").replace(r"\right)", ")")
    match = _NAME_RE.fullmatch(compact)
    sup = match and next((match[g] for g in ("sup1", "sup2", "sup3") if match[g] is not None),
                         None)
    layer = sup and _LAYER_RE.fullmatch(sup)
    return "absolute" if layer and layer["abs"] is not None else "relative"


def _check_exists(node: Node, widths: tuple[int, ...], raw: str) -> None:
    L = len(widths) - 1
    shape = f"the network has layers 0..{L} with widths {list(widths)}"
    if node.layer is not None:
        lowest = 0 if node.kind == "a" else 1
        if not lowest <= node.layer <= L:
            raise NameLookupError(f"{raw!r} names layer {node.layer}, which does not exist for "
                                  f"{node.kind}", hint=f"Layers {lowest}..{L} do; {shape}.")
    layer = {"x": 0, "y": L}.get(node.kind, node.layer)
    if node.j >= widths[layer]:
        raise NameLookupError(f"{raw!r} names node {node.j} of layer {layer}, which has "
                              f"{widths[layer]} node(s), numbered from 0", hint=shape + ".")
    if node.k is not None and node.k >= widths[layer - 1]:
        raise NameLookupError(f"{raw!r} names node {node.k} of layer {layer - 1}, which has "
                              f"{widths[layer - 1]} node(s), numbered from 0", hint=shape + ".")
