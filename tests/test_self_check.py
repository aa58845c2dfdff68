"""Every derivative symprop prints is held against an independent truth first: the last line of
derive says which, and a derivation that differs is exit 3 with nothing printed -- for derive,
derive --prove, check and report, along each of the three truths (the composed C_0, autodiff
of the reference forward pass, central differences of the forward pass)."""

import pytest
import sympy
from conftest import need
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_conv_formulas import derivations_a_max_pool_reads, max_pool_stack
from test_layers import AROUND, spec_around

from symprop import backprop
from symprop import self_check as sc
from symprop.cli import main
from symprop.derivation import Backprop

TUTORIAL = "examples/tutorial.toml"
COMPOSED = "Checked: equal to SymPy's diff of the composed C_0 (numeric: at a random point " \
           "in 30 digits)."


def _run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _deep(tmp_path) -> str:
    """Twelve tanh layers of 4: a composed C_0 of about 10^7 symbols, over the budget."""
    path = tmp_path / "deep.toml"
    path.write_text(f"layers = {[4] * 13}\nactivation = \"tanh\"\nloss = \"sse\"\n")
    return str(path)


@pytest.fixture
def wrong(monkeypatch):
    """Every gradient the engine gives off by 0.1%: the bug a self-check must catch."""
    right = Backprop.gradient

    def off(self, node):
        return sympy.Rational(1001, 1000) * right(self, node)
    monkeypatch.setattr(Backprop, "gradient", off)


def test_derive_says_last_what_it_was_checked_against(capsys):
    code, out, err = _run(["derive", TUTORIAL, "--wrt", "w_22^(L-1)"], capsys)
    assert code == 0 and out.splitlines()[-1] == COMPOSED
    code, out, err = _run(["derive", TUTORIAL, "--wrt", "w_22^(L-1)", "--format", "latex"],
                          capsys)
    assert code == 0 and err.strip() == COMPOSED and "Checked" not in out


def test_prove_over_the_budget_says_why(tmp_path, capsys):
    need("jax")
    code, out, _ = _run(["derive", _deep(tmp_path), "--wrt", "w_12^(1)", "--prove"], capsys)
    assert code == 0
    assert out.splitlines()[-1].startswith(
        "Proof: PROVEN equal to JAX autodiff of the reference forward pass at a random point "
        "(float64): the composed C_0 would have about ")


def test_without_jax_or_torch_the_truth_is_the_forward_pass(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sc, "autodiff_backend", lambda: None)
    code, out, _ = _run(["derive", _deep(tmp_path), "--wrt", "w_12^(1)"], capsys)
    assert code == 0 and out.splitlines()[-1].startswith(
        "Checked: equal to central differences of the forward pass at a random point "
        "(45 digits): the composed C_0 would have about ")


@pytest.mark.parametrize("truth", ["composed", "autodiff", "differences"])
@pytest.mark.parametrize("prove", [False, True])
def test_a_wrong_derivation_is_exit_3_and_prints_nothing(truth, prove, wrong, tmp_path,
                                                          capsys, monkeypatch):
    if truth == "autodiff":
        need("jax")
    if truth == "differences":
        monkeypatch.setattr(sc, "autodiff_backend", lambda: None)
    spec = TUTORIAL if truth == "composed" else _deep(tmp_path)
    code, out, err = _run(["derive", spec, "--wrt", "w_12^(1)"] + ["--prove"] * prove, capsys)
    assert code == 3 and out == ""
    assert err.startswith("symprop derive: self-check FAILED: the derived dC_0/dw_12^(1) "
                          "differs from ")
    assert "This is a bug in symprop" in err and "report it" in err


def test_check_holds_its_truth_first(wrong, capsys):
    code, out, err = _run(["check", TUTORIAL, "--wrt", "w_12^(L)", "--formula",
                           "2(a_1^(L) - y_1) g'^(L)(z_1^(L)) a_2^(L-1)"], capsys)
    assert code == 3 and out == "" and "self-check FAILED" in err
    general = r"\frac{\partial C_0}{\partial w_{jk}^{(L)}} = 2(a_j^{(L)} - y_j) " \
              r"g'^{(L)}(z_j^{(L)}) a_k^{(L-1)}"
    code, out, err = _run(["check", TUTORIAL, "--formula", general], capsys)
    assert code == 3 and out == "" and "self-check FAILED" in err


def test_report_writes_nothing_that_differs(wrong, tmp_path, capsys):
    target = tmp_path / "r.md"
    code, _, err = _run(["report", TUTORIAL, "-o", str(target)], capsys)
    assert code == 3 and "self-check FAILED" in err and not target.exists()


@pytest.mark.parametrize("kind", AROUND)
def test_the_forward_pass_truth_agrees_on_every_kind_and_catches_an_error(kind):
    """Central differences of the forward pass, for every parameter and node of a network
    around each kind: equal to the derivation, and unequal to it plus 1e-9."""
    engine = backprop(spec_around(kind))
    graph = engine.graph
    for target in graph.parameters() + [graph.output(l, 0) for l in range(graph.L)]:
        derivation = engine.derive(target)
        result = sc.prove_by_differences(derivation, seed=3)
        assert result.passed and result.max_rel_error < 1e-22, (kind, target, result)
        derivation.__dict__["result"] = derivation.result + sympy.Rational(1, 10**9)
        assert not sc.prove_by_differences(derivation, seed=3).passed, (kind, target)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_three_truths_agree(backend):
    """The composed C_0, autodiff and the forward pass's differences pass each parameter of a
    residual network with a layernorm, all three."""
    need(backend)
    from symprop.proof import _prove_autodiff, prove

    engine = backprop(spec_around("add"))
    for target in engine.graph.parameters():
        d = engine.derive(target)
        results = [prove(d, "numeric", points=1), _prove_autodiff(engine, [target], backend, 0)[0],
                   sc.prove_by_differences(d)]
        assert [r.method for r in results] == ["numeric", backend, "differences"]
        assert all(r.passed for r in results), (target, results)


_POOLS = st.lists(st.tuples(st.integers(2, 3), st.integers(1, 2)), min_size=1, max_size=2)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(size=11, kernel=2, bias=True, pools=[(3, 1), (2, 1)], seed=0)
@example(size=11, kernel=1, bias=True, pools=[(3, 1), (3, 1)], seed=1)
@given(st.integers(10, 13), st.integers(1, 2), st.booleans(), _POOLS, st.integers(0, 3))
def test_a_tie_with_the_target_at_every_random_point_is_no_false_alarm(size, kernel, bias,
                                                                        pools, seed):
    """Two outputs of an overlapping max pool share their maximum at most points, so the
    next pool's window ties them and C_0 has a kink in either at every random point: the
    quick self-check (check --formula's truth) once called the right derivative wrong there
    (exit 3). Every entry a max pool reads, under relu conv1d and one or two max pools,
    passes it."""
    engine = backprop(max_pool_stack(size, kernel, bias, pools))
    for derivation in derivations_a_max_pool_reads(engine):
        sc.ensure(derivation, seed=seed, quick=True)


STEEP_UNDER_A_ROOT = """
input = [1, 11]
loss = "sse"
[activations]
steep = "1/(1+exp(-12*x))"
[[layer]]
kind = "conv1d"
channels = 1
kernel = 1
activation = "steep"
bias = true
[[layer]]
kind = "maxpool1d"
kernel = 3
stride = 1
[[layer]]
kind = "maxpool1d"
kernel = 2
stride = 1
[[layer]]
kind = "flatten"
[[layer]]
kind = "custom"
width = 8
formula = "sqrt(1 - a_j)"
[[layer]]
kind = "dense"
width = 2
activation = "relu"
[[layer]]
kind = "dense"
width = 1
"""


def test_a_target_moved_out_of_a_function_s_domain_is_no_crash_and_wrong_still_fails():
    """Moving a tied target up by a few per cent can take sqrt(1 - a) below 0 (a steep
    sigmoid's outputs near 1): the complex values once reached relu's max and the check
    crashed (exit 3 for a right derivation). Such a point judges nothing; the target is
    moved down at the next. Every output of the first pool passes at seeds 0-11, and the
    same derivation off by 0.1% fails wherever its derivative is not 0 everywhere."""
    from types import SimpleNamespace

    from symprop.errors import NameLookupError
    from symprop.spec import Spec

    engine = backprop(Spec.from_toml_string(STEEP_UNDER_A_ROOT))
    caught = 0
    for symbol in engine.graph.a[2]:
        try:
            derivation = engine.derive(symbol)
        except NameLookupError:
            continue
        assert all(sc.prove_by_differences(derivation, seed=s).passed for s in range(12))
        off = SimpleNamespace(graph=derivation.graph, target=derivation.target,
                              symbol=derivation.symbol, engine=engine,
                              result=derivation.result * sympy.Rational(1001, 1000))
        caught += not all(sc.prove_by_differences(off, seed=s).passed for s in range(4))
    assert caught >= 8, caught  # of the 9 outputs a window reads


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(8, 12), _POOLS, st.sampled_from([8, 12, 20]), st.integers(0, 11))
def test_a_bounded_function_above_tied_pools_is_judged_at_random_shapes(size, pools, steep,
                                                                        seed):
    """The domain test's network at random sizes, pool stacks and steepness: a steep
    sigmoid conv, one or two max pools (ties), sqrt(1 - a_j) above them (outputs near 1 are
    a few per cent from its domain's edge) and a relu; every entry a pool reads passes the
    check by differences, no crash."""
    from symprop.spec import Spec

    width = size
    for k, s in pools:
        width = (width - k) // s + 1
    spec = Spec.from_dict({
        "input": [1, size], "loss": "sse", "activations": {"steep": f"1/(1+exp(-{steep}*x))"},
        "layer": [{"kind": "conv1d", "channels": 1, "kernel": 1, "activation": "steep"},
                  *[{"kind": "maxpool1d", "kernel": k, "stride": s} for k, s in pools],
                  {"kind": "flatten"},
                  {"kind": "custom", "width": width, "formula": "sqrt(1 - a_j)"},
                  {"kind": "dense", "width": 2, "activation": "relu"},
                  {"kind": "dense", "width": 1}]})
    for derivation in derivations_a_max_pool_reads(backprop(spec)):
        assert sc.prove_by_differences(derivation, seed=seed).passed, derivation.target
