"""``symprop report -o FILE.html --interactive``: click a weight, see its derivation and path.

The interactive report is the static report (:mod:`symprop.report`) with an explorer in
front: one diagram whose nodes and arrows are choices, a list of every choice by name, and a
``<section class="derivation" data-name="NAME">`` for each. A small script of our own
(``templates/documents/interactive.js``) shows the chosen section, hides the others, marks
the chosen quantity's chain-rule path (``on-path``) and keeps the URL fragment in step; with
scripts off, or printed, every section shows.

Which sections it holds (:func:`choices`): every parameter and node of a layer whose
nodes and inputs are all drawn (at most ``MAX_SHOWN`` wide), each derived step by step, with
a backward step that has a section of its own linked instead of repeated. A wide layer has
its representative (the static report's) derived step by step and every other parameter and
node as the layer's general formula with its indices filled in, linking to that
representative. The file's size is estimated before any work and refused over
``INTERACTIVE_LIMIT`` (``--force`` overrides).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .budget import Estimate
from .derivation import backprop
from .diagram import MAX_SHOWN, diagram, diagram_view, edge_id, node_id
from .diagram_maps import map_diagram_view
from .documents import FORMATS
from .errors import InputError
from .io import write_atomic
from .notation import Node
from .printing.context import derivation_context
from .progress import progress
from .report import Report, build_report, representative, second_node
from .self_check import ensure
from .spec import Spec
from .templating import render
from .worked import hold_against_module, read_point

__all__ = [
    "INTERACTIVE_LIMIT",
    "Choice",
    "InteractiveReport",
    "build_interactive",
    "choices",
    "interactive_estimate",
    "write_interactive",
]

#: Bytes of an interactive report written without --force (a browser opens 25 MB of
#: MathML in about a second; the tutorial network's file is 3.5 MB).
INTERACTIVE_LIMIT = 25_000_000
#: Bytes of HTML per layer a step-by-step derivation steps back through, of a section with
#: a general formula filled in, and of the static report per layer (measured on the
#: tutorial, softmax_ce and residual examples: 3.7, 1.6 and 3.5 MB).
FULL_BYTES_PER_LAYER = 18_500
SHORT_BYTES = 12_500
REPORT_BYTES_PER_LAYER = 150_000


@dataclass(frozen=True)
class Choice:
    """One quantity the explorer can show: its name, how it is shown, and its path."""

    node: Node
    #: Plain seed name, the section's ``data-name`` and the URL fragment (``w_12^(L)``).
    name: str
    #: Derived step by step, or the layer's general formula with its indices filled in.
    full: bool
    #: The layer's choice derived step by step (a short section links to it).
    representative: str
    #: Diagram element ids on the chain-rule path from this quantity to the loss.
    path: tuple[str, ...] = ()
    #: Other spellings of the name a fragment may use (absolute layers, commas).
    aliases: tuple[str, ...] = ()


def _wide(spec: Spec, layer: int) -> bool:
    """Is a layer drawn with an ellipsis, or does it read one that is?"""
    if layer == 0:
        return spec.layers[0] > MAX_SHOWN
    return any(spec.layers[m] > MAX_SHOWN for m in (layer, *spec.layer(layer).inputs))


def _quantities(graph, layer: int) -> list[Node]:
    """A layer's parameters (weights first, as declared), then its nodes (a map's by
    channel and position)."""
    nodes = [tuple(map(int, i)) for i in np.ndindex(*graph.spec.shapes[layer])]
    if layer == 0:
        return [Node("x", None, *i) for i in nodes]
    return [*graph.layers[layer].parameters, *(Node("a", layer, *i) for i in nodes)]



def _names(node: Node, L: int, layers: str) -> tuple[str, tuple[str, ...]]:
    """The plain name in the report's layer style, and its other spellings."""
    name = node.text(L if layers == "relative" else None)
    spellings = {node.text(L), node.text(None)}
    if len(node.indices) > 1:  # w_1,2^(L) reads as w_12^(L)
        for text in sorted(spellings):  # a copy: the loop adds to it
            sub = ",".join(map(str, node.indices))
            spellings.add(text.replace(f"_{''.join(map(str, node.indices))}^", f"_{sub}^", 1))
    spellings.discard(name)
    return name, tuple(sorted(spellings))


def _path(spec: Spec, node: Node, drawn: set[str]) -> tuple[str, ...]:
    """Ids of the drawn nodes and arrows on the path from ``node`` to the loss (a network of
    maps: the arrows after its layer and the loss node)."""
    if spec.has_maps:
        view = map_diagram_view(spec, node)
        return (*(a["id"] for a in view["arrows"] if a["lit"]), "n-loss")
    d = diagram(spec, node)
    ids = [node_id(n.key) for n in d.nodes if n.highlighted]
    ids += [edge_id(e.source, e.target) for e in d.edges if e.highlighted]
    return tuple(i for i in ids if i in drawn)


def _representatives(graph, layer: int) -> set[Node]:
    """What a wide layer derives step by step: the static report's representative and its
    node 1 (x_1 for the inputs)."""
    if layer == 0:
        return {Node("x", None, *second_node(graph.spec.shapes[0]))}
    return {representative(graph, layer), Node("a", layer, *second_node(graph.spec.shapes[layer]))}


def choices(spec: Spec, graph, layers: str = "relative") -> list[Choice]:
    """Every quantity the explorer offers, output layer first; see the module docstring."""
    if spec.has_maps:
        drawn = set()
    else:
        base = diagram(spec)
        drawn = {node_id(n.key) for n in base.nodes} | {edge_id(e.source, e.target)
                                                        for e in base.edges}
    out = []
    for layer in range(graph.L, -1, -1):
        wide = _wide(spec, layer)
        full = _representatives(graph, layer)
        lead = _names(representative(graph, layer) if layer else min(full), graph.L,
                      layers)[0]
        for node in _quantities(graph, layer):
            name, aliases = _names(node, graph.L, layers)
            out.append(Choice(node, name, not wide or node in full, lead,
                              _path(spec, node, drawn), aliases))
    return out


def _layer(node: Node) -> int:
    return node.layer or 0


def interactive_estimate(spec: Spec, limit: int = INTERACTIVE_LIMIT) -> Estimate:
    """Bytes of the interactive report, before any derivation (microseconds)."""
    size = REPORT_BYTES_PER_LAYER * spec.L
    for layer in range(spec.L + 1):
        count = spec.layers[layer] + (sum(p.size for p in spec.layer(layer).parameters(
            spec.layers)) if layer else 0)
        steps = spec.L - layer + 1
        if _wide(spec, layer):
            size += 2 * FULL_BYTES_PER_LAYER * steps + count * SHORT_BYTES
        else:
            size += count * FULL_BYTES_PER_LAYER * steps
    return Estimate("the interactive report (a derivation of every parameter and node)",
                    size, "bytes", limit,
                    "Write the static report (without --interactive), whose derivations "
                    "cover one weight per layer, or derive single parameters with "
                    "`symprop derive SPEC --wrt NAME`", where=f"{spec.source}: key 'layers'")


@dataclass
class InteractiveReport:
    """The static report plus the explorer's choices and sections, before layout."""

    report: Report
    choices: list[Choice]
    sections: list[dict] = field(repr=False)
    layers: str = "relative"

    @property
    def spec(self) -> Spec:
        return self.report.spec

    def render(self, format: str = "html") -> str:
        if format != "html":
            raise InputError("an interactive report is an HTML file",
                             hint="Write FILE.html, or leave out --interactive.")
        r = dict(self.report.context, interactive=self.explorer())
        body = render("documents/report.j2", dialect="html", r=r)
        return render("documents/interactive.html.j2", body=body,
                      title=f"Backpropagation in the network {self.spec.name}")

    def explorer(self) -> dict:
        """What the explorer template lays out: diagram, list, sections, the script's data.

        What the diagram does not draw as a node or an arrow of its own (a node behind a wide
        layer's ellipsis, a per-node parameter such as gamma_j or b_j, the weights of elided
        nodes) is a choice in its layer's menu, which the layer's ellipsis and its column
        heading open: every choice is reachable from the diagram as well as from the list.
        """
        if self.spec.has_maps:  # channel stacks: every choice is in its layer's menu
            view = map_diagram_view(self.spec, None, self.layers, interactive=True)
            drawn, template = set(), "documents/diagram_maps.svg.j2"
        else:
            view = diagram_view(diagram(self.spec), self.layers, interactive=True)
            drawn = {e["choice"] for e in (*view["nodes"], *view["edges"]) if e["choice"]}
            template = "documents/diagram.svg.j2"
        groups: dict[int, list[dict]] = {}
        undrawn: dict[int, list[dict]] = {}
        for c, section in zip(self.choices, self.sections):
            groups.setdefault(_layer(c.node), []).append(section)
            if c.name not in drawn:
                undrawn.setdefault(_layer(c.node), []).append(section)
        menus = []
        for layer in sorted(undrawn, reverse=True):
            column = view["columns"][layer]
            label = f"layer {column['sup'].strip('()') or 0}" + (
                f" ({column['kind']})" if column["kind"] else "")
            menu = {"id": f"more-{layer}", "layer": column["latex"], "kind": column["kind"],
                    "sections": undrawn[layer],
                    "label": f"{label}: {len(undrawn[layer])} more not drawn in the diagram"}
            column.update(menu=menu["id"], menu_label=menu["label"], group=2 * layer)
            menus.append(menu)
        for n in view.get("nodes", ()):
            if n["ellipsis"] and n["group"] // 2 in undrawn:
                n.update(menu=f"more-{n['group'] // 2}",
                         menu_label=view["columns"][n["group"] // 2]["menu_label"])
        data = {"first": self.choices[0].representative,
                "aliases": {a: c.name for c in self.choices for a in (c.name, *c.aliases)},
                "paths": {c.name: list(c.path) for c in self.choices}}
        return {"svg": render(template, view=view),
                "groups": [{"layer": view["columns"][layer]["latex"], "sections": groups[layer]}
                           for layer in sorted(groups, reverse=True)],
                "menus": menus, "sections": self.sections, "data": data,
                "labels": {s["name"]: s["label"] for s in self.sections}}

    def _repr_html_(self) -> str:
        return self.render()


def build_interactive(spec: Spec, layers: str = "relative", force: bool = False,
                      at: str | Path | None = None) -> InteractiveReport:
    """Derive every section of the interactive report (refused over the budget first); with
    ``at`` (VALUES.toml) each section is a worked example with its numbers."""
    spec.require("interactive", "symprop report --interactive")
    interactive_estimate(spec).check(force)
    engine = backprop(spec)
    point = read_point(at, engine) if at is not None else None  # read once, for both
    report = build_report(spec, layers, force, point)
    # an entry no window reads (a stride larger than the kernel) has no path to the loss
    offered = [c for c in choices(spec, engine.graph, layers) if engine.has_path(c.node)]
    linked = {c.node: c.name for c in offered if c.full and not c.node.is_parameter}
    sections = []
    for c in progress(offered, what="interactive report: derivations"):
        # a derivation's backward steps are of other nodes, never of its own target
        derivation = engine.derive(c.node)
        ensure(derivation, quick=True)  # every section, against the forward pass
        if point is not None:
            hold_against_module(point, derivation)
        d = derivation_context(derivation, "latex", layers, linked=linked, at=point)
        sections.append({"name": c.name, "full": c.full, "representative": c.representative,
                         "label": d["target"], "d": d})
    return InteractiveReport(report, offered, sections, layers)


def write_interactive(spec: Spec, path: str | Path, layers: str = "relative",
                      force: bool = False, at: str | Path | None = None) -> Path:
    """Write the interactive report to an .html file, atomically."""
    path = Path(path)
    if path.suffix.lower() != FORMATS["html"].extension:
        raise InputError(f"an interactive report is an HTML file, not {path.name!r}",
                         hint="End the output name in .html, or leave out --interactive.")
    return write_atomic(path, build_interactive(spec, layers, force, at).render())
