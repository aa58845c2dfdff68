"""batchnorm's derivations over the batch (derive, report): the exact LaTeX of dC/dgamma_j and
of the compact input gradient, each result proven (SymPy for every n and for a composed batch
of 2 and 3, autodiff of the spec's layer), a wrong result refused, bad names and --at exit 2,
and the report compiled by pdflatex."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy
from conftest import need
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symprop.cli import main
from symprop.errors import NameLookupError
from symprop.letters_derivation import Autodiff, letter_derivation, prove
from symprop.report import compile_pdf
from symprop.self_check import SelfCheckFailed
from symprop.spec import Spec

EXAMPLE = str(Path(__file__).parent.parent / "examples" / "batchnorm.toml")


def conv_spec(affine: bool) -> Spec:
    return Spec(input=[1, 3, 3], name="bnconv", loss="sse", stack=[
        {"kind": "conv2d", "channels": 2, "kernel": 2},
        {"kind": "batchnorm", "affine": affine, "eps": 0.01},
        {"kind": "flatten"}, {"kind": "dense", "width": 2}])


def test_the_latex_of_dc_dgamma_and_of_the_compact_input_gradient():
    spec = Spec.from_toml(EXAMPLE)
    d = letter_derivation(spec, "gamma_{1}^{(2)}")
    d.prove()
    assert f"{d.latex(d.lhs)} = {d.latex(d.result)}" == (
        r"\frac{\partial C}{\partial \gamma_{1}^{(2)}} = \sum_{i=0}^{n - 1} "
        r"\frac{\partial C}{\partial a_{i,1}^{(2)}} \hat{x}_{i,1}^{(2)}")
    d = letter_derivation(spec, "a_3^(1)")
    assert d.prove()[0] == "SymPy's vector-Jacobian product of the layer for every batch size n"
    assert f"{d.latex(d.lhs)} = {d.latex(d.result)}" == (
        r"\frac{\partial C}{\partial a_{i,3}^{(1)}} = \frac{\gamma_{3}^{(2)}}"
        r"{n \sigma_{3}^{(2)}} \left(n \frac{\partial C}{\partial a_{i,3}^{(2)}} - "
        r"\sum_{m=0}^{n - 1} \frac{\partial C}{\partial a_{m,3}^{(2)}} - \hat{x}_{i,3}^{(2)} "
        r"\sum_{m=0}^{n - 1} \frac{\partial C}{\partial a_{m,3}^{(2)}} \hat{x}_{m,3}^{(2)}"
        r"\right)")
    jacobian = d.steps[2].equations[-1]
    assert d.latex(jacobian[1]) == (
        r"\frac{\gamma_{3}^{(2)} \left(\delta_{im} - \frac{\hat{x}_{i,3}^{(2)} "
        r"\hat{x}_{m,3}^{(2)} + 1}{n}\right)}{\sigma_{3}^{(2)}}")


@pytest.mark.parametrize("name, wrong", [
    ("gamma_1^(2)", lambda r: r.replace(sympy.Sum, lambda body, lim: sympy.Sum(
        body ** 2, lim))),
    ("beta_0^(2)", lambda r: 2 * r),
    ("a_3^(1)", lambda r: r.func(r.args[0], r.args[1].func(*r.args[1].args[:2]),
                                 evaluate=False))])  # the xhat sum's term left out
def test_a_result_that_differs_from_the_truth_is_refused(name, wrong):
    d = letter_derivation(Spec.from_toml(EXAMPLE), name)
    d.result = wrong(d.result)
    with pytest.raises(SelfCheckFailed, match="differs from SymPy"):
        prove(d)


@pytest.mark.parametrize("affine", [True, False])
def test_after_a_conv_the_channel_s_derivations_are_proven(affine):
    spec = conv_spec(affine)
    names = ["a_{1,0,1}^{(1)}"] + (["gamma_1^(2)", "beta_1^(2)"] if affine else [])
    for name in names:
        d = letter_derivation(spec, name)
        assert len(d.prove()) >= 2
        assert "values of channel 1, every sample at every position" in \
            d.context("text")["steps"][0]["words"]
    config = spec.stack[1]
    assert len(config.letter_matrix_form(spec, Autodiff("torch")).prove()) == 1
    # without JAX or PyTorch: high-precision differences of the written-out layer
    for name in names:
        d = letter_derivation(spec, name)
        b = config.letter_derivation(d_node(spec, name), spec, Autodiff(None))
        assert b.proofs[-1][0].startswith("high-precision differences")
        assert b.proofs[-1][1](d.result) and not b.proofs[-1][1](2 * d.result + 1)
    assert len(config.letter_matrix_form(spec, Autodiff(None)).prove()) == 1


def d_node(spec, name):
    from symprop.graph import build_graph

    return build_graph(spec).resolve(name)


def test_derive_prints_the_proven_derivation(capsys):
    assert main(["derive", EXAMPLE, "--wrt", "beta_2^(2)"]) == 0
    out = capsys.readouterr().out
    assert "dC/dbeta_2^(2) = sum_(i=0)^(n - 1) dC/da_{i,2}^(2)\n" in out
    assert "Proof: PROVEN equal to SymPy's diff of the composed layer for a symbolic batch of " \
           "2 and 3 samples; and" in out
    assert main(["derive", EXAMPLE, "--wrt", "beta_2^(L-2)"]) == 0  # answered as spelt
    assert "dC/dbeta_2^(L-2) = sum_(i=0)^(n - 1) dC/da_{i,2}^(L-2)\n" in capsys.readouterr().out
    assert main(["derive", EXAMPLE, "--wrt", "beta_2^(L-2)", "--layers", "absolute"]) == 0
    assert "dC/dbeta_2^(2) = sum" in capsys.readouterr().out
    assert main(["derive", EXAMPLE, "--wrt", "x_1"]) == 2  # layer 1 is dense: not over n
    assert "is not derived step by step in this network" in capsys.readouterr().err


@pytest.mark.parametrize("args, words", [
    (["--wrt", "w_{12}^{(1)}"],
     "Derive gamma_j^(2), beta_j^(2) and a_j^(1), or use symprop codegen"),
    (["--wrt", "gamma_1^(2)", "--at", "v.toml"], "--at does not work out a derivation"),
    (["--wrt", "gamma_7^(2)"], "gamma_7^(2)"),
    # a statistic of the batch: not layernorm's "one value per layer"
    (["--wrt", "mu_1^(2)"], "mu_1^(2) is not derived step by step in this network")])
def test_names_it_does_not_derive_exit_2(capsys, args, words):
    assert main(["derive", EXAMPLE, *args]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_a_network_without_a_batchnorm_derives_per_sample():
    assert letter_derivation(Spec.from_toml(EXAMPLE.replace("batchnorm", "tutorial")),
                             "w_12^(2)") is None
    with pytest.raises(NameLookupError):
        letter_derivation(Spec.from_toml(EXAMPLE), "b_1^(4)")


@pytest.mark.needs("pdflatex")
def test_the_report_and_a_standalone_derivation_compile(tmp_path):
    out = tmp_path / "bn.md"
    assert main(["report", EXAMPLE, "-o", str(out)]) == 0
    md = out.read_text()
    for heading in ["# Layer 2 (batchnorm)\n\nLayer 2 normalises over the batch, so",
                    r"## The gradient of $\gamma_{0}^{(L-2)}$ over a batch",  # as L-k
                    r"## The gradient of a batchnorm's input $a_{i,0}^{(L-3)}$",
                    "## Batch normalisation in layer L-2: the batch form"]:
        assert heading in md
    assert main(["report", EXAMPLE, "-o", str(tmp_path / "bn.pdf")]) == 0
    assert (tmp_path / "bn.pdf").read_bytes().startswith(b"%PDF")
    tex = tmp_path / "d.tex"
    assert main(["derive", EXAMPLE, "--wrt", "a_0^(1)", "--format", "latex", "--standalone",
                 "-o", str(tex)]) == 0
    assert compile_pdf(tex.read_text()).startswith(b"%PDF")


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_batchnorm_layers_derivations_are_proven(data):
    """A batchnorm as users write it (first layer or after dense or conv1d, eps, affine),
    one of its quantities: the derivation holds against SymPy and autodiff."""
    affine, eps = data.draw(st.booleans()), data.draw(st.sampled_from([1e-5, 0.1, 1.0]))
    where = data.draw(st.sampled_from(["first", "dense", "conv1d"]))
    width = data.draw(st.integers(1, 3))
    before = {"first": [], "dense": [{"kind": "dense", "width": width}],
              "conv1d": [{"kind": "conv1d", "channels": width, "kernel": 2}]}[where]
    spec = Spec(input=[1, 3] if where == "conv1d" else width, name="r", loss="sse", stack=[
        *before, {"kind": "batchnorm", "affine": affine, "eps": eps}, {"kind": "flatten"},
        {"kind": "dense", "width": 1}])
    l, j = len(before) + 1, data.draw(st.integers(0, width - 1))
    below = "x" if l == 1 else "a"
    node = f"{below}_{{{j},1}}^({l - 1})" if where == "conv1d" else \
        (f"x_{j}" if l == 1 else f"a_{j}^({l - 1})")
    names = [node] + ([f"gamma_{j}^({l})", f"beta_{j}^({l})"] if affine else [])
    d = letter_derivation(spec, data.draw(st.sampled_from(names)))
    assert len(d.prove()) >= 2
    assert not any(check(2 * d.result) for _, check in d.proofs)  # each proof can fail


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_each_result_holds_against_jax_and_pytorch(backend):
    need(backend)
    for spec, names in [(Spec.from_toml(EXAMPLE), ["gamma_2^(2)", "beta_0^(2)", "a_5^(1)"]),
                        (conv_spec(True), ["gamma_0^(2)", "a_{1,1,0}^(1)"])]:
        config = spec.stack[1]
        for name in names:
            d = config.letter_derivation(d_node(spec, name), spec, Autodiff(backend))
            assert d.prove()[-1] == f"{backend} autodiff of the spec's layer at a random batch"


def test_text_html_and_the_first_layer_s_batch_form_read_right(tmp_path, capsys):
    """What a review found: a sum inside a sum in text gets parentheses; a standalone title
    names the network; the heading's math is math in HTML; the batch form of a first layer
    names X; a map's mean is a channel's."""
    d = letter_derivation(Spec.from_toml(EXAMPLE), "a_3^(1)")
    assert d.text(d.result) == (
        "(gamma_3^(2)/(n*sigma_3^(2)))*(n*dC/da_{i,3}^(2) - (sum_(m=0)^(n - 1) "
        "dC/da_{m,3}^(2)) - xhat_{i,3}^(2)*(sum_(m=0)^(n - 1) dC/da_{m,3}^(2)*xhat_{m,3}^(2)))")
    out = tmp_path / "d.html"
    assert main(["derive", EXAMPLE, "--wrt", "a_3^(1)", "--format", "html", "--standalone",
                 "-o", str(out)]) == 0
    html = out.read_text()
    assert "<title>Backpropagation in the network batchnorm</title>" in html
    assert "$" not in html and "{a}" not in html
    first = Spec(input=3, name="first", loss="sse", stack=[
        {"kind": "batchnorm"}, {"kind": "dense", "width": 1}])
    form = first.stack[0].letter_matrix_form(first, Autodiff("jax"))
    assert form.latex(form.lhs) == r"\frac{\partial C}{\partial X}" and prove(form)
    words = letter_derivation(conv_spec(True), "gamma_1^(2)").context("text")["steps"]
    assert words[0]["words"].startswith("Layer 2 normalises channel 1 over the batch and")
