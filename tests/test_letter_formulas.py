r"""check --formula in a network with a batchnorm (formulas over the batch: samples i and m,
n of them) or an rnn (through time): right formulas in LaTeX and plain text, each usual
mistake named, constant factors, general letters, bad input exit 2, and random layers whose
own printed results read back right and whose mutations read back wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_rnn import rnn_spec

from symprop.check import check_formula
from symprop.cli import main
from symprop.letters_derivation import letter_derivation
from symprop.spec import Spec

EXAMPLES = Path(__file__).parent.parent / "examples"
BN, RNN = str(EXAMPLES / "batchnorm.toml"), str(EXAMPLES / "digits_rnn.toml")

G = r"\frac{\partial C}{\partial a_{%s,1}^{(2)}}"
COMPACT = (r"\frac{\partial C}{\partial a_{i,1}^{(1)}} = \frac{\gamma_{1}^{(2)}}{n "
           r"\sigma_{1}^{(2)}} \left(n " + G % "i" + r" - \sum_{m=0}^{n-1} " + G % "m"
           + r" - \hat{x}_{i,1}^{(2)} \sum_{m=0}^{n-1} " + G % "m" + r" \hat{x}_{m,1}^{(2)}"
           r"\right)")


def run(capsys, spec: str, formula: str, *extra: str) -> tuple[int, str, str]:
    code = main(["check", spec, "--formula", formula, *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


# ------------------------------------------------------------------ batchnorm
def test_the_compact_input_gradient_is_right_against_the_composed_batch_and_autodiff(capsys):
    code, out, _ = run(capsys, BN, COMPACT)
    assert code == 0
    assert out.splitlines()[0] == (r"RIGHT: the formula equals \frac{\partial C}{\partial "
                                   r"a_{i,1}^{(1)}}")
    assert "SymPy's diff of the composed layer for a symbolic batch of 2 and 3 samples" in out


@pytest.mark.parametrize("formula", [
    # the Jacobian's sum, with a Kronecker delta and the user's own sample letter k
    ("dC/da_{k,1}^(1) = sum_m dC/da_{m,1}^(2) * gamma_1^(2) * (delta_km - (xhat_{k,1}^(2) "
    "xhat_{m,1}^(2) + 1)/n) / sigma_1^(2)"),
    # mu and sigma written out in the layer's input, and epsilon
    r"\frac{\partial C}{\partial \gamma_1^{(2)}} = \sum_{i=0}^{n-1} " + G % "i" +
    r" \frac{a_{i,1}^{(1)} - \mu_1^{(2)}}{\sqrt{\frac{1}{n} \sum_{m=0}^{n-1} (a_{m,1}^{(1)} "
    r"- \mu_1^{(2)})^2 + \epsilon}}",
    "dC/dbeta_j^(2) = sum_i dC/da_{i,j}^(2)",  # general j, bounds from the derivation's sums
    # the layer first, and the Kronecker delta as an Iverson bracket
    ("dC/da_{k,1}^(1) = sum_m dC/da_{m,1}^(2) * gamma^(2)_1 * ([k = m] - (xhat^(2)_{k,1} "
    "xhat_{m,1}^(2) + 1)/n) / sigma^(2)_1"),
])
def test_other_spellings_of_right_formulas_are_right(capsys, formula):
    code, out, _ = run(capsys, BN, formula)
    assert code == 0, out


@pytest.mark.parametrize("rhs, words", [
    ("gamma_1^(2)/sigma_1^(2) * (dC/da_{i,1}^(2) - 1/n sum_m dC/da_{m,1}^(2))",
     "it leaves out that sigma_1^(2) reads every sample"),
    (("gamma_1^(2)/sigma_1^(2) * (dC/da_{i,1}^(2) - xhat_{i,1}^(2)/n sum_m dC/da_{m,1}^(2) "
     "xhat_{m,1}^(2))"), "it leaves out that mu_1^(2) reads every sample"),
    ("gamma_1^(2)/sigma_1^(2) * dC/da_{i,1}^(2)",
     "it treats mu_1^(2) and sigma_1^(2) as constants"),
    (("gamma_1^(2)/sigma_1^(2) * (dC/da_{i,1}^(2) - 1/n sum_m dC/da_{m,1}^(2) - "
     "xhat_{i,1}^(2)/(n-1) sum_m dC/da_{m,1}^(2) xhat_{m,1}^(2))"),
     "it uses the unbiased variance's 1/(n - 1)"),
    (("1/(n sigma_1^(2)) * (n dC/da_{i,1}^(2) - sum_m dC/da_{m,1}^(2) - xhat_{i,1}^(2) sum_m "
     "dC/da_{m,1}^(2) xhat_{m,1}^(2))"), "it leaves out gamma_1^(2)"),
    (("gamma_1^(2)/sigma_1^(2) * (n dC/da_{i,1}^(2) - sum_m dC/da_{m,1}^(2) - xhat_{i,1}^(2) "
     "sum_m dC/da_{m,1}^(2) xhat_{m,1}^(2))"), "the formula is n times too large"),
])
def test_each_usual_input_gradient_mistake_is_named(capsys, rhs, words):
    code, out, _ = run(capsys, BN, "dC/da_{i,1}^(1) = " + rhs)
    assert code == 1
    assert "Most likely:\n  1. " + words in out, out
    assert "symprop derive proves:\n  dC/da_{i,1}^(1) = (gamma_1^(2)/(n*sigma_1^(2)))" in out


@pytest.mark.parametrize("formula, words", [
    ("dC/dgamma_1^(2) = sum_i dC/da_{i,1}^(2)", "it leaves out xhat_{i,1}^(2)"),
    ("dC/dgamma_1^(2) = dC/da_{i,1}^(2) xhat_{i,1}^(2)", "a sum over i is missing"),
    ("dC/dgamma_1^(2) = sum_i dC/da_{i,1}^(2) a_{i,1}^(1)", "it has the layer's input"),
    ("dC/dbeta_1^(2) = sum_m dC/da_{m,1}^(2) xhat_{m,1}^(2)", "that is dC/dgamma_1^(2)"),
])
def test_each_usual_parameter_mistake_is_named(capsys, formula, words):
    code, out, _ = run(capsys, BN, formula)
    assert code == 1 and f"1. {words}" in out, out


def test_a_name_the_derivation_does_not_read_and_a_sum_past_the_batch_are_wrong(capsys):
    code, out, _ = run(capsys, BN, "dC/dgamma_1^(2) = sum_m dC/da_{m,1}^(2) xhat_{m,2}^(2)")
    assert code == 1
    assert ("it names xhat_{m,2}^(2), which the derivation of dC/dgamma_1^(2) does not read"
            in out)
    code, out, _ = run(capsys, BN, "dC/dgamma_1^(2) = sum_{m=0}^{n} dC/da_{m,1}^(2) "
                                   "xhat_{m,1}^(2)")
    assert code == 1 and "WRONG  sum_{m=0}^{n}" in out


# ------------------------------------------------------------------ rnn
def test_the_general_bptt_formula_is_right_at_first_middle_and_last_weights(capsys):
    code, out, _ = run(capsys, RNN, r"\frac{\partial C_0}{\partial u_{jk}^{(1)}} = "
                                    r"\sum_{t=2}^{8} \delta_{t,j}^{(1)} h_{t-1,k}^{(1)}")
    assert code == 0
    assert "checked for j, k = 0, 0; 0, 1; 32, 0; 63, 63 (4 of 4096)" in out
    assert "autodiff of the spec's layer at three random sequences" in out


@pytest.mark.parametrize("formula, words", [
    ("dC_0/du_{jk}^(1) = sum_{t=1}^{8} delta_{t,j}^(1) h_{t,k}^(1)",
     "1. it pairs delta_{t,0}^(1) with h_{t,0}^(1)"),
    ("dC_0/dw_{jk}^(1) = delta_{8,j}^(1) x_{8,k}", "1. it keeps only the last step"),
    ("dC_0/db_j^(1) = sum_t dC_0/dh_{t,j}^(1)", "1. it has dC_0/dh_{t,0}^(1) where"),
    ("dC_0/dw_{jk}^(1) = 2*sum_t delta_{t,j}^(1) x_{t,k}", "1. the formula is twice"),
])
def test_each_usual_bptt_mistake_is_named(capsys, formula, words):
    code, out, _ = run(capsys, RNN, formula)
    assert code == 1 and words in out, out
    assert "at j = 0" in out  # where it failed


def test_dh_and_the_activation_s_derivative_read_as_derive_prints_them(capsys):
    code, out, _ = run(capsys, RNN, "dC_0/db_{j}^(1) = sum_{t=1}^{8} dC_0/dh_{t,j}^(1) "
                                    "tanh'(z_{t,j}^(1))")
    assert code == 0, out
    code, out, _ = run(capsys, RNN, "dC_0/du^{(1)}_{jk} = sum_{t=2}^{T} delta^{(1)}_{t,j} "
                                    "h^{(1)}_{t-1,k}")  # the layer written first
    assert code == 0, out


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("spec, formula, extra, words", [
    (BN, "x_1", ["--wrt", "w_{11}^{(1)}"],
     "w_{11}^{(1)} is not derived step by step in this network"),
    (BN, "sum_i dC/da_{i,1}^(2)", [], "Pass --wrt NAME (gamma_j^(2), beta_j^(2) and a_j^(1))"),
    (BN, "dC_0/dgamma_1^(2) = 0", [], "in this network the derivative is of C, not C_0"),
    (BN, "dC/da_{1}^(1) = 0", [], "a_{1}^(1) needs 2 indices here"),
    (BN, "dC/da_{0,1}^(1) = 0", [], "write i, a letter, where derive prints it"),
    (BN, "dC/dgamma_9^(2) = 0", [], "its indices there run from 0 to 5"),
    (BN, "dC/dgamma_1^(2) = q", [], "cannot read 'q'"),
    (BN, "dC/dW^(1) = X^T", [], "a formula is checked per entry, not in matrices"),
    (BN, "dC/dgamma_1^(2) = sum_q 1", [], "cannot tell where the sum over q runs"),
    (BN, "dC/dgamma_1^(2) = 0", ["--wrt", "beta_1^(2)"], "--wrt names beta_1^(2)"),
    (str(EXAMPLES / "tutorial.toml"), r"\epsilon", ["--wrt", "w_{11}^{(1)}"],
     "\\epsilon belongs to a batchnorm's formulas"),
    (str(EXAMPLES / "tutorial.toml"), r"\delta_{im}", ["--wrt", "w_{11}^{(1)}"],
     "a delta without a layer reads as a Kronecker delta"),
    (str(EXAMPLES / "tutorial.toml"), r"\delta_{o,p}", ["--wrt", "w_{11}^{(1)}"],
     "needs a layer superscript"),  # a node's delta, its layer forgotten
    (str(EXAMPLES / "seed001.toml"), r"dC/dW^(2) = \Delta^{(2)}T A^{(1)}", [],
     "T alone is an rnn's number of steps (for a transpose write ^T"),
])
def test_bad_formulas_exit_2_with_a_message(capsys, spec, formula, extra, words):
    code, out, err = run(capsys, spec, formula, *extra)
    assert code == 2 and not out
    assert words in err and "Traceback" not in err, err


# ------------------------------------------------------------------ generated
def _variant(d, how: str) -> str:
    """derive's own printed result of ``d`` as a formula, or a wrong version of it."""
    if how == "text":
        return f"{d.text(d.lhs)} = {d.text(d.result)}"
    if how == "double":
        return rf"{d.latex(d.lhs)} = 2 \left({d.latex(d.result)}\right)"
    if how.startswith("mistake"):
        return f"{d.latex(d.lhs)} = {d.latex(d.mistakes[int(how[-1]) % len(d.mistakes)][1])}"
    return f"{d.latex(d.lhs)} = {d.latex(d.result)}"


def _holds_as_expected(spec, d, how):
    result = check_formula(spec, _variant(d, how))
    if how in ("latex", "text"):
        assert result.right, result
    elif how == "double" and d.result != 0:
        assert not result.right and result.findings, result
    elif how.startswith("mistake") and not result.right:
        assert result.findings, result  # a usual mistake (or a factor) is named


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_batchnorm_layers_printed_results_read_back(data):
    """A batchnorm where users put one (first, after dense or conv1d; eps; affine), one of its
    derivations: its printed result, in LaTeX or text, is right; doubled, or one of the usual
    mistakes, it is wrong and named."""
    affine, where = data.draw(st.booleans()), data.draw(st.sampled_from(["first", "dense",
                                                                          "conv1d"]))
    width = data.draw(st.integers(1, 3))
    before = {"first": [], "dense": [{"kind": "dense", "width": width}],
              "conv1d": [{"kind": "conv1d", "channels": width, "kernel": 2}]}[where]
    spec = Spec(input=[1, 3] if where == "conv1d" else width, name="r", loss="sse", stack=[
        *before, {"kind": "batchnorm", "affine": affine,
                  "eps": data.draw(st.sampled_from([1e-5, 0.1]))},
        {"kind": "flatten"}, {"kind": "dense", "width": 1}])
    l, j = len(before) + 1, data.draw(st.integers(0, width - 1))
    node = (f"x_{{{j},1}}" if l == 1 else f"a_{{{j},1}}^({l - 1})") if where == "conv1d" \
        else (f"x_{j}" if l == 1 else f"a_{j}^({l - 1})")
    names = [node] + ([f"gamma_{j}^({l})", f"beta_{j}^({l})"] if affine else [])
    d = letter_derivation(spec, data.draw(st.sampled_from(names)))
    how = data.draw(st.sampled_from(["latex", "text", "double", "mistake0", "mistake1",
                                     "mistake2"]))
    _holds_as_expected(spec, d, how)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_rnn_layers_printed_results_read_back(data):
    """An rnn as users write it (width 1-3, steps 1-4, tanh, bias, sequence), one weight:
    its printed result reads back right, and doubled or mistaken, wrong and named."""
    layers = ((data.draw(st.integers(1, 3)), "tanh", data.draw(st.booleans()),
               data.draw(st.booleans())),)
    spec = rnn_spec(layers, steps=data.draw(st.integers(1, 4)), n0=data.draw(st.integers(1, 2)))
    width, _, bias, _ = layers[0]
    kind = data.draw(st.sampled_from(["u", "w"] + (["b"] if bias else [])))
    j = data.draw(st.integers(0, width - 1))
    k = data.draw(st.integers(0, (width if kind == "u" else spec.stack[0].n_in) - 1))
    d = letter_derivation(spec, f"b_{j}^(1)" if kind == "b" else f"{kind}_{{{j},{k}}}^{{(1)}}")
    how = data.draw(st.sampled_from(["latex", "text", "double", "mistake0", "mistake1",
                                     "mistake2", "general"]))
    if how != "general":
        _holds_as_expected(spec, d, how)
        return
    # the textbook formula in general letters, right; with j and k swapped, wrong
    T, first = spec.steps, 2 if kind == "u" else 1
    read = {"u": "h_{t-1,%s}^{(1)}", "w": "x_{t,%s}", "b": ""}[kind]
    for swap in (False, True):
        a, c = ("k", "j") if swap else ("j", "k")
        rhs = rf"\sum_{{t={first}}}^{{{T}}} \delta_{{t,{a}}}^{{(1)}} " + (read % c if read else "")
        lhs = r"\frac{\partial C_0}{\partial " + (r"b_j^{(1)}}" if kind == "b" else
                                                   f"{kind}_{{jk}}^{{(1)}}}}")
        result = check_formula(spec, f"{lhs} = {rhs}")
        if not swap or kind == "b":
            assert result.right, result
            break
        square = kind == "u" or spec.stack[0].n_in == width
        if width > 1 and square and T > 1:
            assert not result.right, result


def test_readme_s_two_formula_checks_say_what_readme_says(capsys, monkeypatch):
    import shlex

    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^symprop check (examples/(?:digits_rnn|batchnorm)\.toml --formula "
                          r"\\\n.*)$", readme, flags=re.MULTILINE)
    assert len(commands) == 2
    monkeypatch.chdir(EXAMPLES.parent)
    codes = {}
    for command in commands:
        args = shlex.split(command.replace("\\\n", " "))
        codes[args[0]] = main(["check", *args])
    out = capsys.readouterr().out
    assert codes == {"examples/digits_rnn.toml": 0, "examples/batchnorm.toml": 1}
    assert "1. it leaves out that sigma_1^(2) reads every sample" in out


# ------------------------------------------------------------------ a review's findings
def _spec(tmp_path, text: str) -> str:
    path = tmp_path / "net.toml"
    path.write_text(text)
    return str(path)


def rnn_toml(width: int, activation: str = "tanh", inputs: int = 2) -> str:
    return (f"input = {inputs}\nsteps = 3\nloss = \"sse\"\n[[layer]]\nkind = \"rnn\"\n"
            f"width = {width}\nactivation = \"{activation}\"\nbias = true\n[[layer]]\n"
            "kind = \"dense\"\nwidth = 1\n")


@pytest.mark.parametrize("width", [3, 5])
def test_swapped_letters_are_found_on_an_odd_layer(tmp_path, capsys, width):
    """The first, middle and last weights of an odd n x n grid are all on its diagonal,
    where u_jk and u_kj agree: a case with j != k is always checked."""
    code, out, _ = run(capsys, _spec(tmp_path, rnn_toml(width)),
                       "dC_0/du_{jk}^(1) = sum_{t=2}^{3} delta_{t,k}^(1) h_{t-1,j}^(1)")
    assert code == 1 and "at j = 0, k = 1: it differs" in out, out


@pytest.mark.parametrize("formula, words", [
    # the right side's i is not the left side's k
    (("dC/da_{k,1}^(1) = gamma_1^(2)/sigma_1^(2) (dC/da_{i,1}^(2) - 1/n sum_m dC/da_{m,1}^(2) "
     "- xhat_{i,1}^(2)/n sum_m dC/da_{m,1}^(2) xhat_{m,1}^(2))"), "the letter i is free"),
    ("dC/dgamma_1^(2) = sum_{m=0}^{n} dC/da_{m,1}^(2) xhat_{m,1}^(2)",
     "it reads entry 5 of a name with 5 (numbered from 0): past the batch"),
])
def test_free_letters_and_sums_past_the_batch_are_wrong(capsys, formula, words):
    code, out, _ = run(capsys, BN, formula)
    assert code == 1 and words in out, out


@pytest.mark.parametrize("formula, words", [
    ("dC_0/du_{jk}^(1) = sum_{t=1}^{9} delta_{t,j}^(1) h_{t-1,k}^(1)",
     "it reads a step outside 1..8 (such as delta_9 or x_0)"),
    ("dC_0/dw_{jk}^(1) = sum_{t=0}^{8} delta_{t,j}^(1) x_{t,k}", "it reads a step outside"),
    ("dC_0/du_{jk}^(1) = delta_{t,j}^(1) h_{t-1,k}^(1)", "1. a sum over t is missing"),
])
def test_steps_past_t_and_a_forgotten_sum_over_t_are_wrong(capsys, formula, words):
    code, out, _ = run(capsys, RNN, formula)
    assert code == 1 and words in out, out


@pytest.mark.parametrize("activation, formula", [
    ("sigmoid", (r"\frac{\partial C_0}{\partial b_j^{(1)}} = \sum_{t=1}^{T} \frac{\partial C_0}"
     r"{\partial h_{t,j}^{(1)}} \frac{e^{-z_{t,j}^{(1)}}}{(1+e^{-z_{t,j}^{(1)}})^2}")),
    ("tanh", ("dC_0/db_j^(1) = sum_{t=1}^{3} dC_0/dh_{t,j}^(1) 4/(exp(z_{t,j}^(1)) + "
     "exp(-z_{t,j}^(1)))^2")),
    ("tanh", "dC_0/du_{kj}^(1) = sum_s dC_0/dh_{s,k}^(1) tanh'(z_{s,k}^(1)) h_{s-1,j}^(1)"),
])
def test_g_prime_written_out_t_as_a_bound_and_sums_over_dh_read_right(tmp_path, capsys,
                                                                    activation, formula):
    code, out, _ = run(capsys, _spec(tmp_path, rnn_toml(3, activation)), formula)
    assert code == 0, out
    if "u_{kj}" in formula:  # the letters in the left side's order
        assert "checked for k, j = 0, 0; 0, 1; 1, 1; 2, 2 (4 of 9)" in out


def test_plain_epsilon_and_an_engine_read_a_batch_formula(capsys):
    code, out, _ = run(capsys, BN, "dC/da_{i,1}^(1) = gamma_1^(2)/sqrt(1/n sum_m (a_{m,1}^(1) "
                       "- mu_1^(2))^2 + epsilon) (dC/da_{i,1}^(2) - 1/n sum_m dC/da_{m,1}^(2) - "
                       "xhat_{i,1}^(2)/n sum_m dC/da_{m,1}^(2) xhat_{m,1}^(2))")
    assert code == 0, out
    from symprop import backprop

    engine = backprop(Spec.from_toml(BN))
    assert check_formula(engine, "dC/dbeta_1^(2) = sum_m dC/da_{m,1}^(2)").right
