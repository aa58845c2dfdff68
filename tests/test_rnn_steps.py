"""rnn derivations through time (derive, report): the exact LaTeX of one u_jk's result and of
the recursion, each result proven (SymPy's diff of C_0 composed through the unrolled layer,
autodiff of the spec's layer, 30-digit differences without either), a wrong result refused,
random rnn stacks, the batch form, and the report with its unrolled drawing compiled."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy
from conftest import need
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_rnn import rnn_spec

from symprop.cli import main
from symprop.errors import SpecError
from symprop.graph import build_graph
from symprop.importing import toml_text
from symprop.letters_derivation import Autodiff, letter_derivation, prove
from symprop.report import compile_pdf
from symprop.self_check import SelfCheckFailed
from symprop.spec import Spec

DIGITS = str(Path(__file__).parent.parent / "examples" / "digits_rnn.toml")


def test_the_latex_of_one_u_jk_and_of_its_recursion():
    spec = rnn_spec(((3, "tanh", True, False),), steps=3, n0=2)
    d = letter_derivation(spec, "u_{12}^{(1)}")
    assert len(prove(d)) == 2
    assert f"{d.latex(d.lhs)} = {d.latex(d.result)}" == (
        r"\frac{\partial C_{0}}{\partial u_{12}^{(1)}} = \delta_{2,1}^{(1)} h_{1,2}^{(1)} + "
        r"\delta_{3,1}^{(1)} h_{2,2}^{(1)}")
    unrolled = d.steps[5].equations
    assert [d.latex(e[0]) + " = " + d.latex(e[1]) for e in unrolled[:2]] == [
        (r"\delta_{3,1}^{(1)} = \frac{\partial C_{0}}{\partial a_{1}^{(1)}} "
        r"\tanh^{\prime}\left(z_{3,1}^{(1)}\right)"),
        (r"\delta_{2,1}^{(1)} = \left(\sum_{i=0}^{2} \delta_{3,i}^{(1)} u_{i1}^{(1)}\right) "
        r"\tanh^{\prime}\left(z_{2,1}^{(1)}\right)")]
    words = d.context("text")["steps"][1]["words"]
    assert words.startswith("u_{12}^(1) is one recurrent weight, shared by every step")


def test_a_sequence_passes_back_every_step_and_stacked_layers_derive():
    spec = rnn_spec(((2, "relu", True, True), (2, "tanh", False, False)), steps=3, n0=1)
    d = letter_derivation(spec, "w_{01}^{(2)}")  # layer 2 reads h^(1)_t
    assert "h_{3,1}^{(1)}" in d.latex(d.result) and len(prove(d)) == 2
    d = letter_derivation(spec, "b_1^(1)")
    step = d.steps[4].equations[0]
    assert d.text(step[1]) == ("dC_0/da_{t,j}^(1) + (sum_(i=0)^(1) "
                               "delta_{t + 1,i}^(1)*u_{ij}^(1))")
    assert len(prove(d)) == 2


@pytest.mark.parametrize("name", ["u_{10}^{(1)}", "w_{10}^{(1)}", "b_1^(1)"])
def test_a_result_that_differs_from_the_truth_is_refused(name):
    spec = rnn_spec(((2, "tanh", True, True),), steps=3, n0=1)  # small: composed as it is
    d = letter_derivation(spec, name)
    wrong = d.result.func(*d.result.args[1:]) if d.result.is_Add else 2 * d.result
    assert [check(wrong) for _, check in d.proofs] == [False, False]
    d.result = wrong
    with pytest.raises(SelfCheckFailed, match="differs from SymPy's diff of C_0"):
        prove(d)


def test_without_jax_or_pytorch_30_digit_differences_hold_the_result():
    spec = rnn_spec(((2, "tanh", True, False),), steps=2, n0=1)
    config = spec.stack[0]
    node = build_graph(spec).resolve("u_{01}^{(1)}")
    d = config.letter_derivation(node, spec, Autodiff(None))
    what, check = d.proofs[-1]
    assert what.startswith("30-digit differences") and check(d.result)
    assert not check(d.result * 1.001)
    assert len(config.letter_matrix_form(spec, Autodiff(None)).prove()) == 1


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_rnn_layers_derivations_are_proven(data):
    """An rnn stack as users write it: 1-2 layers, steps 1-4, widths 1-3, tanh or relu,
    bias, sequence; one weight of one layer."""
    count = data.draw(st.integers(1, 2))
    layers = tuple((data.draw(st.integers(1, 3)), data.draw(st.sampled_from(["tanh", "relu"])),
                    data.draw(st.booleans()), i < count - 1 or data.draw(st.booleans()))
                   for i in range(count))
    if layers[-1][3]:
        layers += ((1, "tanh", False, False),)
    spec = rnn_spec(layers, steps=data.draw(st.integers(1, 4)), n0=data.draw(st.integers(1, 2)))
    l = data.draw(st.integers(1, len(layers)))
    width, _, bias, _ = layers[l - 1]
    kinds = ["u", "w"] + (["b"] if bias else [])
    kind = data.draw(st.sampled_from(kinds))
    j = data.draw(st.integers(0, width - 1))
    k = data.draw(st.integers(0, (width if kind == "u" else spec.stack[l - 1].n_in) - 1))
    name = f"b_{j}^({l})" if kind == "b" else f"{kind}_{{{j},{k}}}^{{({l})}}"
    d = letter_derivation(spec, name)
    assert len(prove(d)) == 2
    if d.result != 0 and layers[l - 1][1] == "tanh":  # smooth: a doubled result is wrong
        assert not d.proofs[1][1](2 * d.result), name  # the proof can fail
    form = spec.stack[l - 1].letter_matrix_form(spec, Autodiff("jax"))  # report's batch form
    assert len(prove(form)) == 1


def test_the_batch_form_of_backpropagation_through_time_is_proven():
    spec = rnn_spec(((3, "relu", True, True), (2, "tanh", True, False)), steps=4, n0=2)
    assert [c.kind for c in spec.stack] == ["rnn", "rnn", "dense"]
    for config in spec.stack[:2]:
        d = config.letter_matrix_form(spec, Autodiff("torch"))
        assert prove(d) == ["torch autodiff of the spec's layer at a random batch"]
        (var, low, high), check = d.result.limits[0], d.proofs[0][1]
        assert low == 2 and check(d.result)
        assert not check(d.result.func(d.result.function, (var, 3, high)))  # t = 2 left out
    assert d.latex(d.steps[0].equations[1][1]) == (
        r"\left(\Delta_{t + 1}^{(2)} U^{(2)}\right) \circ \tanh^{\prime}\left(Z_{t}^{(2)}\right)")


@pytest.mark.needs("pdflatex")
def test_the_report_draws_the_unrolled_layer_and_compiles(tmp_path):
    assert main(["report", DIGITS, "-o", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "Layer 1 unrolled over its 8 steps" in html and html.count('class="u"') == 6
    assert "U^T delta_8" in html and "h_0 = 0" in html
    assert main(["report", DIGITS, "-o", str(tmp_path / "r.pdf")]) == 0
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    tex = tmp_path / "d.tex"
    assert main(["derive", DIGITS, "--wrt", "u_{01}^{(1)}", "--format", "latex",
                 "--standalone", "-o", str(tex)]) == 0
    assert compile_pdf(tex.read_text()).startswith(b"%PDF")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_each_result_holds_against_jax_and_pytorch(backend):
    need(backend)
    spec = rnn_spec(((3, "relu", True, True), (2, "tanh", True, False)), steps=3, n0=2)
    graph = build_graph(spec)
    for name in ["u_{21}^{(1)}", "w_{11}^{(1)}", "b_2^(1)", "u_{10}^{(2)}", "w_{02}^{(2)}"]:
        node = graph.resolve(name)
        d = spec.stack[node.layer - 1].letter_derivation(node, spec, Autodiff(backend))
        assert d.prove()[-1] == (f"{backend} autodiff of the spec's layer at three random "
                                 "sequences")


def test_what_a_review_found_stays_fixed(tmp_path, capsys):
    """One step, a spec's own activation, the generic g, relu's dead nodes, a bias's result,
    two rnn layers in one report (their drawings and names)."""
    one = rnn_spec(((2, "tanh", True, False),), steps=1, n0=2)
    d = letter_derivation(one, "u_{01}^{(1)}")
    assert d.text(d.result) == "0" and len(prove(d)) == 2  # U never acts with one step
    assert prove(one.stack[0].letter_matrix_form(one, Autodiff("jax")))
    own = Spec(input=2, steps=3, loss="sse", name="own", activations={"cube": "x**3 + x"},
               stack=[{"kind": "rnn", "width": 2, "activation": "cube"},
                      {"kind": "dense", "width": 1}])
    assert len(prove(letter_derivation(own, "u_{10}^{(1)}"))) == 2
    generic = Spec(input=2, steps=2, loss="sse", name="g",
                   stack=[{"kind": "rnn", "width": 2, "activation": "g"},
                          {"kind": "dense", "width": 1, "activation": "identity"}])
    with pytest.raises(SpecError, match="the generic activation g has none"):
        letter_derivation(generic, "w_{00}^{(1)}")
    # relu: a wrong factor is refused by the autodiff proof alone (3 nodes: not small)
    relu = rnn_spec(((3, "relu", False, True), (2, "tanh", True, False)), steps=3, n0=2)
    for name in ["u_{00}^{(1)}", "u_{21}^{(1)}", "w_{11}^{(1)}"]:
        d = letter_derivation(relu, name)
        assert not d.proofs[1][1](5 * d.result) and not d.proofs[1][1](sympy.S.Zero)
    d = letter_derivation(relu, "b_1^(2)")
    assert d.text(d.result) == "delta_{1,1}^(2) + delta_{2,1}^(2) + delta_{3,1}^(2)"
    path, two = tmp_path / "two.html", tmp_path / "two.toml"
    two.write_text(toml_text(relu.to_dict()))
    assert main(["report", str(two), "-o", str(path)]) == 0
    html = path.read_text()
    assert 'id="arrow-1"' in html and 'id="arrow-2"' in html
    assert ">h^(1)_2</text>" in html and ">h^(2)_2</text>" in html
