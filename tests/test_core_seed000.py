"""Seed 000's results, compared as exact SymPy expressions."""

import sympy

from symprop import backprop, build_graph
from symprop.activations import generic_activation
from symprop.notation import Node


def sym(kind, layer, j, k=None):
    return Node(kind, layer, j, k).symbol


L = 3  # the tutorial network [3, 6, 6, 4]: layers 0..3
gp = generic_activation(L).prime
gp2 = generic_activation(L - 1).prime


def test_dC0_dw12_L_is_the_seeds_result(tutorial):
    d = backprop(tutorial).derive("w_{12}^{(L)}")
    expected = 2 * gp(sym("z", L, 1)) * sym("a", L - 1, 2) * (sym("a", L, 1) - sym("y", None, 1))
    assert d.result == expected
    assert d.chain.value == expected


def test_the_three_factors_are_worked_out_from_their_definitions(tutorial):
    f1, f2, f3 = backprop(tutorial).derive("w_12^(L)").factors
    # 2 (a_1 - y_1), kept factored as the seed writes it (SymPy would distribute 2*(a - y))
    assert f1.value == sympy.Mul(2, sym("a", L, 1) - sym("y", None, 1), evaluate=False)
    assert f1.vanishing == (0, 2, 3) and len(f1.terms) == 4
    assert f2.definition == generic_activation(L)(sym("z", L, 1))
    assert f2.value == gp(sym("z", L, 1))
    # dz_1/dw_12: six terms w_1k a_k, five vanish, the survivor is a_2^(L-1)
    assert f3.terms == tuple(sym("w", L, 1, k) * sym("a", L - 1, k) for k in range(6))
    assert f3.term_derivatives == (0, 0, sym("a", L - 1, 2), 0, 0, 0)
    assert f3.value == sym("a", L - 1, 2)


def test_dC0_da2_L_minus_1_is_the_backward_sum(tutorial):
    d = backprop(tutorial).derive("a_2^(L-1)")
    expected = sympy.Add(*[
        2 * gp(sym("z", L, j)) * sym("w", L, j, 2) * (sym("a", L, j) - sym("y", None, j))
        for j in range(4)])
    assert d.expanded() == expected
    assert d.chain.value == expected
    assert d.result == sympy.Add(*[sym("delta", L, j) * sym("w", L, j, 2) for j in range(4)])
    assert d.chain.sum_index == ("j", L)


def test_hidden_weight_reuses_the_backward_step(tutorial):
    d = backprop(tutorial).derive("w_{22}^{(L-1)}")
    back = backprop(tutorial).derive("a_2^(L-1)")
    assert d.result == back.result * gp2(sym("z", L - 1, 2)) * sym("a", L - 2, 2)
    assert d.backward.target == Node("a", L - 1, 2)
    assert d.factors[0].value == back.result


def test_batch_average_is_one_over_n_sum(tutorial):
    d = backprop(tutorial).derive("w_12^(L)")
    rhs = d.batch.rhs
    assert isinstance(rhs, sympy.Mul) and sympy.Symbol("n", integer=True, positive=True) ** -1 \
        in rhs.args
    assert d.batch.combine([1.0, 2.0, 6.0]) == 3.0


def test_layered_and_composed_views_agree(tutorial):
    g = build_graph(tutorial)
    composed = g.composed_C0
    assert composed.free_symbols == set(g.x) | set(g.y) | set(g.parameter_symbols())
    layered = g.loss.xreplace(g.to_inputs())
    assert layered == composed


def test_every_tutorial_gradient_proves_symbolically_against_diff(tutorial):
    engine = backprop(tutorial)
    for name in ("w_{12}^{(L)}", "w_22^(L-1)", "w_{01}^{(1)}", "a_2^(L-1)", "z_3^(L-2)"):
        result = engine.derive(name).prove(method="symbolic")
        assert result.passed and result.method == "symbolic", name
