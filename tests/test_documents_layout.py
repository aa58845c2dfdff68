"""Long equations on a LaTeX page: broken over the lines of an align* (symprop.printing.
breaking) so that nothing runs past the margin -- exact layouts for the tutorial, the
breaking only lays out (read back, every equation is the one printed), and pdflatex on the
residual report and the tutorial's standalone derivation finds no overfull box."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from test_documents import equations, unbroken
from test_layers import spec_around

from symprop import Spec, backprop, derive, tutorial_spec
from symprop.cli import main
from symprop.documents import derivation_document
from symprop.printing.breaking import PAGE_EM, display_lines, estimate_width, tex_display
from symprop.report import build_report

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: An overfull box wider than this (pt) fails: TeX reports fractions of a point for
#: rounding, a line past the margin is tens or hundreds.
TOLERANCE_PT = 3.0


def displays(body: str) -> list[tuple[str, str]]:
    return re.findall(r"\\begin\{(equation|align)\*\}\n(.*?)\n\\end\{\1\*\}", body, re.DOTALL)


# ------------------------------------------------------------------ the layout
def test_a_short_equation_stays_one_line_in_an_equation_star():
    short = r"\frac{\partial C_{0}}{\partial a_{1}^{(L)}} = 2 \left(a_{1}^{(L)} - y_{1}\right)"
    assert display_lines(short) == [short]
    assert tex_display(short) == "\\begin{equation*}\n" + short + "\n\\end{equation*}"


def test_the_tutorials_long_sums_break_before_a_plus_aligned_after_the_equals():
    body = derivation_document(derive(tutorial_spec(), "a_2^(L-1)"), "latex")
    broken = [b for env, b in displays(body) if env == "align"]
    term = (r"2 \left(a_{{{j}}}^{{(L)}} - y_{{{j}}}\right) g^{{\prime (L)}}\left(z_{{{j}}}^"
            r"{{(L)}}\right) w_{{{j}2}}^{{(L)}}")
    assert broken[-1] == (
        r"\frac{\partial C_{0}}{\partial a_{2}^{(L-1)}} &= " + term.format(j=0) + " + "
        + term.format(j=1) + " \\\\\n"
        r"&\quad + " + term.format(j=2) + " + " + term.format(j=3))
    # a bracket wider than the line is closed and reopened, its continuation a quad deeper
    assert broken[0] == (
        r"& \frac{\partial}{\partial a_{2}^{(L-1)}} \left( w_{00}^{(L)} a_{0}^{(L-1)} + "
        r"w_{01}^{(L)} a_{1}^{(L-1)} + w_{02}^{(L)} a_{2}^{(L-1)} + w_{03}^{(L)} a_{3}^{(L-1)}"
        r" + w_{04}^{(L)} a_{4}^{(L-1)}\right. \\" "\n"
        r"&\quad\quad \left.{}+ w_{05}^{(L)} a_{5}^{(L-1)} \right)")


def _equations_of(d: dict):
    """The long equations a derivation context gives its template, nested steps included."""
    yield d["title"] + " = " + d["result"]
    yield d["title"] + " = " + " + ".join(d["products"])
    if d["expanded"]:
        yield d["title"] + " = " + d["expanded"]
    yield from d["jacobians"]
    for f in d["factors"]:
        if f.get("definition"):
            yield f["definition"]
            yield f["expansion"]
    for nested in [d["nested"], *d["more_nested"]]:
        if nested and "title" in nested and "result" in nested:
            yield from _equations_of(nested)


def test_breaking_only_lays_out_and_every_line_fits():
    """Each equation of the residual report's derivations, broken, reads back as the
    equation the printer gave (nothing but layout is added), and each line is estimated
    within the page."""
    report = build_report(Spec.from_toml(EXAMPLES / "residual.toml"))
    seen = 0
    for d in report.context["derivations"]:
        for equation in _equations_of(d):
            lines = display_lines(equation)
            assert unbroken(" \\\\\n".join(lines)) == equation
            seen += len(lines) > 1
            for line in lines:
                assert estimate_width(line.replace("&", "")) <= PAGE_EM + 3.5, line[:120]
    assert seen > 20


def test_markdown_and_html_are_not_broken():
    d = derive(tutorial_spec(), "w_22^(L-1)")
    for fmt in ("markdown", "html"):
        out = derivation_document(d, fmt)
        assert r"\begin{align" not in out and r"\right." not in out


def test_a_long_exponent_is_written_with_exp_so_it_can_break():
    report = build_report(spec_around("custom")).render("latex")
    composed = next(unbroken(b) for env, b in displays(report)
                    if env == "align" and b.startswith("C_{0} &="))
    assert r"\operatorname{id}\left(\exp\left(- \left(\left(\tanh\left(b_{0}^{(L-2)}" in composed
    assert r"e^{- \left(" not in composed


# ------------------------------------------------------------------ pdflatex
def overfull(tex: str, folder: Path) -> list[str]:
    """pdflatex's overfull boxes wider than TOLERANCE_PT, each with its source line."""
    source = folder / "doc.tex"
    source.write_text(tex, encoding="utf-8")
    run = subprocess.run(["pdflatex", "-halt-on-error", "-interaction=nonstopmode",
                          "-no-shell-escape", source.name], cwd=folder, capture_output=True,
                         text=True, errors="replace", timeout=600, check=False)
    assert run.returncode == 0 and (folder / "doc.pdf").exists(), run.stdout[-2000:]
    log = (folder / "doc.log").read_text(errors="replace")
    lines = tex.splitlines()
    out = []
    for size, first in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\) "
                                  r"(?:detected at line|in paragraph at lines) (\d+)", log):
        if float(size) > TOLERANCE_PT:
            out.append(f"{size}pt at line {first}: {lines[int(first) - 1][:150]}")
    return out


@pytest.mark.needs("pdflatex")
def test_the_residual_reports_pages_have_no_line_past_the_margin(tmp_path):
    tex = build_report(Spec.from_toml(EXAMPLES / "residual.toml")).render("latex")
    assert overfull(tex, tmp_path) == []


@pytest.mark.needs("pdflatex")
def test_the_tutorials_standalone_derivation_has_no_line_past_the_margin(tmp_path):
    out = tmp_path / "x.tex"
    assert main(["derive", str(EXAMPLES / "tutorial.toml"), "--wrt", "w_22^(L-1)",
                 "--format", "latex", "--standalone", "-o", str(out)]) == 0
    assert overfull(out.read_text(), tmp_path) == []


@pytest.mark.needs("pdflatex")
@pytest.mark.parametrize("kind", ["custom", "layernorm"])
def test_a_report_with_a_composed_loss_has_no_line_past_the_margin(tmp_path, kind):
    engine = backprop(spec_around(kind))
    assert overfull(build_report(engine.graph.spec).render("latex"), tmp_path) == []
    hidden = derivation_document(engine.derive("a_1^(1)"), "latex", standalone=True)
    assert overfull(hidden, tmp_path) == []


def test_equations_reads_back_both_environments():
    body = ("\\begin{equation*}\na = b\n\\end{equation*}\n"
            "\\begin{align*}\nx &= \\left(1 + 2\\right. \\\\\n&\\quad\\quad \\left.{}+ 3\\right)"
            "\n\\end{align*}\n")
    assert equations(body) == ["a = b", r"x = \left(1 + 2 + 3\right)"]


def test_an_equation_with_nowhere_to_break_stays_as_it_is():
    """No alignment mark is left in a display that is not broken (pdflatex stops on it)."""
    wide = r"x = " + r"\frac{" + "a" * 120 + "}{b}"  # one fraction, wider than the page
    assert display_lines(wide) == [wide]
    engine = backprop(spec_around("add"))
    for target in ("w_00^(1)", "a_0^(1)"):
        body = derivation_document(engine.derive(target), "latex")
        for env, b in displays(body):
            assert ("&" in b) == (env == "align"), b[:200]
