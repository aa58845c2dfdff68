"""``symprop report``: the whole network in one document (LaTeX, PDF, HTML or Markdown).

Sections: notation, the network (table and diagram), C_0 as an explicit composition, the
general backprop equations (each checked against the engine at a concrete node), the
derivation of a representative weight of every layer, and the matrix form of seed 001.
:func:`build_report` returns a :class:`Report` whose ``context`` is plain data; templates in
``templates/documents/`` lay it out.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import sympy

from .budget import matrix_check_estimate, report_estimate
from .derivation import backprop
from .documents import FORMATS, diagram_drawings, wrap
from .equations import backprop_equations, layer_equations
from .errors import InputError
from .graph import C0
from .io import write_atomic
from .letters_derivation import Autodiff, prove, speller
from .matrix import MatrixForm, matrix_form
from .notation import LATEX_NAMES, Node
from .printing.context import derivation_context
from .printing.latex import SeedLatexPrinter
from .progress import progress
from .self_check import autodiff_backend, ensure
from .spec import Spec
from .templating import render
from .worked import WorkedPoint, hold_against_module, read_point

__all__ = ["REPORT_SUFFIXES", "Report", "build_report", "second_node", "write_report"]

#: Output suffix -> document format (a .pdf is the LaTeX run through pdflatex).
REPORT_FORMATS = {".tex": "latex", ".pdf": "latex", ".html": "html", ".md": "markdown"}
REPORT_SUFFIXES = tuple(REPORT_FORMATS)
#: The fully composed C_0 is shown when its LaTeX is at most this long.
MAX_COMPOSED = 2500

def _composition(spec, p) -> str:
    """C_0(a^(L)(z^(L)(w^(L), a^(L-1)(...)))), seed 000's nested form, innermost x; a layer
    of another kind reads its parameters and its inputs, a skip connection's earlier layer
    is named, not written out again."""
    def written(l: int, nested: bool) -> str:
        if l == 0:
            return "x"
        lab = p.layer(l)
        config = spec.layer(l)
        if not nested:
            return f"a^{{({lab})}}"
        if config.kind == "dense":
            inner = written(l - 1, True)
            return rf"a^{{({lab})}}\left(z^{{({lab})}}\left(w^{{({lab})}}, {inner}\right)\right)"
        params = [rf"{LATEX_NAMES.get(q.kind, q.kind)}^{{({lab})}}"
                  for q in config.parameters(spec.layers)]
        args = params + [written(m, m == l - 1) for m in config.inputs]
        return rf"a^{{({lab})}}\left({', '.join(args)}\right)"
    return rf"C_{{0}}\left({written(spec.L, True)}\right)"


def second_node(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Node 1 of a layer (a_1^(l), x_1), or of a map the first channel's second row and
    column, (0, 1, 1)."""
    first = (0,) if len(shape) > 1 else ()
    return (*first, *(min(1, n - 1) for n in shape[len(first):]))


def representative(graph, layer: int) -> Node:
    """What the report derives for a layer: w_{12}^{(l)} of a dense layer where it is wide
    enough (seed 000's choice), else the nearest; the first parameter of another kind, at
    its node 1 (gamma_1^(l), c_{12}^(l)); a_1^(l) of a layer without parameters."""
    lay = graph.layers[layer]
    params = lay.parameters
    if lay.kind == "dense":
        return Node("w", layer, min(1, graph.widths[layer] - 1),
                    min(2, graph.widths[layer - 1] - 1))
    if not params:
        return Node("a", layer, *second_node(graph.spec.shapes[layer]))
    first = [q for q in params if q.kind == params[0].kind]
    wanted = (1, 2)[:len(first[0].indices)]
    return min(first, key=lambda q: sum(abs(a - b) for a, b in zip(q.indices, wanted)))


def _matrix_context(form: MatrixForm, p) -> list[dict]:
    """Each layer's steps: the matrix equation, its shape, and the entry it is checked at."""
    pr = p.doprint
    out = []
    for layer, steps in sorted(form.layers.items(), reverse=True):
        views = []
        for s in steps:
            shape = " \\times ".join(str(d) for d in s.shape)
            idx = ",".join(pr(i) for i in s.entry_index)
            views.append({
                "step": s.step, "equation": f"{pr(s.lhs)} = {pr(s.rhs)}",
                "shape": shape, "entrywise": s.entrywise,
                "entry": None if s.entrywise else f"\\left({pr(s.rhs)}\\right)_{{{idx}}} = "
                                                  f"{pr(s.entry)}",
                "scalar": pr(s.scalar), "summed": s.summed,
                "checked": s.checked, "entries": s.entries})
        out.append({"layer": p.layer(layer), "steps": views})
    return out


@dataclass
class Report:
    """The document of one network, before it is laid out in a format."""

    spec: Spec
    context: dict = field(repr=False)
    matrix: MatrixForm | None = field(repr=False)
    template: str = "documents/report.j2"

    def render(self, format: str = "latex") -> str:
        fmt = FORMATS[format]
        body = render(self.template, dialect=fmt.dialect, r=self.context)
        return wrap(body, fmt, f"Backpropagation in the network {self.spec.name}")

    def _repr_markdown_(self) -> str:
        return self.render("markdown")

    def _repr_html_(self) -> str:
        return render(self.template, dialect="html", r=self.context)


def build_report(spec: Spec, layers: str = "relative", force: bool = False,
                 at: str | Path | WorkedPoint | None = None) -> Report:
    """Everything the report shows, printed in LaTeX seed notation; with ``at`` (a VALUES.toml
    path, or a point already read) each derivation is a worked example at that point
    (:mod:`symprop.worked`).

    A report of hundreds of pages is refused before any work unless ``force``.
    """
    if any(hasattr(c, "letter_derivation") for c in spec.stack):  # samples not independent
        return letters_report(spec, force, at, layers)
    spec.require("report", "symprop report")
    report_estimate(spec).check(force)
    matrix_check_estimate(spec).check(force)
    engine = backprop(spec)
    point = at if isinstance(at, WorkedPoint) or at is None else read_point(at, engine)
    g = engine.graph
    p = SeedLatexPrinter({"L": g.L, "layers": layers})
    derivations = []
    for l in progress(range(g.L, 0, -1), what="report: derivations"):
        derivation = engine.derive(representative(g, l))
        ensure(derivation)  # as derive holds it: nothing that differs is printed
        if point is not None:
            hold_against_module(point, derivation)
        derivations.append(derivation_context(derivation, "latex", layers, at=point))
    form = matrix_form(engine)
    composed = p.doprint(sympy.Eq(C0, g.composed_C0)) if _small(g) else None
    context = {
        "spec": {"name": spec.name, "layers": [
                     "x".join(map(str, shape)) for shape in spec.shapes], "loss": spec.loss,
                 "reduction": spec.reduction, "L": g.L,
                 "parameters": spec.n_parameters, "dense": spec.is_dense,
                 "maps": spec.has_maps},
        "diagram": diagram_drawings(spec, None, layers),
        "layers": layer_equations(engine, p),
        "composition": _composition(spec, p),
        "loss": f"C_{{0}} = {p.doprint(g.loss)}" if g.widths[-1] <= 6 else None,
        "composed": composed,
        "equations": backprop_equations(engine, p),
        "notation": list(dict.fromkeys(row for c in spec.stack for row in c.notation())),
        "derivations": derivations,
        "matrix": _matrix_context(form, p),
        "interactive": None,
    }
    return Report(spec, context, form)


def letters_report(spec, force: bool = False, at=None, layers: str = "relative"):
    """The report of a network with a layer that derives over the batch: the network, its
    diagram, and each such layer's proven derivations in letters and batch form."""
    if at is not None:
        raise InputError("--at does not work out a report over a batch with numbers yet",
                         where=str(at), hint="Leave out --at.")
    sections = []
    truth, spell = Autodiff(autodiff_backend()), speller(spec, layers)
    for config in spec.stack:
        if hasattr(config, "letter_derivation"):
            done = [config.letter_derivation(node, spec, truth, spell)
                    for node in config.letter_targets()]
            done.append(config.letter_matrix_form(spec, truth, spell))
            for d in done:
                prove(d)
            view = config.unrolled_view() if hasattr(config, "unrolled_view") else None
            sections.append({
                "layer": config.index, "kind": config.kind, "why": config.LETTER_REASON,
                "derivations": [d.context("latex") for d in done],
                "drawing": view and {"tikz": render("documents/unrolled.tikz.j2", view=view),
                                     "svg": render("documents/unrolled.svg.j2", view=view)}})
    context = {"spec": {"name": spec.name, "loss": spec.loss, "reduction": spec.reduction,
                        "parameters": spec.n_parameters},
               "layers": [{"layer": c.index, "describe": c.describe(),
                           "shape": "x".join(map(str, shape))}
                          for c, shape in zip(spec.stack, spec.shapes[1:])],
               "input": "x".join(map(str, spec.shapes[0])),
               "diagram": diagram_drawings(spec), "sections": sections}
    return Report(spec, context, None, "documents/letters_report.j2")


def _small(graph) -> bool:
    """Is the fully composed C_0 short enough to print? (Counted before printing it.)"""
    return sympy.count_ops(graph.composed_C0) * 12 <= MAX_COMPOSED if sum(
        graph.widths) <= 12 else False


def write_report(spec: Spec, path: str | Path, layers: str = "relative",
                 force: bool = False, at: str | Path | None = None) -> Path:
    """Write the report as .tex, .pdf (through pdflatex), .html or .md, atomically (a worked
    example at the point of VALUES.toml ``at``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in REPORT_FORMATS:
        raise InputError(f"cannot tell the report format from {path.name!r}",
                         hint="End the output name in .tex, .pdf, .html or .md.")
    if suffix == ".pdf" and shutil.which("pdflatex") is None:
        raise InputError("writing a .pdf needs pdflatex, which is not installed",
                         hint="Install a LaTeX distribution (Debian: apt-get install "
                              "texlive-latex-base texlive-pictures), or write a .tex file "
                              "and compile it elsewhere.")
    text = build_report(spec, layers, force, at).render(REPORT_FORMATS[suffix])
    if suffix != ".pdf":
        return write_atomic(path, text)
    return write_atomic(path, compile_pdf(text))


def compile_pdf(tex: str) -> bytes:
    """Run pdflatex (halting on the first error) in a temporary folder; return the PDF."""
    with tempfile.TemporaryDirectory(prefix="symprop-tex-") as folder:
        source = Path(folder) / "report.tex"
        source.write_text(tex, encoding="utf-8")
        run = subprocess.run(["pdflatex", "-halt-on-error", "-interaction=nonstopmode",
                              "-no-shell-escape", source.name], check=False, cwd=folder,
                             capture_output=True, text=True, errors="replace", timeout=600)
        pdf = source.with_suffix(".pdf")
        if run.returncode != 0 or not pdf.exists():
            log = "\n".join(line for line in run.stdout.splitlines() if line.startswith("!"))
            raise RuntimeError(f"pdflatex failed on the generated report:\n{log}")
        return pdf.read_bytes()
