"""``symprop check`` on networks of other kinds (design.md sections 4 and 6): a formula may name
a layernorm's gamma, beta, xhat, mu, sigma and a custom layer's own letters; a hand-written
gradient function of an RBF network is judged array by array."""

from __future__ import annotations

import textwrap

import pytest

from symprop.check import check_formula, check_function
from symprop.cli import main
from symprop.spec import Spec

RESIDUAL = Spec.from_toml("examples/residual.toml")
RBF = Spec.from_toml("examples/rbf.toml")


@pytest.mark.parametrize("spec, formula", [
    (RESIDUAL, (r"\frac{\partial C_0}{\partial \gamma_j^{(2)}} = "
               r"\frac{\partial C_0}{\partial a_j^{(2)}} \hat{x}_j^{(2)}")),
    (RESIDUAL, (r"\frac{\partial C_0}{\partial \beta_j^{(2)}} = "
               r"\frac{\partial C_0}{\partial a_j^{(2)}}")),
    (RESIDUAL, r"\frac{\partial \mu^{(2)}}{\partial a_3^{(1)}} = \frac{1}{8}"),
    (RESIDUAL, (r"\frac{\partial \hat{x}_1^{(2)}}{\partial a_1^{(1)}} = "
               r"\frac{1}{\sigma^{(2)}} (1 - \frac{1}{8} - \frac{1}{8} (\hat{x}_1^{(2)})^2)")),
    # the residual node a^(1) feeds layer 2 and, through the sum a^(3), layer 4 directly
    (RESIDUAL, (r"\frac{\partial C_0}{\partial s_j^{(4)}} = - \frac{\partial C_0}{\partial "
               r"a_j^{(4)}} a_j^{(4)} \sum_{k=0}^{n-1} (a_k^{(3)} - c_{jk}^{(4)})^2")),
    (RBF, (r"\frac{\partial C_0}{\partial c_{jk}^{(1)}} = 2 s_j^{(1)} (x_k - c_{jk}^{(1)}) "
          r"a_j^{(1)} \frac{\partial C_0}{\partial a_j^{(1)}}")),
])
def test_right_formulas_of_other_kinds(spec, formula):
    result = check_formula(spec, formula)
    assert result.right, str(result)


@pytest.mark.parametrize("kind, formula", [
    ("rmsnorm", (r"\frac{\partial C_0}{\partial \gamma_j^{(2)}} = "
                r"\frac{\partial C_0}{\partial a_j^{(2)}} \hat{x}_j^{(2)}")),
    ("rmsnorm", r"\frac{\partial r^{(2)}}{\partial a_1^{(1)}} = \frac{a_1^{(1)}}{3 r^{(2)}}"),
    ("multiply", r"\frac{\partial a_j^{(2)}}{\partial a_j^{(1)}} = x_j"),
    ("concat", r"\frac{\partial a_4^{(2)}}{\partial x_1} = 1"),
    ("activation", r"\frac{\partial a_j^{(2)}}{\partial a_j^{(1)}} = \sigma(a_j^{(1)})"),
    # a^(1) feeds dense layer 2 and, through the residual sum, layer 3: two paths
    ("add", (r"\frac{\partial C_0}{\partial a_j^{(1)}} = \sum_{i=0}^{n-1} \delta_i^{(2)} "
            r"w_{ij}^{(2)} + \frac{\partial C_0}{\partial a_j^{(3)}}")),
])
def test_formulas_about_every_kind(kind, formula):
    """One formula about each other kind, on the small networks of tests/test_layers.py."""
    from test_layers import spec_around

    result = check_formula(spec_around(kind), formula)
    assert result.right, str(result)


def test_a_residual_node_with_one_path_through_the_wrong_quantity_is_wrong():
    from test_layers import spec_around

    result = check_formula(spec_around("add"), (
        r"\frac{\partial C_0}{\partial a_j^{(1)}} = \frac{\partial C_0}{\partial a_j^{(2)}}"
        r" + \frac{\partial C_0}{\partial a_j^{(3)}}"))
    assert not result.right and "Counterexample" in str(result)


def test_a_wrong_custom_gradient_is_diagnosed():
    formula = (r"\frac{\partial C_0}{\partial s_j^{(1)}} = \frac{\partial C_0}{\partial "
               r"a_j^{(1)}} a_j^{(1)} \sum_{k=0}^{n-1} (x_k - c_{jk}^{(1)})^2")
    result = check_formula(RBF, formula)
    assert not result.right
    assert "the sign is wrong" in str(result)
    # the counterexample shows the custom parameters, in the formula's absolute layers
    assert "c_00^(1) = " in str(result)


def test_a_missing_factor_is_wrong():
    result = check_formula(RESIDUAL, r"\frac{\partial C_0}{\partial \gamma_j^{(2)}} = "
                                     r"\frac{\partial C_0}{\partial a_j^{(2)}}")
    assert not result.right
    assert "xhat_0^(2) = " in str(result)  # as the formula spells its layer


@pytest.mark.parametrize("formula, message, at", [
    (r"\frac{\partial C_0}{\partial \mu^{(2)}} = 1",
     ("mu is an intermediate quantity of layer 2 (a layernorm); C_0 is differentiated by "
     "parameters and nodes. Write the derivative by a parameter or a node (a, z, x)."), "C_0"),
    (r"\frac{\partial C_0}{\partial \gamma_9^{(2)}} = 1",
     ("gamma_9^(2) is not a node or parameter of layer 2, a layernorm layer. Layer 2 is a "
     "layernorm layer of 8 node(s) with beta, gamma."), "\\gamma"),
    (r"\frac{\partial C_0}{\partial q_1^{(4)}} = 1",
     "this network has no q. Its own names besides seed 000's: c, s.", "q_1"),
    (r"\frac{\partial C_0}{\partial \gamma_1^{(1)}} = 1",
     ("gamma_1^(1) is not a node or parameter of layer 1, a dense layer. Layer 1 is a dense "
     "layer of 8 node(s) with b, w."), "\\gamma"),
    (r"\frac{\partial C_0}{\partial a_1^{(1)}} = g'^{(2)}(z_1^{(1)})",
     "layer 2 has no activation g. The layers with one: 1, 5.", "g'"),
])
def test_names_the_network_lacks_exit_2(capsys, formula, message, at):
    assert main(["check", "examples/residual.toml", "--formula", formula]) == 2
    err = capsys.readouterr().err
    assert f"symprop check: error: --formula: {message}\n" in err
    assert err.splitlines()[-1] == " " * (4 + formula.index(at)) + "^"


FUNCTIONS = textwrap.dedent('''
    import numpy as np


    def _forward(p, X):
        diff = X[:, None, :] - p["c1"][None, :, :]          # (batch, j, k)
        sq = (diff ** 2).sum(axis=2)
        A1 = np.exp(-p["s1"] * sq)
        return diff, sq, A1, A1 @ p["W2"].T + p["b2"]


    def right(p, X, Y):
        diff, sq, A1, A2 = _forward(p, X)
        D2 = (A2 - Y) / len(X)                               # half_sse, mean over the batch
        G1 = (D2 @ p["W2"]) * A1
        return {"W2": D2.T @ A1, "b2": D2.sum(axis=0), "s1": -(G1 * sq).sum(axis=0),
                "c1": 2 * np.einsum("bj,j,bjk->jk", G1, p["s1"], diff)}


    def sign(p, X, Y):
        grads = right(p, X, Y)
        grads["s1"] = -grads["s1"]
        return grads
''')


def test_hand_written_rbf_gradient(tmp_path, capsys):
    path = tmp_path / "rbf_grads.py"
    path.write_text(FUNCTIONS)
    good = check_function(RBF, f"{path}:right")
    assert good.right and [v.name for v in good.parameters] == ["c1", "s1", "W2", "b2"]
    bad = check_function(RBF, f"{path}:sign")
    verdicts = {v.name: v for v in bad.parameters}
    assert not bad.right and not verdicts["s1"].right
    assert verdicts["s1"].findings == ["the array has the wrong sign"]
    assert all(verdicts[n].right for n in ("c1", "W2", "b2"))
    assert main(["check", "examples/rbf.toml", "--function", f"{path}:sign"]) == 1
    assert "s1" in capsys.readouterr().out
