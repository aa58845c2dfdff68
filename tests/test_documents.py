"""Issue 3: derivation documents, the matrix form, diagrams, reports -- exact strings for the
tutorial network, pdflatex on every standalone output, Chromium on the HTML report."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import sympy
from conftest import CHROMIUM_FLAGS

from symprop import Node, Spec, backprop, derive
from symprop.cli import main
from symprop.diagram import diagram
from symprop.documents import derivation_document
from symprop.matrix import matrix_form
from symprop.printing.latex import latex
from symprop.printing.text import text
from symprop.report import build_report, compile_pdf, write_report

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ARCHITECTURES = ["tutorial", "seed001", "softmax_ce", "custom"]


def equations(latex_body: str) -> list[str]:
    """Each display's equation in order; one set over the lines of an align* (it is wider
    than the page) is read back as the one line it was printed from."""
    found = re.findall(r"\\begin\{(equation|align)\*\}\n(.*?)\n\\end\{\1\*\}", latex_body,
                       re.DOTALL)
    return [body if env == "equation" else unbroken(body) for env, body in found]


def unbroken(body: str) -> str:
    """The lines of a broken display joined back: without the alignment mark, the indent,
    and the \\right. and \\left. that close and reopen a bracket across a line break."""
    lines, reopened = [], 0
    for line in body.split(" \\\\\n"):
        line = re.sub(r"^&(\\quad)* ?", "", line).replace(" &=", " =", 1)
        line = line[len(r"\left.") * reopened:].removeprefix("{}")
        closed = len(re.search(r"(\\right\.)*$", line)[0]) // len(r"\right.")
        lines.append(line[:len(line) - len(r"\right.") * closed])
        reopened = closed
    return " ".join(lines)


# ------------------------------------------------------------------ the printer
@pytest.mark.parametrize("name, expected", [
    ("w_{12}^{(L)}", r"w_{12}^{(L)}"),
    ("w_12^(L-1)", r"w_{12}^{(L-1)}"),
    ("a_2^(L-1)", r"a_{2}^{(L-1)}"),
    ("z_0^(1)", r"z_{0}^{(L-2)}"),
    ("x_1", r"x_{1}"),
])
def test_latex_names_in_seed_notation(tutorial, name, expected):
    graph = backprop(tutorial).graph
    assert latex(graph.resolve(name).symbol, graph.L) == expected


def test_two_digit_indices_take_a_comma_and_layers_can_be_absolute():
    symbol = Node("w", 2, 10, 3).symbol
    assert latex(symbol, 3) == r"w_{10,3}^{(L-1)}"
    assert latex(symbol, 3, layers="absolute") == r"w_{10,3}^{(2)}"
    assert latex(Node("delta", 3, 1).symbol, 3) == r"\delta_{1}^{(L)}"


def test_activation_derivative_and_partial_derivative_notation(tutorial):
    d = derive(tutorial, "w_{12}^{(L)}")
    assert latex(d.lhs, 3) == r"\frac{\partial C_{0}}{\partial w_{12}^{(L)}}"
    assert latex(d.result, 3) == (r"2 \left(a_{1}^{(L)} - y_{1}\right) g^{\prime (L)}"
                                  r"\left(z_{1}^{(L)}\right) a_{2}^{(L-1)}")
    sig = Spec.from_dict({"layers": [2, 2, 1], "activation": "sigmoid"})
    d = derive(sig, "w_{00}^{(L)}")
    assert r"\sigma^{\prime}\left(z_{0}^{(L)}\right)" in latex(d.result, 2)


# ---------------------------------------------------- exact tutorial derivations
def test_exact_latex_derivation_of_w12_L(tutorial):
    body = derivation_document(derive(tutorial, "w_{12}^{(L)}"), "latex")
    z_terms = " + ".join(rf"w_{{1{k}}}^{{(L)}} a_{{{k}}}^{{(L-1)}}" for k in range(6))
    loss = " + ".join(rf"\left(a_{{{j}}}^{{(L)}} - y_{{{j}}}\right)^{{2}}" for j in range(4))
    assert equations(body) == [
        (r"\frac{\partial C_{0}}{\partial w_{12}^{(L)}} = \frac{\partial C_{0}}{\partial "
        r"a_{1}^{(L)}} \cdot \frac{\partial a_{1}^{(L)}}{\partial z_{1}^{(L)}} \cdot "
        r"\frac{\partial z_{1}^{(L)}}{\partial w_{12}^{(L)}}"),
        "C_{0} = " + loss,
        r"\frac{\partial}{\partial a_{1}^{(L)}} \left( " + loss + r" \right)",
        r"= 0 + 2 \left(a_{1}^{(L)} - y_{1}\right) + 0 + 0",
        r"\frac{\partial C_{0}}{\partial a_{1}^{(L)}} = 2 \left(a_{1}^{(L)} - y_{1}\right)",
        r"a_{1}^{(L)} = g^{(L)}\left(z_{1}^{(L)}\right)",
        (r"\frac{\partial a_{1}^{(L)}}{\partial z_{1}^{(L)}} = g^{\prime (L)}"
        r"\left(z_{1}^{(L)}\right)"),
        "z_{1}^{(L)} = " + z_terms,
        r"\frac{\partial}{\partial w_{12}^{(L)}} \left( " + z_terms + r" \right)",
        r"= 0 + 0 + a_{2}^{(L-1)} + 0 + 0 + 0",
        r"\frac{\partial z_{1}^{(L)}}{\partial w_{12}^{(L)}} = a_{2}^{(L-1)}",
        (r"\frac{\partial C_{0}}{\partial w_{12}^{(L)}} = 2 \left(a_{1}^{(L)} - y_{1}\right) "
        r"\cdot g^{\prime (L)}\left(z_{1}^{(L)}\right) \cdot a_{2}^{(L-1)}"),
        (r"\frac{\partial C_{0}}{\partial w_{12}^{(L)}} = 2 \left(a_{1}^{(L)} - y_{1}\right) "
        r"g^{\prime (L)}\left(z_{1}^{(L)}\right) a_{2}^{(L-1)}"),
        (r"\frac{\partial C}{\partial w_{12}^{(L)}} = \frac{1}{n} \sum_{i=0}^{n-1} "
        r"\frac{\partial C_{i}}{\partial w_{12}^{(L)}}"),
    ]
    assert "3 of the 4 terms vanish" in body and "5 of the 6 terms vanish" in body


def test_exact_latex_derivation_of_a2_L_minus_1(tutorial):
    eqs = equations(derivation_document(derive(tutorial, "a_{2}^{(L-1)}"), "latex"))
    assert eqs[0] == (r"\frac{\partial C_{0}}{\partial a_{2}^{(L-1)}} = \sum_{j=0}^{3} "
                      r"\frac{\partial C_{0}}{\partial a_{j}^{(L)}} \cdot \frac{\partial "
                      r"a_{j}^{(L)}}{\partial z_{j}^{(L)}} \cdot \frac{\partial z_{j}^{(L)}}"
                      r"{\partial a_{2}^{(L-1)}}")
    assert r"= 0 + 0 + w_{02}^{(L)} + 0 + 0 + 0" in eqs
    compact = " + ".join(rf"\delta_{{{j}}}^{{(L)}} w_{{{j}2}}^{{(L)}}" for j in range(4))
    assert rf"\frac{{\partial C_{{0}}}}{{\partial a_{{2}}^{{(L-1)}}}} = {compact}" in eqs
    for j in range(4):
        assert (rf"\delta_{{{j}}}^{{(L)}} = 2 \left(a_{{{j}}}^{{(L)}} - y_{{{j}}}\right) "
                rf"g^{{\prime (L)}}\left(z_{{{j}}}^{{(L)}}\right)") in eqs
    expanded = " + ".join(
        rf"2 \left(a_{{{j}}}^{{(L)}} - y_{{{j}}}\right) g^{{\prime (L)}}\left(z_{{{j}}}^{{(L)}}"
        rf"\right) w_{{{j}2}}^{{(L)}}" for j in range(4))
    assert eqs[-2] == rf"\frac{{\partial C_{{0}}}}{{\partial a_{{2}}^{{(L-1)}}}} = {expanded}"


def test_hidden_weight_recurses_into_the_backward_step(tutorial):
    body = derivation_document(derive(tutorial, "w_{22}^{(L-1)}"), "latex")
    assert r"\subsection*{The backward step}" in body
    assert r"\section*{Derivation of $\frac{\partial C_{0}}{\partial a_{2}^{(L-1)}}$}" not in body
    assert r"\subsection*{Derivation of $\frac{\partial C_{0}}{\partial a_{2}^{(L-1)}}$}" in body


def test_concrete_activation_is_shown_then_specialised():
    spec = Spec.from_dict({"layers": [2, 3, 1], "activation": "sigmoid", "loss": "sse"})
    body = derivation_document(derive(spec, "w_{00}^{(L)}"), "latex")
    eqs = equations(body)
    assert (r"\sigma^{\prime}\left(z\right) = \frac{e^{- z}}{\left(1 + e^{- z}\right)^{2}} = "
            r"\left(1 - \sigma\left(z\right)\right) \sigma\left(z\right)") in eqs
    assert eqs[-2] == (r"\frac{\partial C_{0}}{\partial w_{00}^{(L)}} = 2 \left(1 - "
                       r"a_{0}^{(L)}\right) \left(a_{0}^{(L)} - y_{0}\right) a_{0}^{(L-1)} "
                       r"a_{0}^{(L)}")


def test_softmax_shows_the_full_jacobian_sum():
    spec = Spec.from_toml(EXAMPLES / "softmax_ce.toml")
    body = derivation_document(derive(spec, "w_{10}^{(L)}"), "latex")
    eqs = equations(body)
    assert eqs[0].startswith(r"\frac{\partial C_{0}}{\partial w_{10}^{(L)}} = \sum_{i=0}^{2} "
                             r"\frac{\partial C_{0}}{\partial a_{i}^{(L)}} \cdot "
                             r"\frac{\partial a_{i}^{(L)}}{\partial z_{1}^{(L)}}")
    assert r"a_{0}^{(L)} = \operatorname{softmax}_{0}\left(z^{(L)}\right)" in eqs
    assert (r"\frac{\partial a_{i}^{(L)}}{\partial z_{m}^{(L)}} = \left([i = m] - "
            r"a_{m}^{(L)}\right) a_{i}^{(L)}") in eqs
    assert r"C_{0} = - \log{\left(a_{0}^{(L)} \right)} y_{0} - \log{" in body
    assert sum(" + " in e and r"\cdot" in e and "= " in e for e in eqs) >= 1


def test_markdown_uses_dollar_blocks_and_html_is_mathml_without_scripts(tutorial):
    d = derive(tutorial, "w_{12}^{(L)}")
    md = derivation_document(d, "markdown", standalone=True)
    assert md.startswith("# Backpropagation in the network tutorial")
    assert md.count("\n$$\n") % 2 == 0 and md.count("$$") >= 20
    assert r"\begin{" not in md
    html = derivation_document(d, "html", standalone=True)
    assert html.startswith("<!DOCTYPE html>") and "<math" in html and "<svg" in html
    assert "<script" not in html and "http://" not in html.replace(
        "http://www.w3.org/", "") and "https://" not in html


def test_text_format_is_unchanged_by_the_flavors(tutorial):
    out = str(derive(tutorial, "w_{12}^{(L)}"))
    assert "dC_0/dw_12^(L) = (dC_0/da_1^(L)) * (da_1^(L)/dz_1^(L)) * (dz_1^(L)/dw_12^(L))" in out
    assert "= 0 + 2*(a_1^(L) - y_1) + 0 + 0" in out


def test_wide_layers_are_elided_not_printed_in_full():
    spec = Spec.from_dict({"layers": [40, 30, 3], "activation": "sigmoid"})
    eqs = equations(derivation_document(derive(spec, "w_{1,25}^{(L-1)}"), "latex"))
    z_def = next(e for e in eqs if e.startswith("z_{1}^{(L-1)} ="))
    assert r"\cdots" in z_def and r"w_{1,25}^{(L-1)} x_{25}" in z_def
    assert z_def.count("+") < 10


# ------------------------------------------------------------------ matrix form
def test_matrix_form_of_the_tutorial_network(tutorial):
    form = matrix_form(backprop(tutorial))
    rows = [(s.step, s.layer, text(s.lhs, 3), text(s.rhs, 3)) for s in form.steps]
    assert rows[:5] == [
        ("loss", 3, "dC/dA^(L)", "(2*(A^(L) - Y))/n"),
        ("output delta", 3, "Delta^(L)", "dC/dA^(L) o g'^(L)(Z^(L))"),
        ("weights", 3, "dC/dW^(L)", "Delta^(L)^T*A^(L-1)"),
        ("inputs", 3, "dC/dA^(L-1)", "Delta^(L)*W^(L)"),
        ("delta", 3, "Delta^(L-1)", "dC/dA^(L-1) o g'^(L-1)(Z^(L-1))"),
    ]
    assert rows[-1] == ("weights", 1, "dC/dW^(L-2)", "Delta^(L-2)^T*X")
    weights = form.steps[2]
    assert latex(weights.rhs, 3) == r"\Delta^{(L)\top} A^{(L-1)}"
    assert weights.shape == (4, 6) and weights.checked >= 12
    assert latex(weights.entry, 3) == r"\sum_{b=0}^{n - 1} A^{(L-1)}_{b,2} \Delta^{(L)}_{b,1}"


def test_matrix_form_with_biases_and_softmax_checks_every_entry():
    form = matrix_form(backprop(Spec.from_toml(EXAMPLES / "softmax_ce.toml")))
    steps = {(s.step, s.layer): s for s in form.steps}
    assert latex(steps["biases", 2].rhs, 2) == r"\mathbf{1}^{\top} \Delta^{(L)}"
    assert steps["biases", 2].checked == steps["biases", 2].entries == 3
    assert text(steps["output delta", 2].rhs, 2) == "dC/dA^(L)*J^(L)"
    assert all(s.checked > 0 for s in form.steps)


def test_matrix_form_check_catches_a_wrong_scalar_result(monkeypatch, tutorial):
    from symprop.derivation import Backprop

    original = Backprop.gradient

    def wrong(self, node):
        value = original(self, node)
        return 2 * value if node.kind == "w" and node.layer == 2 else value
    monkeypatch.setattr(Backprop, "gradient", wrong)
    with pytest.raises(AssertionError, match="weights of layer 2"):
        matrix_form(backprop(Spec.from_dict({"layers": [2, 3, 3, 2]})))


# ------------------------------------------------------------------- diagrams
def test_diagram_highlights_the_path_from_the_loss_to_the_weight():
    out = diagram((3, 6, 6, 4), Node("w", 3, 1, 2))
    lit = [(e.source, e.target) for e in out.edges if e.highlighted]
    assert sorted(lit) == [("n2_2", "n3_1"), ("n3_1", "loss")]
    hidden = diagram((3, 6, 6, 4), Node("w", 2, 2, 2))
    lit = {(e.source, e.target) for e in hidden.edges if e.highlighted}
    assert ("n1_2", "n2_2") in lit and len(lit) == 1 + 4 + 4
    assert all(s == "n2_2" for s, t in lit if t.startswith("n3"))


def test_wide_layers_keep_the_nodes_on_the_path():
    out = diagram((784, 256, 10), Node("w", 1, 100, 300))
    shown = {n.key for n in out.nodes}
    assert {"n0_300", "n1_100", "n0_0", "n0_783"} <= shown and len(shown) < 30
    assert any(n.ellipsis for n in out.nodes)


# ------------------------------------------------------------ pdflatex, Chromium
def compile_ok(tex: str) -> bytes:
    pdf = compile_pdf(tex)
    assert pdf.startswith(b"%PDF")
    return pdf


@pytest.mark.needs("pdflatex")
@pytest.mark.parametrize("example, targets", [
    ("tutorial", ["w_{12}^{(L)}", "a_{2}^{(L-1)}", "w_{22}^{(L-1)}", "x_0"]),
    ("seed001", ["w_{00}^{(1)}", "b_0^(L)", "z_1^(1)"]),
    ("softmax_ce", ["w_{10}^{(L)}", "b_2^(L-1)"]),
    ("custom", ["w_{01}^{(1)}", "a_1^(1)"]),
])
def test_every_standalone_latex_derivation_compiles(example, targets):
    engine = backprop(Spec.from_toml(EXAMPLES / f"{example}.toml"))
    for target in targets:
        compile_ok(derivation_document(engine.derive(target), "latex", standalone=True))


@pytest.mark.needs("pdflatex")
@pytest.mark.parametrize("example", ARCHITECTURES)
def test_reports_in_every_format(tmp_path, example):
    spec = Spec.from_toml(EXAMPLES / f"{example}.toml")
    for suffix in (".tex", ".pdf", ".html", ".md"):
        path = write_report(spec, tmp_path / f"report{suffix}")
        assert path.stat().st_size > 2000
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")
    tex = (tmp_path / "report.tex").read_text()
    for section in ("Notation", "The network", "The loss as a composition of functions",
                    "The backpropagation equations", "Derivations, one weight per layer",
                    "The matrix form"):
        assert rf"\section*{{{section}}}" in tex
    assert r"\begin{tikzpicture}" in tex


def test_report_states_the_general_equations(tutorial):
    r = build_report(tutorial).context
    assert r["equations"][0] == (r"\delta_{j}^{(L)} = \frac{\partial C_{0}}{\partial "
                                 r"a_{j}^{(L)}} g^{\prime (L)}\left(z_{j}^{(L)}\right)")
    assert r["equations"][1] == (r"\delta_{k}^{(L-1)} = \left(\sum_{j=0}^{3} \delta_{j}^{(L)} "
                                 r"w_{jk}^{(L)}\right) g^{\prime (L-1)}\left(z_{k}^{(L-1)}"
                                 r"\right)")
    assert r["composition"].startswith(r"C_{0}\left(a^{(L)}\left(z^{(L)}\left(w^{(L)}, "
                                       r"a^{(L-1)}")


@pytest.mark.needs("pdflatex")
def test_hostile_spec_name_is_escaped_in_latex(tmp_path):
    spec = Spec.from_dict({"name": r"\input{/etc/passwd}\write18{ls}$x^_%&#~", "layers": [2, 2]})
    tex = build_report(spec).render("latex")
    assert r"\input{" not in tex and r"\write18" not in tex
    compile_ok(tex)



MEASURE = """<script>
const frac = document.querySelector('mfrac');
const num = frac.firstElementChild.getBoundingClientRect();
const den = frac.lastElementChild.getBoundingClientRect();
const svg = document.querySelector('svg.network').getBoundingClientRect();
document.body.setAttribute('data-check', JSON.stringify({
  stacked: den.top >= num.bottom - 1, frac_height: frac.getBoundingClientRect().height,
  svg_width: svg.width, svg_height: svg.height,
  maths: document.querySelectorAll('math').length}));
</script>"""


@pytest.mark.needs("chromium")
def test_html_report_renders_formulas_and_the_diagram_in_chromium(tmp_path, tutorial):
    chromium = shutil.which("chromium")
    page = tmp_path / "report.html"
    write_report(tutorial, page)
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    run = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                         timeout=120, check=False)
    found = re.search(r"data-check=\"([^\"]*)\"", run.stdout)
    assert found, run.stderr[-2000:]
    check = json.loads(found.group(1).replace("&quot;", '"'))
    # MathML laid out: a fraction's numerator sits above its denominator, taller than a line
    assert check["stacked"] and check["frac_height"] > 25
    assert check["svg_width"] > 300 and check["svg_height"] > 200 and check["maths"] > 50
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile2'}",
                    f"--screenshot={shot}", "--window-size=1000,1400", page.as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 30_000


# ------------------------------------------------------------------ CLI, Jupyter
@pytest.mark.parametrize("fmt, marker", [("latex", r"\begin{equation*}"), ("markdown", "$$"),
                                         ("html", "<math"), ("text", "Chain rule")])
def test_cli_derive_formats(capsys, fmt, marker):
    assert main(["derive", str(EXAMPLES / "tutorial.toml"), "--wrt", "w_{12}^{(L)}",
                 "--format", fmt]) == 0
    assert marker in capsys.readouterr().out


@pytest.mark.needs("pdflatex")
def test_cli_standalone_latex_compiles_and_report_writes_pdf(tmp_path, capsys):
    out = tmp_path / "d.tex"
    assert main(["derive", str(EXAMPLES / "softmax_ce.toml"), "--wrt", "w_{01}^{(1)}",
                 "--format", "latex", "--standalone", "-o", str(out)]) == 0
    compile_ok(out.read_text())
    assert out.read_text().startswith(r"\documentclass")
    pdf = tmp_path / "r.pdf"
    assert main(["report", str(EXAMPLES / "seed001.toml"), "-o", str(pdf)]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")


def test_cli_report_bad_suffix_and_missing_pdflatex(tmp_path, capsys, monkeypatch):
    assert main(["report", str(EXAMPLES / "seed001.toml"), "-o", str(tmp_path / "r.docx")]) == 2
    assert "End the output name in .tex, .pdf, .html or .md" in capsys.readouterr().err
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert main(["report", str(EXAMPLES / "seed001.toml"), "-o", str(tmp_path / "r.pdf")]) == 2
    err = capsys.readouterr().err
    assert "needs pdflatex" in err and "texlive-latex-base" in err
    assert not list(tmp_path.iterdir())


def test_jupyter_reprs(tutorial):
    d = derive(tutorial, "w_{12}^{(L)}")
    assert d._repr_latex_() == (r"$\displaystyle \frac{\partial C_{0}}{\partial w_{12}^{(L)}} = "
                                r"2 \left(a_{1}^{(L)} - y_{1}\right) g^{\prime (L)}\left("
                                r"z_{1}^{(L)}\right) a_{2}^{(L-1)}$")
    assert "$$" in d._repr_markdown_()
    form = matrix_form(backprop(tutorial))
    assert form._repr_latex_().startswith(r"$\begin{aligned}")
    report = build_report(Spec.from_dict({"layers": [2, 2]}))
    assert "<math" in report._repr_html_() and "$$" in report._repr_markdown_()


def test_specialised_result_equals_the_generic_one_numerically():
    spec = Spec.from_dict({"layers": [2, 3, 2], "activation": "tanh"})
    d = derive(spec, "w_{01}^{(L-1)}")
    g = d.graph
    explicit = d.result.replace(lambda e: hasattr(e, "explicit") and getattr(
        e, "definition", None) is not None, lambda e: e.explicit(e.args[0]))
    a_of_z = {g.a[l][j]: sympy.tanh(g.z[l][j]) for l in (1, 2) for j in range(g.widths[l])}
    point = {s: sympy.Rational(k + 1, 7) for k, s in enumerate(sorted(
        (d.specialised().free_symbols | explicit.free_symbols), key=str))}
    lhs = d.specialised().xreplace(a_of_z).xreplace(point)
    rhs = explicit.xreplace(point)
    assert abs(sympy.N(lhs - rhs, 30)) < 1e-25


def test_written_files_get_the_usual_mode_not_a_private_one(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        path = write_report(Spec.from_dict({"layers": [2, 2]}), tmp_path / "r.md")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
