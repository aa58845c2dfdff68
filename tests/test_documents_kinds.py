"""Derivation documents and reports for every layer kind: the exact LaTeX of the steps a
textbook shows (a layernorm's gamma, a residual node's two paths, a custom formula's terms),
pdflatex on a standalone derivation of every kind and on the residual example's report."""

from pathlib import Path

import pytest
from test_layers import AROUND, spec_around

from symprop import Spec, backprop
from symprop.documents import derivation_document, render_derivation
from symprop.printing.context import derivation_context
from symprop.report import build_report, compile_pdf, write_report

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _latex(kind, name):
    return derivation_context(backprop(spec_around(kind)).derive(name), "latex")


def test_a_layernorm_gamma_is_its_definition_the_factor_and_the_combination():
    d = _latex("layernorm", "gamma_1^(2)")
    assert d["chain_general"] == (r"\frac{\partial C_{0}}{\partial a_{1}^{(L-1)}} \cdot "
                                  r"\frac{\partial a_{1}^{(L-1)}}{\partial \gamma_{1}^{(L-1)}}")
    factor = d["factors"][1]
    assert factor["definition"] == (r"a_{1}^{(L-1)} = \beta_{1}^{(L-1)} + \gamma_{1}^{(L-1)} "
                                    r"\hat{x}_{1}^{(L-1)}")
    assert factor["value"] == r"\hat{x}_{1}^{(L-1)}"
    assert d["result"] == (r"\left(\delta_{0}^{(L)} w_{01}^{(L)} + \delta_{1}^{(L)} "
                           r"w_{11}^{(L)}\right) \hat{x}_{1}^{(L-1)}")
    assert d["definitions"][2] == (r"\hat{x}_{j}^{(L-1)} = \frac{a_{j}^{(L-2)} - "
                                   r"\mu^{(L-1)}}{\sigma^{(L-1)}}")


def test_a_node_feeding_a_layernorm_sums_over_its_jacobian():
    d = _latex("layernorm", "a_1^(1)")
    assert d["chain_general"].startswith(r"\sum_{j=0}^{2} \frac{\partial C_{0}}{\partial "
                                         r"a_{j}^{(L-1)}} \cdot \frac{\partial a_{j}^{(L-1)}}"
                                         r"{\partial a_{1}^{(L-2)}}")
    # the layer's width is its number (3 here), as in mu's definition: n is the batch size
    assert d["jacobians"] == [
        (r"\frac{\partial a_{j}^{(L-1)}}{\partial a_{m}^{(L-2)}} = \frac{\left([j = m] - "
        r"\frac{1 + \hat{x}_{j}^{(L-1)} \hat{x}_{m}^{(L-1)}}{3}\right) \gamma_{j}^{(L-1)}}"
        r"{\sigma^{(L-1)}}")]
    assert d["iverson"] == [{"bracket": "[j = m]", "i": "j", "j": "m"}]


def test_a_residual_node_shows_the_two_paths_and_their_sum():
    d = _latex("add", "a_1^(1)")
    assert d["chain_general"] == (
        r"\sum_{j=0}^{2} \frac{\partial C_{0}}{\partial a_{j}^{(L-2)}} \cdot \frac{\partial "
        r"a_{j}^{(L-2)}}{\partial z_{j}^{(L-2)}} \cdot \frac{\partial z_{j}^{(L-2)}}{\partial "
        r"a_{1}^{(L-3)}} + \frac{\partial C_{0}}{\partial a_{1}^{(L-1)}} \cdot \frac{\partial "
        r"a_{1}^{(L-1)}}{\partial a_{1}^{(L-3)}}")
    assert [(b["layer"], b["terms"]) for b in d["branches"]] == [("L-2", 3), ("L-1", 1)]
    assert d["result"] == (r"\frac{\partial C_{0}}{\partial a_{1}^{(L-1)}} + \delta_{0}^{(L-2)} "
                           r"w_{01}^{(L-2)} + \delta_{1}^{(L-2)} w_{11}^{(L-2)} + "
                           r"\delta_{2}^{(L-2)} w_{21}^{(L-2)}")
    text = render_derivation(backprop(spec_around("add")).derive("a_1^(1)"))
    assert "Chain rule (a_1^(L-3) feeds 2 layers: the paths through each, added):" in text
    assert "Through layer L-1 (one path), factor by factor:" in text


def test_a_custom_parameter_expands_the_formula_term_by_term():
    factor = _latex("custom", "c_12^(2)")["factors"][1]
    assert factor["inner"] == {
        "u": "u", "outer": r"a_{1}^{(L-1)} = e^{- s_{1}^{(L-1)} u}",
        "sum": (r"u = \left(a_{0}^{(L-2)} - c_{10}^{(L-1)}\right)^{2} + \left(a_{1}^{(L-2)} "
                r"- c_{11}^{(L-1)}\right)^{2} + \left(a_{2}^{(L-2)} - c_{12}^{(L-1)}\right)^{2}"),
        "through": r"\frac{\partial a_{1}^{(L-1)}}{\partial u} = - a_{1}^{(L-1)} s_{1}^{(L-1)}"}
    assert factor["term_derivatives"] == r"0 + 0 + 2 \left(c_{12}^{(L-1)} - a_{2}^{(L-2)}\right)"
    assert factor["vanishing"] == 2
    assert factor["value"] == (r"2 \left(a_{2}^{(L-2)} - c_{12}^{(L-1)}\right) a_{1}^{(L-1)} "
                               r"s_{1}^{(L-1)}")


def test_every_nested_backward_step_is_worked_out_once():
    text = render_derivation(backprop(Spec.from_toml(EXAMPLES / "residual.toml"))
                             .derive("a_1^(1)"))
    titles = [line for line, under in zip(text.splitlines(), text.splitlines()[1:])
              if under and set(under) == {"="}]
    # the first path through the layernorm, then the skip connection's own step
    assert titles == ["dC_0/da_1^(L-4)", "dC_0/da_0^(L-3)", "dC_0/da_0^(L-2)",
                      "dC_0/da_0^(L-1)", "dC_0/da_1^(L-2)"]


def _targets(kind):
    graph = backprop(spec_around(kind)).graph
    params = graph.parameters()
    return [params[0], params[-1], graph.output(1, 0)]


@pytest.mark.needs("pdflatex")
@pytest.mark.parametrize("kind", AROUND)
def test_a_standalone_derivation_of_every_kind_compiles(kind):
    engine = backprop(spec_around(kind))
    for target in _targets(kind):
        tex = derivation_document(engine.derive(target), "latex", standalone=True)
        assert compile_pdf(tex).startswith(b"%PDF")


@pytest.mark.needs("pdflatex")
def test_the_residual_report_compiles_and_covers_every_kind(tmp_path):
    spec = Spec.from_toml(EXAMPLES / "residual.toml")
    pdf = write_report(spec, tmp_path / "residual.pdf")
    assert pdf.read_bytes().startswith(b"%PDF")


def test_the_residual_report_states_every_layer_and_checks_its_matrix_form():
    report = build_report(Spec.from_toml(EXAMPLES / "residual.toml"))
    tex = report.render("latex")
    for piece in (r"\hat{x}_{j}^{(L-3)} = \frac{a_{j}^{(L-4)} - \mu^{(L-3)}}{\sigma^{(L-3)}}",
                  r"a_{j}^{(L-2)} = a_{j}^{(L-4)} + a_{j}^{(L-3)}", r"to[bend left=30]",
                  r"\left.\frac{\partial C}{\partial A^{(L-4)}}\right|_{(L-2)}",
                  r"\gamma_{j}^{(l)}, \beta_{j}^{(l)}", "layernorm, eps 1e-05"):
        assert piece in tex, piece
    steps = {(s.step, s.layer) for s in report.matrix.steps}
    assert {("parameters", 2), ("inputs", 2), ("inputs", 3), ("gradient", 1),
            ("parameters", 4), ("delta", 1)} <= steps
    assert all(s.checked > 0 for s in report.matrix.steps)


@pytest.mark.parametrize("fmt", ["html", "markdown", "text"])
def test_every_kind_renders_in_every_format(fmt):
    for kind in AROUND:
        engine = backprop(spec_around(kind))
        for target in _targets(kind):
            out = derivation_document(engine.derive(target), fmt)
            assert len(out) > 500, (kind, target)


@pytest.mark.parametrize("kind", AROUND)
def test_the_matrix_form_of_every_kind_is_checked_entry_by_entry(kind):
    """Seed 001's batch form around each kind: every layer has its steps, and each step was
    compared entry by entry with the engine's per-sample results (a mismatch raises)."""
    from symprop.matrix import matrix_form

    spec = spec_around(kind)
    form = matrix_form(backprop(spec))
    assert {s.layer for s in form.steps} >= set(range(1, spec.L + 1)) - {
        l for l, c in enumerate(spec.stack, 1) if not c.parameters(spec.layers)
        and l == spec.L}
    assert form.steps and all(s.checked > 0 for s in form.steps), kind
