"""Derivation documents in LaTeX, Markdown, HTML and plain text.

The last two stages of the pipeline for people: a derivation (or a whole report, see
:mod:`symprop.report`) is printed by the seed-notation printers into a context
(:func:`symprop.printing.context.derivation_context`), and Jinja2 templates lay it out.
LaTeX, Markdown and HTML share one layout (``templates/documents/derivation.j2``) written in
the macros of a dialect (``tex.j2``, ``md.j2``, ``html.j2``); ``--standalone`` wraps the body
in ``standalone.<ext>.j2``: an amsmath + TikZ article that pdflatex compiles as it is, or one
self-contained HTML file (MathML and inline SVG, nothing fetched from the network).
"""

from __future__ import annotations

from dataclasses import dataclass

from .budget import document_estimate
from .diagram import diagram, diagram_view
from .diagram_maps import map_diagram_view
from .printing.context import derivation_context
from .templating import render

__all__ = ["FORMATS", "DocumentFormat", "derivation_document", "diagram_drawings",
           "render_derivation", "wrap"]


@dataclass(frozen=True)
class DocumentFormat:
    name: str
    #: The dialect template of ``templates/documents/`` (None: plain text has its own).
    dialect: str | None
    extension: str


FORMATS: dict[str, DocumentFormat] = {f.name: f for f in [
    DocumentFormat("latex", "tex", ".tex"),
    DocumentFormat("markdown", "md", ".md"),
    DocumentFormat("html", "html", ".html"),
    DocumentFormat("text", None, ".txt"),
]}


def diagram_drawings(spec, target=None, layers: str = "relative") -> dict:
    """The network drawn as TikZ and as SVG, with the path to ``target`` highlighted; a
    network of maps as channel stacks with its kernel windows (:mod:`symprop.diagram_maps`)."""
    if spec.has_maps:
        view = map_diagram_view(spec, target, layers)
        return {"tikz": render("documents/diagram_maps.tikz.j2", view=view),
                "svg": render("documents/diagram_maps.svg.j2", view=view)}
    view = diagram_view(diagram(spec, target), layers)
    return {"tikz": render("documents/diagram.tikz.j2", view=view),
            "svg": render("documents/diagram.svg.j2", view=view)}


def wrap(body: str, fmt: DocumentFormat, title: str) -> str:
    """A complete document around ``body`` (LaTeX article, HTML page, Markdown with title)."""
    return render(f"documents/standalone{fmt.extension}.j2", body=body, title=title)


def render_derivation(derivation, layers: str = "relative", at=None) -> str:
    """The derivation as plain text, step by step (template ``derivation.txt.j2``); with
    ``at`` (a :class:`~symprop.worked.WorkedPoint`) a worked example with numbers."""
    return render("derivation.txt.j2", d=derivation_context(derivation, "text", layers,
                                                            at=at))


def derivation_document(derivation, format: str = "latex", standalone: bool = False,
                        layers: str = "relative", force: bool = False, at=None) -> str:
    """The step-by-step derivation as a LaTeX, Markdown, HTML or plain-text document (a
    worked example with every step's number with ``at``, see :mod:`symprop.worked`).

    A derivation steps back through every layer above its target: one that would run to
    hundreds of pages is refused before any work (:class:`~symprop.budget.TooBigError`)
    unless ``force``.
    """
    document_estimate(derivation.graph.spec, derivation.target).check(force)
    fmt = FORMATS[format]
    if fmt.dialect is None:
        return render_derivation(derivation, layers, at)
    d = derivation_context(derivation, "latex", layers, at=at)
    d["diagram"] = diagram_drawings(derivation.graph.spec, derivation.target, layers)
    body = render("documents/derivation_page.j2", dialect=fmt.dialect, d=d)
    if not standalone:
        return body
    title = f"Backpropagation in the network {derivation.graph.spec.name}"
    return wrap(body, fmt, title)
