"""What a derivation prints, in the reader's notation: the Kronecker delta as [j = m] (never
SymPy's KroneckerDelta), n only for the batch size (a layer's width is its number), and the
layers as the user spelt them (a name typed with a layer number is answered with numbers)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sympy
from test_custom_formulas import L2

from symprop import Spec, backprop
from symprop.cli import main
from symprop.documents import derivation_document, render_derivation
from symprop.printing.latex import latex
from symprop.printing.text import text

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

@pytest.fixture(scope="module")
def residual():
    return backprop(Spec.from_toml(EXAMPLES / "residual.toml"))


def test_the_kronecker_delta_prints_as_a_bracket_in_text_and_latex():
    j, m = sympy.symbols("j m", integer=True)
    assert text(sympy.KroneckerDelta(j, m)) == "[j = m]"
    assert latex(sympy.KroneckerDelta(j, m)) == "[j = m]"


def test_a_layernorm_gamma_in_text_has_no_kronecker_delta_and_no_width_n(residual):
    out = render_derivation(residual.derive("gamma_0^(2)"))
    assert "KroneckerDelta" not in out
    assert ("    da_j^(L-3)/da_m^(L-4) = ([j = m] - (1 + xhat_j^(L-3)*xhat_m^(L-3))/8)"
            "*gamma_j^(L-3)/sigma^(L-3)\n"
            "  ([j = m] is 1 when j = m and 0 otherwise.)\n") in out
    # the width is 8 there as in mu's definition; n is the batch, and said to be
    assert "    mu^(L-3) = sum_(k=0)^(7) [ a_k^(L-4) ]/8\n" in out
    assert not re.search(r"[^(1]/n\b", out), "n stands for a width somewhere"
    assert ("Over a batch of n samples:\n"
            "  dC/dgamma_0^(L-3) = (1/n) sum_(i=0)^(n-1) dC_i/dgamma_0^(L-3)\n") in out
    # a residual sum's Jacobian and softmax's
    assert "    da_j^(L-2)/da_m^(L-3) = [j = m]\n" in out
    assert ("    da_i^(L)/dz_m^(L) = ([i = m] - a_m^(L))*a_i^(L)\n"
            "  ([i = m] is 1 when i = m and 0 otherwise.)\n") in out


def test_a_custom_layers_jacobian_prints_the_bracket():
    engine = backprop(Spec.from_toml_string(L2))  # its Jacobian: a delta beside a sum
    out = render_derivation(engine.derive("a_0^(1)"))
    assert "KroneckerDelta" not in out
    assert "    da_j^(L-1)/da_m^(L-2) = [j = m]*s_j^(L-1)/sqrt(1 + sum_(k=0)^(3) [ " in out
    assert "  ([j = m] is 1 when j = m and 0 otherwise.)\n" in out


def test_the_latex_document_says_what_the_bracket_and_n_are(residual):
    body = derivation_document(residual.derive("gamma_0^(2)"), "latex")
    assert "KroneckerDelta" not in body
    assert (r"\frac{\partial a_{j}^{(L-3)}}{\partial a_{m}^{(L-4)}} = \frac{\left([j = m] - "
            r"\frac{1 + \hat{x}_{j}^{(L-3)} \hat{x}_{m}^{(L-3)}}{8}\right) \gamma_{j}^{(L-3)}}"
            r"{\sigma^{(L-3)}}") in body
    assert "$[j = m]$ is 1 when $j = m$ and 0 otherwise." in body
    assert "The loss $C$ of a batch of $n$ samples is the mean of the per-sample losses" in body


@pytest.mark.parametrize("fmt", ["text", "latex", "markdown", "html"])
def test_no_document_of_any_example_prints_kronecker_delta(fmt):
    for name in ("residual", "softmax_ce", "gated", "rbf"):
        engine = backprop(Spec.from_toml(EXAMPLES / f"{name}.toml"))
        for target in ("a_0^(1)", engine.graph.parameters()[-1]):
            out = derivation_document(engine.derive(target), fmt)
            assert "KroneckerDelta" not in out, (name, target)


# ------------------------------------------------ the user's spelling of layers
@pytest.mark.parametrize("typed, spelling", [
    ("w_00^(1)", "absolute"), ("w_{00}^{(1)}", "absolute"), ("w_{10,3}^{(2)}", "absolute"),
    (r"\gamma_3^{(2)}", "absolute"), ("a_2^3", "absolute"), ("w_12^(L-1)", "relative"),
    ("w_{12}^{(L)}", "relative"), ("x_0", "relative"), ("not a name", "relative")])
def test_the_spelling_of_a_typed_layer(typed, spelling):
    from symprop.notation import layer_spelling

    assert layer_spelling(typed) == spelling


def test_a_name_typed_with_its_layer_number_is_answered_with_numbers(capsys):
    tutorial = str(EXAMPLES / "tutorial.toml")
    assert main(["derive", tutorial, "--wrt", "w_00^(1)"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dC_0/dw_00^(1)\n==============\n")
    assert ("  dC_0/dw_00^(1) = (dC_0/da_0^(1)) * (da_0^(1)/dz_0^(1)) * (dz_0^(1)/dw_00^(1))"
            in out)
    assert "^(L" not in out and "(L-" not in out
    assert main(["derive", tutorial, "--wrt", "w_{00}^{(1)}", "--format", "latex"]) == 0
    out = capsys.readouterr().out
    assert r"\frac{\partial C_{0}}{\partial w_{00}^{(1)}}" in out and "(L" not in out
    # relative names stay relative, and --layers still chooses either way
    assert main(["derive", tutorial, "--wrt", "w_12^(L)"]) == 0
    assert capsys.readouterr().out.startswith("dC_0/dw_12^(L)\n")
    assert main(["derive", tutorial, "--wrt", "w_00^(1)", "--layers", "relative"]) == 0
    assert capsys.readouterr().out.startswith("dC_0/dw_00^(L-2)\n")
    assert main(["derive", tutorial, "--wrt", "w_12^(L)", "--layers", "absolute"]) == 0
    assert capsys.readouterr().out.startswith("dC_0/dw_12^(3)\n")


def test_check_answers_in_the_spelling_of_the_formula_or_wrt():
    from symprop import check_formula, tutorial_spec

    engine = backprop(tutorial_spec())
    out = check_formula(engine, "x_0", "w_00^(1)").render("text")
    assert out.startswith("WRONG: the formula is not dC_0/dw_00^(1)\n")
    assert "^(L" not in out
    # a layer letter is checked for numbered cases (l = 1): the names are numbered too
    general = check_formula(engine, "dC/dw_jk^(l) = 2*delta_j^(l) a_k^(l-1)").render("text")
    assert "Counterexample (random point 0, j = 0, k = 0, l = 1):" in general
    assert "^(L" not in general and "w_00^(2) = " in general
    # and relative stays relative
    relative = check_formula(engine, "a_2^(L-1)", "w_12^(L)").render("text")
    assert relative.startswith("WRONG: the formula is not dC_0/dw_12^(L)\n")
    assert "a_2^(L-1) = " in relative and "^(2)" not in relative


@pytest.mark.parametrize("activation", ["identity", "sigmoid", "tanh", "relu",
                                        "leaky_relu(0.2)", "softplus", "elu", "swish"])
def test_each_known_activation_identity_states_each_form_once(activation):
    """g'(z) = its derivative (= its form through the output): identity's g' is 1 both ways
    and once printed "id'(z) = 1 = 1"; every built-in activation's line, in a derivation
    of a one-layer network, has no side twice."""
    spec = Spec(layers=(2, 2), activation=[activation], loss="sse")
    document = text(backprop(spec).derive("w_{11}^{(1)}"))
    line = document.split("activations are known:\n", 1)[1].splitlines()[0].strip()
    sides = [side.strip() for side in line.split(" = ")]
    assert len(sides) == len(set(sides)) >= 2, line
