"""The network as a picture, with the chain-rule path of one quantity highlighted.

Seed 001 finds a gradient by following the arrows from the loss node back to the weight.
:func:`diagram` lays the network out (input on the left, the loss node C_0 on the right;
wide layers show their first and last nodes around an ellipsis, always including the nodes
that matter) and marks every arrow on a path from the chosen quantity to the loss: for
w_jk^(l), the weight's own arrow k -> j plus everything downstream of node j of layer l.
The value is plain data; ``templates/documents/diagram.tikz.j2`` and ``diagram.svg.j2`` draw
it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .notation import Node, index_label, layer_label

__all__ = ["Diagram", "DiagramEdge", "DiagramNode", "diagram"]

#: Nodes drawn per layer before the middle is elided.
MAX_SHOWN = 6
#: Layout units (TikZ cm; the SVG scales them).
LAYER_GAP = 2.6
NODE_GAP = 1.1
#: The least distance from the output layer to the loss node.
LOSS_GAP = 1.04


@dataclass(frozen=True)
class DiagramNode:
    key: str
    layer: int | None
    #: Node index in its layer; None for an ellipsis or the loss node.
    index: int | None
    x: float
    y: float
    #: Label node: the quantity drawn in the circle (a_j^(l), x_k, C_0).
    label: Node | None
    highlighted: bool
    ellipsis: bool = False


@dataclass(frozen=True)
class DiagramEdge:
    source: str
    target: str
    highlighted: bool
    #: The target weight's own arrow (labelled w_jk^(l)).
    target_weight: Node | None = None
    #: An arrow that jumps layers (a skip connection), drawn as an arc.
    skip: bool = False
    #: The parameter that sits on this arrow (w_jk^(l), c_jk^(l)); None for an arrow of a
    #: layer without one (a norm, a sum) and for the arrows into the loss node.
    parameter: Node | None = None


@dataclass(frozen=True)
class Diagram:
    nodes: tuple[DiagramNode, ...]
    edges: tuple[DiagramEdge, ...]
    width: float
    height: float
    L: int
    #: What the highlighted path leads to, and how many arrows it has.
    target: Node | None
    #: Each layer's kind, for a network that is not a stack of dense layers.
    kinds: tuple[str, ...] | None = None

    def node(self, key: str) -> DiagramNode:
        return next(n for n in self.nodes if n.key == key)


def _shown(width: int, keep: set[int]) -> list[int | None]:
    """Indices drawn for a layer of ``width`` nodes; None marks the elided stretch."""
    if width <= MAX_SHOWN:
        return list(range(width))
    wanted = sorted({0, 1, width - 2, width - 1} | {k for k in keep if 0 <= k < width})
    out: list[int | None] = []
    for i in wanted:
        if out and out[-1] is not None and i != out[-1] + 1:
            out.append(None)
        out.append(i)
    return out


def _downstream(spec, layer: int, indices: set[int]) -> dict[int, set[int]]:
    """Nodes of each later layer that the quantity at (layer, indices) feeds into, following
    each layer's own connections (``reached``): every node after a dense layer, node j alone
    through a residual sum."""
    reach = {layer: set(indices)}
    for config in spec.stack[layer:]:
        found: set[int] = set()
        for source in config.inputs:
            if reach.get(source):
                found |= config.reached(source, reach[source])
        reach[config.index] = found
    return reach


def _origin(spec, target: Node | None) -> tuple[int, set[int]] | None:
    """Where the highlighted path starts: the target's node, or the nodes a parameter enters
    (node j for w_jk, gamma_j, c_jk; every node of the layer for a parameter without j)."""
    if target is None:
        return None
    if target.kind == "x":
        return 0, {int(np.ravel_multi_index(target.indices, spec.shapes[0]))}
    if target.is_parameter:
        letters = _letters(spec, target)
        if "j" not in letters:
            return target.layer, set(range(spec.layers[target.layer]))
        return target.layer, {target.indices[letters.index("j")]}
    return target.layer, {int(np.ravel_multi_index(target.indices, spec.shapes[target.layer]))}


def _letters(spec, target: Node) -> str:
    return next((p.letters for p in spec.layer(target.layer).parameters(spec.layers)
                 if p.kind == target.kind), "jk")


def diagram(spec, target: Node | None = None) -> Diagram:
    """Lay out a network (a spec, or the widths of a dense stack) with the chain-rule path to
    ``target`` highlighted; skip connections are arrows that jump layers."""
    if not hasattr(spec, "stack"):
        from .spec import Spec

        spec = Spec(layers=tuple(spec), activation="identity")
    widths = spec.layers
    L = len(widths) - 1
    origin = _origin(spec, target)
    reach = _downstream(spec, *origin) if origin else {}
    keep: dict[int, set[int]] = {l: set() for l in range(L + 1)}
    if origin:
        keep[origin[0]] |= origin[1]
        for l, found in reach.items():  # a short path (through residual sums) stays in view
            if len(found) <= 3:
                keep[l] |= found
    own = _own_arrow(spec, target)
    if own is not None:
        keep[own[0]].add(own[1])
    columns = [_shown(widths[l], keep[l]) for l in range(L + 1)]
    tallest = max(len(c) for c in columns)
    height = (tallest - 1) * NODE_GAP
    nodes: list[DiagramNode] = []
    for l, column in enumerate(columns):
        top = (len(column) - 1) * NODE_GAP / 2
        for row, i in enumerate(column):
            y = height / 2 + top - row * NODE_GAP
            x = l * LAYER_GAP
            if i is None:
                nodes.append(DiagramNode(f"e{l}_{row}", l, None, x, y, None, False, True))
                continue
            index = tuple(map(int, np.unravel_index(i, spec.shapes[l])))  # a map's (c, p, q)
            label = Node("x", None, *index) if l == 0 else Node("a", l, *index)
            lit = i in reach.get(l, ())
            nodes.append(DiagramNode(f"n{l}_{i}", l, i, x, y, label, lit))
    loss_key = "loss"
    # the loss node right of the output layer, clear of it however deep the network is
    loss_x = max((L + 1) * LAYER_GAP * 0.85, L * LAYER_GAP + LOSS_GAP)
    nodes.append(DiagramNode(loss_key, None, None, loss_x, height / 2, None,
                             origin is not None))
    edges: list[DiagramEdge] = []
    start = origin[0] if origin else L + 1
    for config in spec.stack:
        l = config.index
        for source in config.inputs:
            for j in columns[l]:
                for k in columns[source]:
                    if j is None or k is None or not config.connects(source, k, j):
                        continue
                    mine = own is not None and own == (source, k, l, j)
                    lit = mine or (k in reach.get(source, ()) and j in reach.get(l, ())
                                   and source >= start)
                    edges.append(DiagramEdge(f"n{source}_{k}", f"n{l}_{j}", lit,
                                             target if mine else None,
                                             skip=source != l - 1,
                                             parameter=_arrow_parameter(spec, source, k, l, j)))
    for j in columns[L]:
        if j is not None:
            edges.append(DiagramEdge(f"n{L}_{j}", loss_key, j in reach.get(L, ())))
    width = nodes[-1].x
    kinds = None if spec.is_dense else tuple(c.kind for c in spec.stack)
    return Diagram(tuple(nodes), tuple(edges), width, height, L, target, kinds)


def _own_arrow(spec, target: Node | None) -> tuple[int, int, int, int] | None:
    """The arrow a two-index parameter sits on, (source layer, k, layer, j): w_jk^(l) on
    k -> j, and a custom layer's c_jk^(l) too."""
    if target is None or not target.is_parameter or target.k is None:
        return None
    j, k = (target.j, target.k) if _letters(spec, target) == "jk" else (target.k, target.j)
    return target.layer - 1, k, target.layer, j


def _arrow_parameter(spec, source: int, k: int, layer: int, j: int) -> Node | None:
    """The parameter that sits on the arrow from node k of ``source`` to node j of
    ``layer``: w_jk^(l), a custom layer's c_jk^(l) or c_kj^(l); None when there is none."""
    config = spec.layer(layer)
    if config.inputs != (source,):
        return None
    for p in config.parameters(spec.layers):
        if p.letters == "jk":
            return Node(p.kind, layer, j, k)
        if p.letters == "kj":
            return Node(p.kind, layer, k, j)
    return None


def node_id(key: str) -> str:
    """The SVG id of a diagram node (``n-n1_2``, ``n-loss``)."""
    return f"n-{key}"


def edge_id(source: str, target: str) -> str:
    """The SVG id of a diagram arrow (``e-n0_1-n1_2``)."""
    return f"e-{source}-{target}"


def _parts(node: Node, L: int | None) -> tuple[str, str, str]:
    """(kind, subscript, superscript) of a node for SVG tspans: ("w", "12", "(L)")."""
    sup = f"({layer_label(node.layer, L)})" if node.layer is not None else ""
    return node.kind, index_label(node.indices, node.kind), sup


#: SVG pixels per layout unit, margin, node radius.
SVG_SCALE, SVG_MARGIN, SVG_RADIUS = 48, 30, 15


def diagram_view(d: Diagram, layers: str = "relative", interactive: bool = False) -> dict:
    """What the TikZ and SVG templates draw, with labels and coordinates already worked out.

    ``interactive``: every node and arrow has an id, and those that stand for a quantity
    (a node, the parameter on an arrow) are choices the interactive report's script selects.
    """
    L = d.L if layers == "relative" else None

    def px(x, y):
        return (round(SVG_MARGIN + x * SVG_SCALE, 1),
                round(SVG_MARGIN + 30 + (d.height - y) * SVG_SCALE, 1))

    nodes = []
    for n in d.nodes:
        sx, sy = px(n.x, n.y)
        if n.label is not None:
            # the circle shows the node (a_j, x_k); its layer is the column's heading
            indices = n.label.indices
            sub = ",".join(map(str, indices)) if len(indices) > 1 or indices[0] >= 10 \
                else str(indices[0])
            view = {"latex": f"{n.label.kind}_{{{sub}}}", "base": n.label.kind, "sub": sub}
        elif n.key == "loss":
            view = {"latex": "C_{0}", "base": "C", "sub": "0"}
        else:
            view = {"latex": r"\vdots", "base": "\u22ee", "sub": ""}
        nodes.append({"name": f"({n.key})", "at": f"({n.x:.2f},{n.y:.2f})", "sx": sx, "sy": sy,
                      "lit": n.highlighted, "ellipsis": n.ellipsis, "id": node_id(n.key),
                      "choice": n.label.text(L) if n.label else None,
                      "group": 2 * n.layer if n.layer is not None else None, **view})
    edges = []
    for e in d.edges:
        a, b = d.node(e.source), d.node(e.target)
        (x1, y1), (x2, y2) = px(a.x, a.y), px(b.x, b.y)
        length = max(((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5, 1e-9)
        ux, uy = (x2 - x1) / length, (y2 - y1) / length
        r = SVG_RADIUS + 1
        view = {
            "src": f"({e.source})", "dst": f"({e.target})", "lit": e.highlighted,
            "label": e.target_weight.latex(L) if e.target_weight else None,
            "label_parts": _parts(e.target_weight, L) if e.target_weight else None,
            "x1": round(x1 + ux * r, 1), "y1": round(y1 + uy * r, 1),
            "x2": round(x2 - ux * (r + 4), 1), "y2": round(y2 - uy * (r + 4), 1),
            "mx": round((x1 + x2) / 2, 1), "my": round((y1 + y2) / 2 - 6, 1), "skip": e.skip,
            "id": edge_id(e.source, e.target),
            "choice": e.parameter.text(L) if e.parameter else None,
            "group": 2 * b.layer - 1 if b.layer is not None else None}
        if e.skip:  # an arc over the layers it jumps: its control point above the middle
            view.update(cx=round((x1 + x2) / 2, 1),
                        cy=round(min(y1, y2) - 0.35 * abs(x2 - x1), 1))
        edges.append(view)
    # highlighted arrows last, so they are drawn on top
    edges.sort(key=lambda e: e["lit"])
    top = max(n.y for n in d.nodes)
    columns = []
    for l in range(d.L + 1):
        x = l * LAYER_GAP
        sx, sy = px(x, top)
        label = "x" if l == 0 else f"a^{{({layer_label(l, L)})}}"
        columns.append({"at": f"({x:.2f},{top + 0.8:.2f})", "latex": label,
                        "base": "x" if l == 0 else "a",
                        "sup": f"({layer_label(l, L)})" if l else "",
                        "sx": sx, "sy": round(sy - 28, 1),
                        "kind": d.kinds[l - 1] if d.kinds and l else None,
                        "kind_at": f"({x:.2f},{top + 0.45:.2f})"})
    return {"nodes": nodes, "edges": edges, "columns": columns, "interactive": interactive,
            "svg_width": round(2 * SVG_MARGIN + d.width * SVG_SCALE, 1),
            "svg_height": round(2 * SVG_MARGIN + d.height * SVG_SCALE + 30, 1),
            "target": d.target.latex(L) if d.target else None,
            "lit_edges": sum(e.highlighted for e in d.edges)}
