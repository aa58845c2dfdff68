"""Layers of any kind: every derived gradient equals SymPy's diff of the composed C_0 and the
autodiff of an independent JAX / PyTorch forward pass; random layer lists too."""

import pytest
import sympy
from conftest import need
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symprop import Spec, backprop
from symprop.proof import prove, prove_parameters

DENSE = {"kind": "dense", "width": 3, "activation": "tanh", "bias": True}
RBF = {"kind": "custom", "width": 2, "formula": "exp(-s_j * sum_k((a_k - c_jk)**2))",
       "params": {"c": "jk", "s": "j"}, "init": {"s": 1.0}}
#: One small network around each kind (input 2 nodes), ending in what the loss reads.
AROUND = {
    "dense": [DENSE, {"kind": "dense", "width": 2, "activation": "sigmoid"}],
    "activation": [DENSE, {"kind": "activation", "activation": "softplus"},
                   {"kind": "dense", "width": 2}],
    "activation softmax": [DENSE, {"kind": "activation", "activation": "softmax"},
                           {"kind": "dense", "width": 2}],
    "layernorm": [DENSE, {"kind": "layernorm"}, {"kind": "dense", "width": 2}],
    "layernorm without affine": [DENSE, {"kind": "layernorm", "affine": False, "eps": 0.01},
                                 {"kind": "dense", "width": 2}],
    "rmsnorm": [DENSE, {"kind": "rmsnorm"}, {"kind": "dense", "width": 2}],
    "add": [DENSE, {"kind": "dense", "width": 3, "activation": "relu"},
            {"kind": "add", "from": 1}, {"kind": "dense", "width": 2}],
    "multiply": [{"kind": "dense", "width": 2, "activation": "sigmoid"},
                 {"kind": "multiply", "from": 0}, {"kind": "dense", "width": 2}],
    "concat": [DENSE, {"kind": "concat", "from": 0}, {"kind": "dense", "width": 2}],
    "custom": [DENSE, RBF, {"kind": "dense", "width": 2}],
    "custom in a_j": [DENSE, {"kind": "custom", "width": 3, "formula": "a_j * tanh(s_j * a_j)",
                              "params": {"s": "j"}}, {"kind": "dense", "width": 2}],
    "custom k-only": [DENSE, {"kind": "custom", "width": 2,
                              "formula": "sum_k(c_k * a_k**2) + t_j",
                              "params": {"c": "k", "t": "j"}}],
}


def spec_around(kind, loss="sse", reduction="mean"):
    return Spec(input=2, stack=AROUND[kind], loss=loss, reduction=reduction, name=kind)


@pytest.mark.parametrize("kind", AROUND)
def test_every_gradient_equals_diff_of_the_composed_loss(kind):
    engine = backprop(spec_around(kind))
    graph = engine.graph
    targets = graph.parameters() + [graph.output(l, 0) for l in range(graph.L)]
    for target in targets:
        result = prove(engine.derive(target), "numeric", points=1)
        assert result.passed, (kind, target, result)


@pytest.mark.parametrize("kind", AROUND)
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_every_gradient_equals_autodiff_of_the_reference_forward(kind, backend):
    need(backend)
    report = prove_parameters(backprop(spec_around(kind, reduction="sum")), backend)
    assert report.passed and report.results, report.summary()
    assert max(r.max_rel_error for r in report.results) < 1e-10


def test_the_symbolic_proof_decides_a_layernorm():
    engine = backprop(spec_around("layernorm"))
    for name in ("gamma_1^(2)", "beta_0^(2)", "a_1^(1)"):
        result = prove(engine.derive(name), "symbolic")
        assert result.method == "symbolic" and result.passed, name


def test_the_layernorm_jacobian_is_the_textbook_form():
    layer = backprop(spec_around("layernorm")).graph.layers[2]
    j, m = sympy.symbols("j m", integer=True, nonnegative=True)
    general = layer.general(layer.jacobians["in"], n=sympy.Symbol("n"))
    names = {s.name: s for s in general.free_symbols}
    expected = names["gamma_j^(2)"] / names["sigma^(2)"] * (
        sympy.KroneckerDelta(j, m) - 1 / names["n"] - names["xhat_j^(2)"] * names["xhat_m^(2)"]
        / names["n"])
    assert sympy.simplify(general - expected) == 0
    assert {k: str(layer.general(v)) for k, v in layer.param_derivatives.items()} == {
        "gamma": "xhat_j^(2)", "beta": "1"}


def test_a_residual_node_has_two_paths_and_their_sum():
    engine = backprop(spec_around("add"))
    chain = engine.derive("a_1^(1)").chain
    assert [g.sum_index for g in chain.groups] == [("j", 2), None]
    assert engine.derive("a_1^(1)").result == sympy.Add(
        *[engine.graph.layers[2].adjoints[i] * engine.graph.layers[2].w[i][1]
          for i in range(3)], engine.graph.layers[3].adjoints[1])


# ------------------------------------------------------------- random layer lists
FORMULAS = [("exp(-s_j * sum_k((a_k - c_jk)**2))", {"c": "jk", "s": "j"}),
            ("tanh(sum_k(c_jk * a_k) + s_j)", {"c": "jk", "s": "j"}),
            ("sum_k(c_jk * a_k**2)", {"c": "jk"})]


@st.composite
def layer_lists(draw):
    widths, tables = [draw(st.integers(1, 3))], []
    for index in range(1, draw(st.integers(1, 4)) + 1):
        kind = draw(st.sampled_from(["dense", "dense", "activation", "layernorm", "rmsnorm",
                                     "add", "multiply", "concat", "custom"]))
        below = widths[-1]
        same = [m for m in range(index - 1) if widths[m] == below]
        if kind in ("add", "multiply") and same:
            table, width = {"kind": kind, "from": draw(st.sampled_from(same))}, below
        elif kind == "concat" and index > 1 and widths[-1] + widths[0] <= 5:
            m = draw(st.integers(0, index - 2))
            table, width = {"kind": "concat", "from": m}, below + widths[m]
        elif kind in ("layernorm", "rmsnorm") and below >= 2:
            table, width = {"kind": kind}, below
        elif kind == "activation":
            table = {"kind": kind, "activation": draw(st.sampled_from(
                ["tanh", "sigmoid", "softplus", "swish"] + (["softmax"] if below > 1 else [])))}
            width = below
        elif kind == "custom":
            formula, params = draw(st.sampled_from(FORMULAS))
            width = draw(st.integers(1, 3))
            table = {"kind": kind, "width": width, "formula": formula, "params": params}
            if "s" in params:  # an rbf's width positive, as README's example starts it: a
                table["init"] = {"s": 0.5}  # negative s makes exp(-s |a - c|^2) overflow
        else:
            width = draw(st.integers(1, 3))
            table = {"kind": "dense", "width": width, "bias": draw(st.booleans()),
                     "activation": draw(st.sampled_from(["tanh", "sigmoid", "identity",
                                                         "elu"]))}
        tables.append(table)
        widths.append(width)
    loss = draw(st.sampled_from(["sse", "half_sse", "mse", "(a - y)**4"]))
    return Spec(input=widths[0], stack=tables, loss=loss,
                reduction=draw(st.sampled_from(["mean", "sum"])), name="random")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer_lists())
def test_random_layer_lists_agree_with_autodiff(spec):
    need("jax")
    report = prove_parameters(backprop(spec), "jax")
    assert report.passed, (spec.to_dict(), report.summary())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer_lists())
def test_random_layer_lists_agree_with_diff_of_the_composed_loss(spec):
    engine = backprop(spec)
    for node in engine.graph.parameters()[:6]:
        result = prove(engine.derive(node), "numeric", points=1, force=True)
        assert result.passed, (spec.to_dict(), node)
