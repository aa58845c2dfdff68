"""symprop check: seed 000's formulas accepted exactly as written, usual mistakes diagnosed.

The seed formulas are copied verbatim from seed 000 (only the surrounding $ removed).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symprop import Spec, tutorial_spec
from symprop.check import check_formula, check_function
from symprop.cli import main
from symprop.formula import FormulaError, parse_formula

SEED_FORMULAS = {
    # line 337: chain rule of dC_0/dw_12^(L)
    337: r"""\frac{\partial C_{0}}{\partial w_{12}^{(L)}} = \left(\frac{\partial C_{0}}{\partial a_{1}^{(L)}} \right) \left(\frac{\partial a_{1}^{(L)}}{\partial z_{1}^{(L)}} \right) \left(\frac{\partial z_{1}^{(L)}}{\partial w_{12}^{(L)}}\right) \text{.}""",
    # line 349: first factor, from the loss's definition
    349: r"""\frac{\partial C_{0}}{\partial a_{1}^{(L)}} = \frac{\partial }{\partial a_{1}^{(L)}} \left( \sum_{j=0}^{n-1}\left( a_{j}^{(L)}-y_{j}\right)^{2}\right) \text{.}""",
    # line 353: first factor, the sum expanded term by term
    353: r"""\begin{eqnarray*} \frac{\partial}{\partial a_{1}^{(L)}} \left( \sum_{j=0}^{n-1}\left( a_{j}^{(L)}-y_{j}\right)^{2}\right) &=& \frac{\partial }{\partial a_{1}^{(L)}} \left( \left( a_{0}^{(L)}-y_{0}\right)^{2} + \left( a_{1}^{(L)}-y_{1}\right)^{2} + \left( a_{2}^{(L)}-y_{2}\right)^{2} + \left( a_{3}^{(L)}-y_{3}\right)^{2} \right) \\&=& \frac{\partial }{\partial a_{1}^{(L)}}\left( \left( a_{0}^{(L)}-y_{0}\right)^{2}\right) + \frac{\partial }{\partial a_{1}^{(L)}} \left( \left( a_{1}^{(L)}-y_{1}\right)^{2}\right) + \frac{\partial }{\partial a_{1}^{(L)}}\left( \left( a_{2}^{(L)}-y_{2}\right)^{2}\right) +\frac{\partial }{\partial a_{1}^{(L)}}\left( \left( a_{3}^{(L)}-y_{3}\right)^{2}\right) \\&=&2 \left( a_{1}^{\left( L\right) }-y_{1}\right) \text{.} \end{eqnarray*}""",
    # line 369: second factor, g'
    369: r"""\begin{eqnarray*} \frac{\partial a_{1}^{(L)}}{\partial z_{1}^{(L)}} &=& \frac{\partial }{\partial z_{1}^{(L)}}\left( g^{\left( L\right) }\left( z_{1}^{\left(L\right) }\right) \right) \\ &=& g^{^{\prime }\left( L\right) }\left( z_{1}^{\left( L\right) }\right) \text{.} \end{eqnarray*}""",
    # line 385: third factor, from z's definition
    385: r"""\frac{\partial z_{1}^{(L)}}{\partial w_{12}^{(L)}} = \frac{\partial }{\partial w_{12}^{(L)}}\left( \sum_{k=0}^{n-1}w_{1k}^{(L)}a_{k}^{(L-1)}\right) \text{.}""",
    # line 389: third factor, expanded with \cdots
    389: r"""\begin{eqnarray*} \frac{\partial }{\partial w_{12}^{(L)}}\left(\sum_{k=0}^{n-1}w_{1k}^{(L)}a_{k}^{(L-1)}\right) &=& \frac{\partial }{\partial w_{12}^{(L)}} \left( w_{10}^{(L)}a_{0}^{(L-1)} + w_{11}^{(L)}a_{1}^{(L-1)} + w_{12}^{(L)}a_{2}^{(L-1)} + \cdots + w_{15}^{(L)}a_{5}^{(L-1)} \right) \\ &=& \frac{\partial }{\partial w_{12}^{(L)}} w_{10}^{(L)}a_{0}^{(L-1)} + \frac{\partial }{\partial w_{12}^{(L)}} w_{11}^{(L)}a_{1}^{(L-1)} + \frac{\partial }{\partial w_{12}^{(L)}}w_{12}^{(L)}a_{2}^{(L-1)} + \cdots + \frac{\partial }{\partial w_{12}^{(L)}}w_{15}^{(L)}a_{5}^{(L-1)} \\ &=& a_{2}^{(L-1)} \end{eqnarray*}""",
    # line 397: dC_0/dw_12^(L): chain rule and result
    397: r"""\begin{eqnarray*} \frac{\partial C_{0}}{\partial w_{12}^{(L)}} &=& \left( \frac{\partial C_{0}}{\partial a_{1}^{(L)}}\right) \left( \frac{\partial a_{1}^{(L)}}{\partial z_{1}^{(L)}}\right) \left( \frac{\partial z_{1}^{(L)}}{\partial w_{12}^{(L)}}\right) \\ &=& 2 \left( a_{1}^{\left( L\right) }-y_{1}\right) \left( g^{\prime \left(L\right) }\left( z_{1}^{\left( L\right) }\right) \right) \left( a_{2}^{(L-1)}\right) \end{eqnarray*}""",
    # line 405: the batch average of dC/dw_12^(L)
    405: r"""\frac{\partial C}{\partial w_{12}^{(L)}} = \frac{1}{n}\sum_{i=0}^{n-1}\frac{\partial C_{i}}{\partial w_{12}^{(L)}} \text{.}""",
    # line 455: chain rule of dC_0/dw_22^(L-1)
    455: r"""\frac{\partial C_{0}}{\partial w_{22}^{(L-1)}}=\left( \frac{\partial C_{0}}{ \partial a_{2}^{(L-1)}}\right) \left( \frac{\partial a_{2}^{(L-1)}}{\partial z_{2}^{(L-1)}}\right) \left( \frac{\partial z_{2}^{(L-1)}}{\partial w_{22}^{(L-1)}}\right) \text{.}""",
    # line 539: dC_0/da_2^(L-1) as a sum over the output layer
    539: r"""\frac{\partial C_{0}}{\partial a_{2}^{(L-1)}} = \sum_{j=0}^{n-1} \left( \left(\frac{\partial C_{0}}{\partial a_{j}^{(L)}}\right) \left( \frac{\partial a_{j}^{(L)}}{\partial z_{j}^{(L)}}\right) \left( \frac{\partial z_{j}^{(L)}}{\partial a_{2}^{(L-1)}}\right) \right) \text{.}""",
    # line 573: dz_j^(L)/da_2^(L-1) for every j
    573: r"""\frac{\partial z_{j}^{(L)}}{\partial a_{2}^{(L-1)}} = \frac{\partial }{ \partial a_{2}^{(L-1)}} \sum_{k=0}^{n-1}w_{jk}^{(L)}a_{k}^{(L-1)} \text{.}""",
    # line 577: dz_j^(L)/da_2^(L-1) expanded, zeros elided with \cdots
    577: r"""\begin{eqnarray*} \frac{\partial }{\partial a_{2}^{(L-1)}} \sum_{k=0}^{n-1}w_{jk}^{(L)}a_{k}^{(L-1)} &=& \frac{\partial }{\partial a_{2}^{(L-1)}} \left( w_{j0}^{(L)}a_{0}^{(L-1)} +w_{j1}^{(L)}a_{1}^{(L-1)} +w_{j2}^{(L)}a_{2}^{(L-1)} +\cdots +w_{j5}^{(L)}a_{5}^{(L-1)} \right) \\ &=& \frac{\partial}{\partial a_{2}^{(L-1)}}w_{j0}^{(L)}a_{0}^{(L-1)} +\frac{\partial}{\partial a_{2}^{(L-1)}}w_{j1}^{(L)}a_{1}^{(L-1)} +\frac{\partial}{\partial a_{2}^{(L-1)}}w_{j2}^{(L)}a_{2}^{(L-1)} +\cdots +\frac{\partial}{\partial a_{2}^{(L-1)}}w_{j5}^{(L)}a_{5}^{(L-1)} \\ &=& 0 +0 +\frac{\partial}{\partial a_{2}^{(L-1)}}w_{j2}^{(L)}a_{2}^{(L-1)} +\cdots 0 \\ &=& \frac{\partial}{\partial a_{2}^{(L-1)}}w_{j2}^{(L)}a_{2}^{(L-1)} \\ &=& w_{j2}^{(L)} \end{eqnarray*}""",
    # line 595: dC_0/da_2^(L-1): chain rule and result
    595: r"""\begin{eqnarray*} \frac{\partial C_{0}}{\partial a_{2}^{(L-1)}} &=& \sum_{j=0}^{n-1}\left( \left( \frac{\partial C_{0}}{\partial a_{j}^{(L)}}\right) \left( \frac{\partial a_{j}^{(L)}}{\partial z_{j}^{(L)}}\right) \left( \frac{\partial z_{j}^{(L)}}{\partial a_{2}^{(L-1)}}\right) \right) \\ &=& \sum_{j=0}^{n-1}\left( 2\left( a_{j}^{\left( L\right) }-y_{j}\right) \left( g^{\prime \left( L\right) }\left( z_{j}^{\left( L\right) }\right)\right) \left( w_{j2}^{(L)}\right) \right) \end{eqnarray*}""",
    # line 603: chain rule of dC_0/dw_22^(L-1) again
    603: r"""\frac{\partial C_{0}}{\partial w_{22}^{(L-1)}} = \left( \frac{\partial C_{0}}{ \partial a_{2}^{(L-1)}}\right) \left( \frac{\partial a_{2}^{(L-1)}}{\partial z_{2}^{(L-1)}}\right) \left( \frac{\partial z_{2}^{(L-1)}}{\partial w_{22}^{(L-1)}}\right)""",
    # line 623: the batch average of dC/da_2^(L-1)
    623: r"""\frac{\partial C}{\partial a_{2}^{(L-1)}}=\frac{1}{n}\sum_{i=0}^{n-1}\frac{ \partial C_{i}}{\partial a_{2}^{(L-1)}}\text{.}""",
}


@pytest.mark.parametrize("line", sorted(SEED_FORMULAS))
def test_seed_formulas_are_right_as_written(tutorial, line):
    result = check_formula(tutorial, SEED_FORMULAS[line])
    assert result.right, str(result)
    assert result.exit_code == 0
    assert result.sides and all(side["right"] for side in result.sides)


def test_seed_result_is_proven_symbolically_and_numerically(tutorial):
    result = check_formula(tutorial, SEED_FORMULAS[397])
    # both sides after the left: the chain rule of three factors, then the result
    assert [side["symbolic"] for side in result.sides] == [True, True]
    text = str(result)
    assert text.startswith("RIGHT: the formula equals \\frac{\\partial C_{0}}{\\partial "
                           "w_{12}^{(L)}}")
    assert "equal at 3 random points to 20 digits (30-digit arithmetic)" in text
    assert "It holds for any activation g: the network's g is generic." in text


def test_general_formula_with_a_free_index_is_checked_for_every_value(tutorial):
    result = check_formula(tutorial, SEED_FORMULAS[573])
    assert result.right and result.cases == 4  # j = 0..3, the output layer's nodes


# ------------------------------------------------------------------ equivalent forms
EQUIVALENT = [
    # plain text, bare right-hand side with --wrt
    ("2(a_1^(L) - y_1) g'^(L)(z_1^(L)) a_2^(L-1)", "w_12^(L)"),
    # delta notation, absolute layers
    (r"\delta_{1}^{(3)} a_{2}^{(2)}", "w_{12}^{(3)}"),
    # the backward sum in deltas, and written out term by term
    (r"\sum_{j=0}^{n-1} \delta_j^{(L)} w_{j2}^{(L)}", "a_2^(L-1)"),
    ((r"\delta_0^{(L)} w_{02}^{(L)} + \delta_1^{(L)} w_{12}^{(L)} + \delta_2^{(L)} w_{22}^{(L)}"
     r" + \delta_3^{(L)} w_{32}^{(L)}"), "a_2^(L-1)"),
    (r"\delta_0^{(L)} w_{02}^{(L)} + \cdots + \delta_3^{(L)} w_{32}^{(L)}", "a_2^(L-1)"),
    # a hidden weight, the sum nested, with \cdot and unicode ∂
    ((r"∂C_0/∂w_22^(L-1) = \sum_{j=0}^{n-1} 2(a_j^{(L)} - y_j) \cdot g'^{(L)}(z_j^{(L)}) "
     r"w_{j2}^{(L)} \cdot g'^{(L-1)}(z_2^{(L-1)}) a_2^{(L-2)}"), None),
    # z written out as its sum
    ((r"2(g^{(L)}(\sum_{k=0}^{n-1} w_{1k}^{(L)} a_k^{(L-1)}) - y_1) g'^{(L)}(z_1^{(L)}) "
     r"a_2^{(L-1)}"), "w_12^(L)"),
    # the general backprop formula, for every j, k, l the network has
    (r"\frac{\partial C_0}{\partial w_{jk}^{(l)}} = \delta_j^{(l)} a_k^{(l-1)}", None),
]


@pytest.mark.parametrize("formula, wrt", EQUIVALENT)
def test_equivalent_forms_are_right(tutorial, formula, wrt):
    result = check_formula(tutorial, formula, wrt)
    assert result.right, str(result)


SIGMOID = Spec(layers=[3, 6, 6, 4], activation="sigmoid", loss="sse", name="sigmoid")


@pytest.mark.parametrize("power, right", [("2", True), ("{2}", True), ("{3}", False)])
def test_a_function_with_a_number_above_it_is_a_power_as_sympy_typesets_it(power, right):
    """derive's LaTeX writes tanh(z)^2 as \\tanh^{2}(z); check reads it back."""
    tanh = Spec(layers=[2, 3, 2], activation="tanh", loss="sse", name="tanh")
    formula = (rf"2 (a_0^{{(L)}} - y_0) (1 - \tanh^{power}{{\left(z_{{0}}^{{(L)}} \right)}}) "
               r"a_1^{(L-1)}")
    assert check_formula(tanh, formula, "w_01^(L)").right is right


def test_sigma_prime_as_a_times_one_minus_a_is_right_for_sigmoid_only():
    formula = "2(a_1^(L) - y_1) a_1^(L)(1 - a_1^(L)) a_2^(L-1)"
    right = check_formula(SIGMOID, formula, "w_12^(L)")
    assert right.right and right.sides[0]["symbolic"] is None  # exp: numeric decides
    assert right.notes == [("It holds for sigmoid only: with a general g it would not (the "
                           "formula writes g' through the activation itself, e.g. a(1 - a)).")]
    explicit = check_formula(SIGMOID, r"2(a_1^{(L)} - y_1) \sigma'(z_1^{(L)}) a_2^{(L-1)}",
                             "w_12^(L)")
    assert explicit.right
    generic = check_formula(tutorial_spec(), formula, "w_12^(L)")
    assert not generic.right
    assert ("It would be right if the activation were sigmoid, but this network uses the "
            "generic g.") in generic.notes


def test_g_prime_in_a_sigmoid_network_holds_for_any_g():
    result = check_formula(SIGMOID, "2(a_1^(L) - y_1) g'^(L)(z_1^(L)) a_2^(L-1)", "w_12^(L)")
    assert result.right
    assert result.notes == ["It holds for any activation g, not only for sigmoid."]


# ------------------------------------------------------------------ wrong variants
MSE = Spec(layers=[3, 6, 6, 4], activation="g", loss="mse", name="mse")
SUM = Spec(layers=[3, 6, 6, 4], activation="g", loss="sse", reduction="sum", name="sum")
SOFTMAX = Spec(layers=[4, 5, 3], activation=["tanh", "softmax"], loss="cross_entropy",
               bias=True, name="softmax")
T = tutorial_spec()
W12 = "w_12^(L)"
A2 = "a_2^(L-1)"
W22 = "w_22^(L-1)"

WRONG = [
    # (spec, formula, wrt, category, a phrase of the fix)
    (T, "(a_1^(L) - y_1) g'^(L)(z_1^(L)) a_2^(L-1)", W12, "factor", "multiply by 2"),
    (T, "2(y_1 - a_1^(L)) g'^(L)(z_1^(L)) a_2^(L-1)", W12, "factor", "the sign is wrong"),
    (T, "4(a_1^(L) - y_1) g'^(L)(z_1^(L)) a_2^(L-1)", W12, "factor", "divide by 2"),
    (T, (r"\frac{\partial C}{\partial w_{12}^{(L)}} = \sum_{i=0}^{n-1}\frac{\partial C_{i}}"
        r"{\partial w_{12}^{(L)}}"), None, "factor", "n times too large (n = 3, the batch size)"),
    (SUM, (r"\frac{\partial C}{\partial w_{12}^{(L)}} = \frac{1}{n}\sum_{i=0}^{n-1}\frac{"
          r"\partial C_{i}}{\partial w_{12}^{(L)}}"), None, "factor", "n times too small"),
    (MSE, "2(a_1^(L) - y_1) g'^(L)(z_1^(L)) a_2^(L-1)", W12, "factor",
     "the number of output nodes"),
    (SOFTMAX, "y_1 - a_1^(L)", "z_1^(L)", "factor", "the sign is wrong"),
    (T, "2(a_1^(L) - y_1) g'^(L)(z_1^(L)) a_2^(L)", W12, "layer",
     "replace a_2^(L) with a_2^(L-1)"),
    (T, "2(a_1^(L-1) - y_1) g'^(L)(z_1^(L)) a_2^(L-1)", W12, "layer",
     "replace a_1^(L-1) with a_1^(L)"),
    (T, "2(a_1^(L) - y_1) g'(z_1^(L-1)) a_2^(L-1)", W12, "layer",
     "replace z_1^(L-1) with z_1^(L)"),
    (SOFTMAX, "a_1^(L-1) - y_1", "z_1^(L)", "layer", "replace a_1^(L-1) with a_1^(L)"),
    (T, "2(a_1^(L) - y_1) g'^(L)(z_1^(L)) a_1^(L-1)", W12, "index",
     "replace a_1^(L-1) with a_2^(L-1)"),
    (T, "2(a_1^(L) - y_2) g'^(L)(z_1^(L)) a_2^(L-1)", W12, "index", "replace y_2 with y_1"),
    (T, (r"\delta_{0}^{(L)} w_{20}^{(L)} + \delta_{1}^{(L)} w_{12}^{(L)} + \delta_{2}^{(L)} "
        r"w_{22}^{(L)} + \delta_{3}^{(L)} w_{32}^{(L)}"), A2, "index",
     r"replace w_{20}^{(L)} with w_{02}^{(L)} (the indices are swapped)"),
    (T, (r"\left(\sum_{j=0}^{n-1} \delta_j^{(L)} w_{j2}^{(L)}\right) g'^{(L-1)}(z_2^{(L-1)}) "
        r"a_3^{(L-2)}"), W22, "index", r"replace a_3^{(L-2)} with a_{2}^{(L-2)}"),
    (T, "2(a_1^(L) - y_1) g'^(L)(z_1^(L)) z_2^(L-1)", W12, "a_z",
     "replace z_2^(L-1) with a_2^(L-1)"),
    (T, "2(z_1^(L) - y_1) g'^(L)(z_1^(L)) a_2^(L-1)", W12, "a_z",
     "replace z_1^(L) with a_1^(L)"),
    (T, "2(a_1^(L) - y_1) a_2^(L-1)", W12, "g_prime", "multiply by g'^(L)(z_1^(L))"),
    (T, "2(a_1^(L) - y_1) g^(L)(z_1^(L)) a_2^(L-1)", W12, "g_prime", "write g' instead"),
    (T, "2(a_1^(L) - y_1) g'^(L)(z_1^(L)) g'^(L-1)(z_2^(L-1)) a_2^(L-1)", W12, "g_prime",
     "remove the factor g'^(L-1)(z_2^(L-1))"),
    (T, r"\sum_{j=0}^{n-1} 2(a_j^{(L)} - y_j) w_{j2}^{(L)}", A2, "g_prime",
     r"multiply the sum's terms by g^{\prime (L)}\left(z_{j}^{(L)}\right)"),
    (SIGMOID, "2(a_1^(L) - y_1) a_2^(L-1)", W12, "g_prime", "multiply by g'^(L)(z_1^(L))"),
    (T, r"\sum_{j=0}^{n-1} 2(a_j^{(L)} - y_j) g^{\prime (L)}(z_j^{(L)}) w_{2j}^{(L)}", A2,
     "sum", (r"replace w_{2j}^{(L)} with w_{j2}^{(L)} (the sum over j runs over the other "
            "index of w)")),
    (T, r"\sum_{k=0}^{n-1} 2(a_j^{(L)} - y_j) g^{\prime (L)}(z_j^{(L)}) w_{j2}^{(L)}", A2,
     "sum", "the sum runs over k, which its terms do not use, while j is left free"),
]


@pytest.mark.parametrize("spec, formula, wrt, category, fix", WRONG,
                         ids=[f"{n}-{w[3]}" for n, w in enumerate(WRONG)])
def test_wrong_variants_are_rejected_with_the_right_diagnosis(spec, formula, wrt, category,
                                                               fix):
    result = check_formula(spec, formula, wrt)
    assert not result.right and result.exit_code == 1
    assert result.findings, str(result)
    first = result.findings[0]
    assert first.category == category, str(result)
    assert fix in first.fix, first.fix
    # the suggested correction really is right
    corrected = check_formula(spec, first.corrected, wrt) if first.exact else None
    assert corrected is None or corrected.right, first.corrected


def test_counterexample_gives_both_values_and_the_stand_in_g(tutorial):
    result = check_formula(tutorial, "2(a_1^(L) - y_1) g'^(L)(z_1^(L)) a_2^(L)", W12)
    c = result.counterexample
    assert c is not None and c.formula_value != c.true_value
    names = dict(c.values)
    assert {"a_2^(L)", "a_2^(L-1)", "a_1^(L)", "y_1", "z_1^(L)"} <= set(names)
    assert any(g.startswith("g^(L)(x) = ") and "tanh(" in g for g in c.generic)


def test_counterexample_values_are_the_formula_and_the_truth_at_that_point(tutorial):
    from symprop.check.identity import make_probes
    from symprop.derivation import backprop
    from symprop.notation import parse_node_name

    result = check_formula(tutorial, "(a_1^(L) - y_1) g'^(L)(z_1^(L)) a_2^(L-1)", W12)
    engine = backprop(tutorial)
    probe = make_probes(engine, 1)[0]
    truth = probe(engine.gradient(parse_node_name(W12, tutorial.layers)))
    assert float(result.counterexample.true_value) == pytest.approx(float(truth), rel=1e-10)
    assert float(result.counterexample.formula_value) == pytest.approx(float(truth) / 2,
                                                                       rel=1e-10)


def test_markdown_repr(tutorial):
    md = check_formula(tutorial, "2(a_1^(L) - y_1) a_2^(L-1)", W12)._repr_markdown_()
    assert md.startswith("**WRONG**: the formula is not `dC_0/dw_12^(L)`")
    assert "| `2(a_1^(L) - y_1) a_2^(L-1)` | **wrong** | differs |" in md
    assert "1. *a missing or wrong g' factor*: multiply by g'^(L)(z_1^(L))." in md


# ------------------------------------------------------------------ unreadable input
@pytest.mark.parametrize("formula, position, message", [
    ("2(a_1^(L) - y_1) q_1", 17, "cannot read 'q' here"),
    ("a_1^(L) + ", 9, "the formula ends too early"),
    ("(a_1^(L) - y_1)^(2)", 16, "a parenthesised superscript is always a layer"),
    ("g^{2}(z_1^{(L)})", 0, "cannot read the superscript of 'g^{2}'"),
    ("w_{123}^{(L)}", 0, "w takes 2 node indices"),
    ("a_1 + y_1", 3, "a_1 needs a layer superscript"),
    ("__import__('os').system('true')", 0, "cannot read '_' here"),
])
def test_parse_errors_point_at_the_position(formula, position, message):
    with pytest.raises(FormulaError) as info:
        parse_formula(formula)
    assert message in info.value.message
    assert info.value.position == position
    line, column = info.value.message.splitlines()[-2:]
    assert column.index("^") - 4 == position and line.strip() == formula.strip()


@pytest.mark.parametrize("formula, wrt, message", [
    ("a_7^(L)", W12, "a_7^(L) names node 7 of layer 3, which has 4 node(s)"),
    ("2 a_1^(L)", None, "the formula has no left side"),
    ("w_12^(9)", W12, "names layer 9"),
    (r"\sum_{j=0}^{9} a_j^{(L)}", W12, ("j runs over 0..9, but the nodes it indexes are "
                                        "numbered 0..3")),
    (r"\frac{\partial C_0}{\partial w_{12}^{(L)}} = 0", "w_21^(L)", "--wrt names w_21^(L)"),
    ("C_i", W12, "C_0 stands alone only inside a derivative"),
])
def test_meaningless_formulas_are_input_errors(tutorial, formula, wrt, message):
    from symprop.errors import InputError

    with pytest.raises(InputError) as info:
        check_formula(tutorial, formula, wrt)
    assert message in info.value.message


# ------------------------------------------------------------------ command line
def test_cli_exit_codes(tmp_path, capsys):
    spec = "examples/tutorial.toml"
    assert main(["check", spec, "--formula", SEED_FORMULAS[397]]) == 0
    assert capsys.readouterr().out.startswith("RIGHT")
    assert main(["check", spec, "--formula", "2(a_1^(L) - y_1) a_2^(L-1)", "--wrt", W12]) == 1
    out = capsys.readouterr().out
    assert out.startswith("WRONG") and "multiply by g'^(L)(z_1^(L))" in out
    assert main(["check", spec, "--formula", "2(a_1^(L) - y_1", "--wrt", W12]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symprop check: error: --formula: the formula ends too early")
    assert "Traceback" not in err
    assert main(["check", spec, "--formula", "a_1^(L)", "--wrt", "w_99^(L)"]) == 2


def test_cli_reads_the_formula_from_stdin():
    run = subprocess.run([sys.executable, "-m", "symprop", "check", "examples/tutorial.toml",
                          "--formula", "-", "--wrt", W12],
                         input="2(a_1^(L) - y_1) g'^(L)(z_1^(L)) a_2^(L-1)\n",
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("RIGHT: the formula equals dC_0/dw_12^(L)")


# ------------------------------------------------------------------ gradient functions
FUNCTIONS = textwrap.dedent('''
    import numpy as np


    def _forward(params, X):
        A, layers = [X], len([k for k in params if k.startswith("W")])
        for l in range(1, layers + 1):
            Z = A[-1] @ params[f"W{l}"].T + params.get(f"b{l}", 0)
            if l < layers:
                A.append(1 / (1 + np.exp(-Z)))
            else:
                E = np.exp(Z - Z.max(axis=1, keepdims=True))
                A.append(E / E.sum(axis=1, keepdims=True))
        return A


    def right(params, X, Y, scale=1.0, transpose=(), drop=(), flip=None):
        A = _forward(params, X)
        n, layers = X.shape[0], len(A) - 1
        D = (A[-1] - Y) / n * scale
        out = {}
        for l in range(layers, 0, -1):
            out[f"W{l}"] = D.T @ A[l - 1]
            out[f"b{l}"] = D.sum(axis=0)
            if l > 1:
                D = (D @ params[f"W{l}"]) * A[l - 1] * (1 - A[l - 1])
        for key in transpose:
            out[key] = out[key].T
        for key in drop:
            del out[key]
        if flip:
            out[flip][0, 1] += 0.5
        return out


    def summed(params, X, Y):
        return right(params, X, Y, scale=X.shape[0])


    def transposed(params, X, Y):
        return right(params, X, Y, transpose=["W1"])


    def missing(params, X, Y):
        return right(params, X, Y, drop=["b2"])


    def one_entry(params, X, Y):
        return right(params, X, Y, flip="W2")


    def negated(params, X, Y):
        return right(params, X, Y, scale=-1.0)


    def broken(params, X, Y):
        return params["W7"]


    def not_a_dict(params, X, Y):
        return [1, 2]
''')

SIGMOID_CE = Spec(layers=[4, 5, 3], activation=["sigmoid", "softmax"], loss="cross_entropy",
                  bias=True, name="sigmoid-ce")


@pytest.fixture
def functions(tmp_path):
    path = tmp_path / "grads.py"
    path.write_text(FUNCTIONS)
    return str(path)


def test_function_right(functions):
    result = check_function(SIGMOID_CE, f"{functions}:right")
    assert result.right and result.exit_code == 0, str(result)
    assert [p.name for p in result.parameters] == ["W1", "b1", "W2", "b2"]
    assert all(p.max_abs_error < 1e-12 for p in result.parameters)


@pytest.mark.parametrize("name, parameter, finding", [
    ("summed", "W1", ("is 6 times too large, n = the batch size: the spec's reduction is the "
                     "mean over the batch, so divide by n")),
    ("transposed", "W1", ("transposed: shape (4, 5) is (n_(l-1), n_l); return its transpose, "
                         "shape (5, 4)")),
    ("missing", "b2", "missing from the returned dict"),
    ("one_entry", "W2", "1 of 15 entries differ: (0, 1)"),
    ("negated", "b1", "has the wrong sign"),
])
def test_function_mistakes_are_explained(functions, name, parameter, finding):
    result = check_function(SIGMOID_CE, f"{functions}:{name}")
    assert not result.right and result.exit_code == 1
    verdict = next(p for p in result.parameters if p.name == parameter)
    assert not verdict.right
    assert any(finding in f for f in verdict.findings), verdict.findings


def test_function_that_raises_or_returns_junk(functions):
    broken = check_function(SIGMOID_CE, f"{functions}:broken")
    assert broken.exit_code == 1 and "calling it raised KeyError: 'W7'" in broken.problem
    junk = check_function(SIGMOID_CE, f"{functions}:not_a_dict")
    assert junk.exit_code == 1 and junk.problem.startswith("it returned list, not a dict")


def test_function_cli(functions, tmp_path, capsys):
    spec = tmp_path / "net.toml"
    spec.write_text('layers = [4, 5, 3]\nactivation = ["sigmoid", "softmax"]\n'
                    'loss = "cross_entropy"\nbias = true\nname = "sigmoid-ce"\n')
    assert main(["check", str(spec), "--function", f"{functions}:right"]) == 0
    assert capsys.readouterr().out.startswith("RIGHT:")
    assert main(["check", str(spec), "--function", f"{functions}:transposed"]) == 1
    out = capsys.readouterr().out
    assert "WRONG  W1   shape (4, 5)" in out
    assert main(["check", str(spec), "--function", f"{functions}:nope"]) == 2
    assert "has no function 'nope'" in capsys.readouterr().err
    assert main(["check", str(spec), "--function", "no/such/file.py:f"]) == 2
    assert main(["check", str(spec), "--function", "grads"]) == 2
    assert main(["check", "examples/tutorial.toml", "--function", f"{functions}:right"]) == 2
    assert "generic" in capsys.readouterr().err


# ------------------------------------------------------------------ fuzz
PIECES = ["a_1^{(L)}", "w_{12}^{(L)}", "z_j^{(L)}", "y_1", "x_0", "\\delta_2^{(L-1)}", "g'^(L)",
          "g^{(L)}", "\\sigma", "(", ")", "{", "}", "\\left(", "\\right)", "+", "-", "*", "/",
          "^", "2", "0.5", "n", "\\sum_{j=0}^{n-1}", "\\frac", "\\partial", "C_0", "=", "\\cdots",
          " ", "a_j^{(L)}", "w_{j2}^{(L)}", "\\cdot", "e", "log", "exp", "q", "_", "'", "$",
          "a^L_1", "w^{L-1}_{12}", "\\delta^{L}_j", "^L", "^{l-1}", "^2"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=14).map("".join))
def test_any_text_is_read_or_refused_with_a_position(text):
    from symprop.errors import InputError

    try:
        result = check_formula(T, text, W12)
    except InputError as exc:
        assert exc.message and "Traceback" not in exc.message
        if isinstance(exc, FormulaError) and exc.position is not None:
            assert 0 <= exc.position <= len(text)
    else:
        assert result.exit_code in (0, 1)


@pytest.mark.parametrize("formula", [r"\log(-1)", r"\sqrt{-1}", r"\log(a_1^{(L)} - 5)",
                                     "(-2)^{0.5}"])
def test_a_formula_undefined_at_the_points_is_wrong_not_a_crash(formula):
    result = check_formula(T, formula, W12)
    assert result.exit_code == 1 and result.counterexample.formula_value == "undefined"


def test_a_negative_base_to_a_real_power_at_some_point_is_wrong_not_a_crash():
    # found by the fuzz test: a_1^(L) < 0 at a float probe of the diagnosis made a complex
    result = check_formula(T, "a_1^{(L)}^a_1^{(L)}", W12)
    assert result.exit_code == 1 and result.counterexample is not None


@pytest.mark.parametrize("formula, message", [
    ((r"\sum_{i=0}^{n-1}\sum_{j=0}^{n-1}\sum_{k=0}^{n-1}\sum_{m=0}^{n-1}\sum_{p=0}^{n-1}"
     r"\sum_{q=0}^{n-1} w_{ij}^{(L-1)} w_{km}^{(L-1)} w_{pq}^{(L-1)}"),
     "the sums write out more than 20000 terms"),
    ("10^{10^{10}}", "the exponent 10000000000 is too large"),
    ("(" * 70 + "1" + ")" * 70, "the formula nests brackets 70 deep; the limit is 60"),
    ("a_1^{(L)}" * 600, "the formula is 5400 characters long; the limit is 5000"),
    (r"\frac{1}{a_1^{(L)} - a_1^{(L)}}", "division by zero"),
])
def test_formulas_too_big_to_check_are_refused(formula, message):
    from symprop.errors import InputError

    with pytest.raises(InputError) as info:
        check_formula(T, formula, W12)
    assert message in info.value.message


# ------------------------------------------------------------------ Nielsen's book
#: A sigmoid network with biases, the network of Nielsen's chapter 2.
NIELSEN = Spec(layers=[3, 4, 4, 3], activation="sigmoid", loss="sse", bias=True,
               name="nielsen")
#: His four equations of backpropagation, in his spelling: superscript first, unparenthesised.
BP = {
    "BP1": r"\delta^L_j = \frac{\partial C}{\partial a^L_j} \sigma'(z^L_j)",
    "BP2": r"\delta^l_j = \sum_k w^{l+1}_{kj} \delta^{l+1}_k \sigma'(z^l_j)",
    "BP3": r"\frac{\partial C}{\partial b^l_j} = \delta^l_j",
    "BP4": r"\frac{\partial C}{\partial w^l_{jk}} = a^{l-1}_k \delta^l_j",
}
NAMES_SIGMA = ("It holds for sigmoid only because it names \\sigma itself: with g in place of "
               "\\sigma it holds for any activation g.")


def _nielsen_toml(tmp_path, activation="sigmoid"):
    path = tmp_path / f"{activation}.toml"
    path.write_text(f'layers = [3, 4, 4, 3]\nactivation = "{activation}"\nloss = "sse"\n'
                    "bias = true\n")
    return str(path)


@pytest.mark.parametrize("name", BP)
def test_nielsens_four_equations_in_his_spelling_are_right(name):
    result = check_formula(NIELSEN, BP[name])
    assert result.right and result.exit_code == 0, str(result)
    # BP1 and BP2 name sigma; BP3 and BP4 hold whatever the activation
    assert result.notes == ([NAMES_SIGMA] if name in ("BP1", "BP2") else
                            ["It holds for any activation g, not only for sigmoid."])


def test_nielsens_equations_on_the_command_line(tmp_path, capsys):
    spec = _nielsen_toml(tmp_path)
    for formula in BP.values():
        assert main(["check", spec, "--formula", formula]) == 0
    assert capsys.readouterr().out.count("RIGHT") == 4
    swapped = r"\frac{\partial C}{\partial w^l_{jk}} = a^{l-1}_j \delta^l_k"
    assert main(["check", spec, "--formula", swapped]) == 1
    assert main(["check", _nielsen_toml(tmp_path, "relu"), "--formula", swapped]) == 1
    capsys.readouterr()
    assert main(["check", spec, "--formula", r"\delta^2_j = 1"]) == 2
    err = capsys.readouterr().err
    assert "a number in a node's superscript is a power, not a layer" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("text, layer, nielsen", [
    (r"\delta^L_j", ("L", 0), True),
    ("w^l_{jk}", ("l", 0), True),
    ("a^{l-1}_k", ("l", -1), True),
    ("b^{L - 2}_0", ("L", -2), True),
    ("delta^{l+1}_k", ("l", 1), True),
    ("a^{(2)}_k", (None, 2), False),
    ("a_k^{(l-1)}", ("l", -1), False),
])
def test_nielsens_spelling_reads_the_layer(text, layer, nielsen):
    ref = parse_formula(text).sides[0]
    assert (ref.layer.base, ref.layer.offset) == layer and ref.nielsen is nielsen


@pytest.mark.parametrize("text, position, message, hint", [
    ("a^2_j", 0, "a number in a node's superscript is a power, not a layer",
     "For a layer write it in parentheses, a^{(2)}_j or a_j^{(2)}"),
    ("2 a_j^L", 6, "cannot read 'L' here",
     ("A layer after the subscript is parenthesised, a_j^{(L)}; unparenthesised, write it "
     "first as Nielsen does: a^L_j")),
])
def test_nielsens_spelling_refuses_a_number_or_a_late_layer(text, position, message, hint):
    with pytest.raises(FormulaError) as info:
        parse_formula(text)
    assert info.value.position == position
    assert info.value.message.startswith(message) and hint in info.value.message


def test_c_in_index_notation_is_the_loss_of_one_sample():
    # dC/da is C_0's (index notation); seed 000's C = 1/n sum_i C_i stays the batch loss
    assert check_formula(NIELSEN, r"\frac{\partial C}{\partial w_{12}^{(L)}} = "
                                  r"\frac{\partial C_0}{\partial w_{12}^{(L)}}").right
    assert check_formula(NIELSEN, "dC/da_1^(L) = 2(a_1^(L) - y_1)").right
    assert check_formula(NIELSEN, SEED_FORMULAS[405]).right
    assert not check_formula(NIELSEN, r"\frac{\partial C}{\partial w_{12}^{(L)}} = "
                                      r"\sum_{i=0}^{n-1}\frac{\partial C_{i}}"
                                      r"{\partial w_{12}^{(L)}}").right


#: (formula, category, the fix, the corrected formula): the issue's diagnoses, exactly.
NIELSEN_WRONG = [
    # BP4 with j and k swapped: the swap, not an activation remark
    (r"\frac{\partial C}{\partial w^l_{jk}} = a^{l-1}_j \delta^l_k", "index",
     ("swap the letters j and k throughout (as written it is the entry of the transposed "
     "matrix)"), r"\frac{\partial C}{\partial w^l_{jk}} = a^{l-1}_k \delta^l_j"),
    # g' of the wrong layer, in seed spelling and in Nielsen's
    (r"\delta_j^{(l)} = \sum_k w_{kj}^{(l+1)} \delta_k^{(l+1)} \sigma'(z_j^{(l+1)})", "layer",
     "replace z_j^{(l+1)} with z_{j}^{(l)} (g' of layer l, not l+1)",
     r"\delta_j^{(l)} = \sum_k w_{kj}^{(l+1)} \delta_k^{(l+1)} \sigma'(z_{j}^{(l)})"),
    (r"\delta^l_j = \sum_k w^{l+1}_{kj} \delta^{l+1}_k \sigma'(z^{l+1}_j)", "layer",
     "replace z^{l+1}_j with z^l_j (g' of layer l, not l+1)",
     r"\delta^l_j = \sum_k w^{l+1}_{kj} \delta^{l+1}_k \sigma'(z^l_j)"),
    # BP1 and BP2 without sigma': g' over the formula's own letters, not the failing node
    (r"\delta^L_j = \frac{\partial C}{\partial a^L_j}", "g_prime",
     r"multiply by g^{\prime (L)}\left(z^L_j\right)",
     r"\delta^L_j = \frac{\partial C}{\partial a^L_j} g^{\prime (L)}\left(z^L_j\right)"),
    ("delta_j^(L) = dC/da_j^(L)", "g_prime", "multiply by g'^(L)(z_j^(L))",
     "delta_j^(L) = dC/da_j^(L) g'^(L)(z_j^(L))"),
    (r"\delta^l_j = \sum_k w^{l+1}_{kj} \delta^{l+1}_k", "g_prime",
     r"multiply by g^{\prime (l)}\left(z^l_j\right)",
     (r"\delta^l_j = \left(\sum_k w^{l+1}_{kj} \delta^{l+1}_k\right) "
      r"g^{\prime (l)}\left(z^l_j\right)")),
]


@pytest.mark.parametrize("formula, category, fix, corrected", NIELSEN_WRONG)
def test_nielsens_equations_with_a_mistake_are_diagnosed(formula, category, fix, corrected):
    result = check_formula(NIELSEN, formula)
    assert not result.right and result.exit_code == 1
    first = result.findings[0]
    assert (first.category, first.fix, first.corrected) == (category, fix, corrected), \
        str(result)
    # no remark about another activation, except identity's g' = 1 where g' is missing
    assert result.notes == ([] if category != "g_prime" else [
        "It would be right if the activation were identity, but this network uses sigmoid."])
    assert check_formula(NIELSEN, corrected).right  # the correction, re-checked


def test_a_formula_that_writes_g_prime_through_a_keeps_its_note():
    # sigma'(z) named: holds for any g once written with g; a(1 - a): only for the sigmoid
    named = check_formula(SIGMOID, r"2(a_1^{(L)} - y_1) \sigma'(z_1^{(L)}) a_2^{(L-1)}",
                          "w_12^(L)")
    assert named.right and named.notes == [NAMES_SIGMA]
    plain = check_formula(SIGMOID, "2(a_1^(L) - y_1) sigma'(z_1^(L)) a_2^(L-1)", "w_12^(L)")
    assert plain.notes == [("It holds for sigmoid only because it names sigma itself: with g "
                           "in place of sigma it holds for any activation g.")]
    through_a = check_formula(SIGMOID, r"\delta^L_j = \frac{\partial C}{\partial a^L_j} "
                                       r"a^L_j (1 - a^L_j)")
    assert through_a.right and through_a.notes == [
        ("It holds for sigmoid only: with a general g it would not (the formula writes g' "
        "through the activation itself, e.g. a(1 - a)).")]


# ------------------------------------------------------------------ counterexamples
def _shown(counterexample) -> dict[str, float]:
    return {name: float(value) for name, value in counterexample.values}


def test_a_counterexample_recomputes_from_the_values_it_prints():
    # BP1 without sigma': formula 2(a - y), truth 2(a - y) sigma'(z), C meaning C_0
    import math

    result = check_formula(NIELSEN, r"\delta^L_j = \frac{\partial C}{\partial a^L_j}")
    c = result.counterexample
    j = int(c.case.removeprefix("j = "))
    v = _shown(c)
    a, y, z = v[f"a_{j}^(L)"], v[f"y_{j}"], v[f"z_{j}^(L)"]
    sigma = 1 / (1 + math.exp(-z))
    assert float(c.formula_value) == pytest.approx(2 * (a - y), rel=1e-10)
    assert float(c.true_value) == pytest.approx(2 * (a - y) * sigma * (1 - sigma), rel=1e-10)
    assert a == pytest.approx(sigma, rel=1e-10)


def test_a_counterexample_with_the_generic_g_prints_g_prime_and_its_stand_in(tutorial):
    import math
    import re

    result = check_formula(tutorial, "(a_1^(L) - y_1) g'^(L)(z_1^(L)) a_2^(L-1)", W12)
    c = result.counterexample
    v = _shown(c)
    formula = (v["a_1^(L)"] - v["y_1"]) * v["g'^(L)(z_1^(L))"] * v["a_2^(L-1)"]
    assert float(c.formula_value) == pytest.approx(formula, rel=1e-10)
    assert float(c.true_value) == pytest.approx(2 * formula, rel=1e-10)
    alpha, beta, sign, gamma, eps = re.fullmatch(
        r"g\^\(L\)\(x\) = (\S+) tanh\((\S+) x ([-+]) (\S+)\) \+ (\S+) x", c.generic[0]).groups()
    alpha, beta, gamma, eps = map(float, (alpha, beta, sign + gamma, eps))
    prime = alpha * beta / math.cosh(beta * v["z_1^(L)"] + gamma) ** 2 + eps
    assert prime == pytest.approx(v["g'^(L)(z_1^(L))"], rel=1e-10)


def test_a_counterexample_of_a_hidden_weight_prints_the_deltas_it_reads(tutorial):
    result = check_formula(tutorial, r"\frac{\partial C_0}{\partial w_{jk}^{(l)}} = "
                                     r"\delta_k^{(l)} a_j^{(l-1)}")
    c = result.counterexample
    case = dict(part.split(" = ") for part in c.case.split(", "))
    j, k, layer = int(case["j"]), int(case["k"]), int(case["l"])
    v = _shown(c)
    # the case numbers the layer letter (l = 1), so the names are absolute as well
    label = {3: "3", 2: "2", 1: "1", 0: "0"}
    below = v.get(f"a_{j}^({label[layer - 1]})", v.get(f"x_{j}"))
    assert float(c.formula_value) == pytest.approx(v[f"delta_{k}^({label[layer]})"] * below,
                                                   rel=1e-10)
    if layer < 3:  # the truth a_k^(l-1) g'(z_j^(l)) sum_m delta_m^(l+1) w_mj^(l+1)
        above = sum(v[f"delta_{m}^({label[layer + 1]})"] * v[f"w_{m}{j}^({label[layer + 1]})"]
                    for m in range(tutorial.layers[layer + 1]))
        prime = v[f"g'^({label[layer]})(z_{j}^({label[layer]}))"]
        inputs = v.get(f"a_{k}^({label[layer - 1]})", v.get(f"x_{k}"))
        assert float(c.true_value) == pytest.approx(inputs * prime * above, rel=1e-9)


def test_a_counterexample_of_the_batch_prints_every_sample(tutorial):
    result = check_formula(tutorial, r"\frac{\partial C}{\partial w_{12}^{(L)}} = "
                                     r"\sum_{i=0}^{n-1}\frac{\partial C_{i}}"
                                     r"{\partial w_{12}^{(L)}}")
    c = result.counterexample
    assert dict(c.values) == {"n": "3"} and [s for s, _ in c.samples] == [0, 1, 2]
    terms = []
    for _, pairs in c.samples:
        v = {name: float(value) for name, value in pairs}
        terms.append(2 * (v["a_1^(L)"] - v["y_1"]) * v["g'^(L)(z_1^(L))"] * v["a_2^(L-1)"])
    assert float(c.formula_value) == pytest.approx(sum(terms), rel=1e-10)
    assert float(c.true_value) == pytest.approx(sum(terms) / 3, rel=1e-10)
    lines = c.where()
    assert lines[0] == "where n = 3" and lines[3].startswith("sample 1: a_2^(L-1) = ")
    assert all(len(line) <= 88 for line in lines)
    assert "\n  sample 1: a_2^(L-1) = " in str(result)
