"""``symprop check`` on formulas in seed 001's matrix notation (issue 18), general formulas
over layers, and the swapped-letters index formula."""

from __future__ import annotations

from pathlib import Path

import pytest

from symprop import Spec
from symprop.check import check_formula
from symprop.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SEED001 = Spec.from_toml(EXAMPLES / "seed001.toml")
#: A 3-layer softmax network: widths 4-5-4-3, so no two shapes agree by accident.
SOFT = Spec(layers=[4, 5, 4, 3], activation=["tanh", "sigmoid", "softmax"],
            loss="cross_entropy", bias=True, name="soft3")

#: Seed 001's five steps (the loss layer's dC/dA^(L), then per layer dW, db, dA^(l-1) and
#: Delta^(l-1)), in LaTeX and in plain text.
FIVE_STEPS = {
    "seed001": (SEED001, [
        r"\frac{\partial C}{\partial A^{(L)}} = \frac{2}{n} (A^{(L)} - Y)",
        r"\frac{\partial C}{\partial W^{(L)}} = \Delta^{(L)\top} A^{(L-1)}",
        r"\frac{\partial C}{\partial b^{(L)}} = \mathbf{1}^\top \Delta^{(L)}",
        r"\frac{\partial C}{\partial A^{(L-1)}} = \Delta^{(L)} W^{(L)}",
        r"\Delta^{(L-1)} = \frac{\partial C}{\partial A^{(L-1)}} \odot \sigma'(Z^{(L-1)})",
        r"\frac{\partial C}{\partial W^{(1)}} = \Delta^{(1)\top} X",
        "dC/dA^(2) = 2/n (A^(2) - Y)",
        "dC/dW^(2) = Delta^(2)^T A^(1)",
        "dC/db^(2) = ones^T Delta^(2)",
        "dC/dA^(1) = Delta^(2) W^(2)",
        "Delta^(1) = dC/dA^(1) * A^(1) * (1 - A^(1))",
        "dC/dW^(1) = (Delta^(2) W^(2) * A^(1) * (1 - A^(1)))^T X",
    ]),
    "softmax": (SOFT, [
        r"\Delta^{(L)} = \frac{1}{n} (A^{(L)} - Y)",
        r"\frac{\partial C}{\partial W^{(L)}} = \Delta^{(L)\top} A^{(L-1)}",
        r"\frac{\partial C}{\partial b^{(L)}} = \sum_{i=1}^{n} \Delta^{(L)}",
        r"\frac{\partial C}{\partial A^{(L-1)}} = \Delta^{(L)} \cdot W^{(L)}",
        r"\Delta^{(L-1)} = (\Delta^{(L)} W^{(L)}) \circ A^{(L-1)} \circ (1 - A^{(L-1)})",
        r"\Delta^{(L-2)} = (\Delta^{(L-1)} W^{(L-1)}) \odot (1 - A^{(L-2)} \odot A^{(L-2)})",
        "Delta^(3) = (A^(3) - Y)/n",
        "dC/dW^(3) = Delta^(3)' @ A^(2)",
        "dC/db^(1) = 1^T Delta^(1)",
        "dC/dA^(2) = Delta^(3) W^(3)",
        "Delta^(1) = dC/dA^(1) * (1 - A^(1) * A^(1))",
        "dC/dW^(1) = Delta^(1)^T X",
    ]),
}


@pytest.mark.parametrize("spec, formula", [(spec, f) for spec, forms in FIVE_STEPS.values()
                                           for f in forms])
def test_seed_001s_steps_are_right(spec, formula):
    result = check_formula(spec, formula)
    assert result.right, str(result)
    assert result.shapes and "=" in result.shapes[0]


#: (formula, category, a fragment of the fix, the corrected formula) -- one or more per row of
#: the mistakes table, across layers.
WRONG = [
    (r"\frac{\partial C}{\partial W^{(L)}} = A^{(L-1)\top} \Delta^{(L)}", "transpose",
     "the result is transposed",
     r"\frac{\partial C}{\partial W^{(L)}} = \Delta^{(L)\top} A^{(L-1)}"),
    (r"\frac{\partial C}{\partial W^{(1)}} = X^\top \Delta^{(1)}", "transpose",
     "the result is transposed", r"\frac{\partial C}{\partial W^{(1)}} = \Delta^{(1)\top} X"),
    (r"\frac{\partial C}{\partial A^{(L-1)}} = \Delta^{(L)} W^{(L)\top}", "transpose",
     r"transpose W^{(L)\top}", r"\frac{\partial C}{\partial A^{(L-1)}} = \Delta^{(L)} W^{(L)}"),
    (r"\frac{\partial C}{\partial A^{(L-1)}} = W^{(L)} \Delta^{(L)}", "order",
     "the product's order", r"\frac{\partial C}{\partial A^{(L-1)}} = \Delta^{(L)} W^{(L)}"),
    (r"\Delta^{(L-1)} = \Delta^{(L)} W^{(L)}", "g_prime", "multiply entrywise by",
     r"\Delta^{(L-1)} = \Delta^{(L)} W^{(L)} \odot g^{\prime (L-1)}\left(Z^{(L-1)}\right)"),
    (r"\Delta^{(L-2)} = \Delta^{(L-1)} W^{(L-1)}", "g_prime", "multiply entrywise by",
     r"\Delta^{(L-2)} = \Delta^{(L-1)} W^{(L-1)} \odot g^{\prime (L-2)}\left(Z^{(L-2)}\right)"),
    (r"\Delta^{(L-2)} = (\Delta^{(L-1)} W^{(L-1)}) \odot g'^{(L-1)}(Z^{(L-1)})", "g_prime",
     "g' of layer L-2", (r"\Delta^{(L-2)} = (\Delta^{(L-1)} W^{(L-1)}) \odot "
                        r"g^{\prime (L-2)}\left(Z^{(L-2)}\right)")),
    (r"\Delta^{(L-1)} = (\Delta^{(L)} W^{(L)}) \odot g'^{(L-1)}(A^{(L-1)})", "a_z",
     "g' reads Z^{(L-1)}", r"\Delta^{(L-1)} = (\Delta^{(L)} W^{(L)}) \odot g'^{(L-1)}(Z^{(L-1)})"),
    ("Delta^(1) = (Delta^(2) W^(2)) * g'^(1)(A^(1))", "a_z", "g' reads Z^(1)",
     "Delta^(1) = (Delta^(2) W^(2)) * g'^(1)(Z^(1))"),
    (r"\Delta^{(L-1)} = (\Delta^{(L)} W^{(L)}) g'^{(L-1)}(Z^{(L-1)})", "product",
     "an entrywise product",
     r"\Delta^{(L-1)} = (\Delta^{(L)} W^{(L)}) \odot g'^{(L-1)}(Z^{(L-1)})"),
    (r"\frac{\partial C}{\partial W^{(L)}} = \Delta^{(L)\top} \odot A^{(L-1)}", "product",
     "a matrix product", r"\frac{\partial C}{\partial W^{(L)}} = \Delta^{(L)\top} A^{(L-1)}"),
    (r"\Delta^{(L)} = A^{(L)} - Y", "factor", "divide by n",
     r"\Delta^{(L)} = \frac{1}{n} \left(A^{(L)} - Y\right)"),
    (r"\frac{\partial C}{\partial W^{(L)}} = \frac{1}{n} \Delta^{(L)\top} A^{(L-1)}", "factor",
     r"remove \frac{1}{n}", r"\frac{\partial C}{\partial W^{(L)}} = \Delta^{(L)\top} A^{(L-1)}"),
    (r"\frac{\partial C}{\partial b^{(L)}} = \Delta^{(L)} \mathbf{1}", "axis",
     "sum the columns", r"\frac{\partial C}{\partial b^{(L)}} = \mathbf{1}^\top \Delta^{(L)}"),
    ("dC/dW^(2) = Delta^(2)^T A^(2)", "layer", "A^(1), not A^(2)",
     "dC/dW^(2) = Delta^(2)^T A^(1)"),
    ("dC/dW^(1) = (Delta^(2) W^(2) * A^(1) * (1 - A^(1))) X", "transpose", "transpose (",
     "dC/dW^(1) = (Delta^(2) W^(2) * A^(1) * (1 - A^(1)))^T X"),
    (r"\frac{\partial C}{\partial W^{(l)}} = A^{(l-1)\top} \Delta^{(l)}", "transpose",
     "the result is transposed",
     r"\frac{\partial C}{\partial W^{(l)}} = \Delta^{(l)\top} A^{(l-1)}"),
    # g' missing inside the transposed factor (it was tried around the whole side only)
    (r"dC/dW^(2) = (\Delta^(3) W^(3))^T A^(1)", "g_prime",
     r"multiply (\Delta^(3) W^(3)) entrywise by g^{\prime (2)}\left(Z^{(2)}\right)",
     r"dC/dW^(2) = (\Delta^(3) W^(3) \odot g^{\prime (2)}\left(Z^{(2)}\right))^T A^(1)"),
    ("dC/dW^(1) = (Delta^(2) W^(2))^T X", "g_prime",
     "multiply (Delta^(2) W^(2)) entrywise by g'^(1)(Z^(1))",
     "dC/dW^(1) = (Delta^(2) W^(2) * g'^(1)(Z^(1)))^T X"),
    (r"\frac{\partial C}{\partial W^{(l)}} = (\Delta^{(l+1)} W^{(l+1)})^\top A^{(l-1)}",
     "g_prime",
     r"multiply (\Delta^{(l+1)} W^{(l+1)}) entrywise by g^{\prime (l)}\left(Z^{(l)}\right)",
     (r"\frac{\partial C}{\partial W^{(l)}} = (\Delta^{(l+1)} W^{(l+1)} \odot "
      r"g^{\prime (l)}\left(Z^{(l)}\right))^\top A^{(l-1)}")),
    # g' missing after the first factors of a product, and of the wrong letter layer
    ("Delta^(1) = Delta^(2) W^(2)", "g_prime", "multiply entrywise by g'^(1)(Z^(1))",
     "Delta^(1) = Delta^(2) W^(2) * g'^(1)(Z^(1))"),
    (r"\Delta^{(l)} = (\Delta^{(l+1)} W^{(l+1)}) \odot g'^{(l+1)}(Z^{(l+1)})", "g_prime",
     "g' of layer l, not l+1",
     r"\Delta^{(l)} = (\Delta^{(l+1)} W^{(l+1)}) \odot g^{\prime (l)}\left(Z^{(l)}\right)"),
]


@pytest.mark.parametrize("formula, category, fix, corrected", WRONG)
def test_matrix_mistakes_are_found_and_their_correction_is_right(formula, category, fix,
                                                                 corrected):
    spec = SEED001 if "A^(1) * (1 - A^(1))" in formula else SOFT
    result = check_formula(spec, formula)
    assert not result.right
    found = [f for f in result.findings if f.category == category and fix in f.fix]
    assert found, (formula, [(f.category, f.fix) for f in result.findings], result.problem)
    assert found[0].corrected == corrected
    assert check_formula(spec, corrected).right  # the correction, re-checked


@pytest.mark.parametrize("formula, category, fix, corrected",
                         [w for w in WRONG if w[2].startswith("multiply") and "Z^" in w[2]])
def test_a_missing_g_prime_is_the_first_finding_word_for_word(formula, category, fix,
                                                              corrected):
    result = check_formula(SOFT, formula)
    assert [(f.category, f.fix, f.corrected) for f in result.findings] == [
        (category, fix, corrected)]
    assert "No single usual mistake" not in str(result)


# ------------------------------------------------------------------ shapes, not broadcasting
@pytest.mark.parametrize("formula, problem, corrected", [
    # seed 001: (batch, 1) entrywise (1, 3) broadcasts to the matrix product's numbers
    (r"\frac{\partial C}{\partial A^{(1)}} = \Delta^{(2)} \odot W^{(2)}",
     (r"an entrywise product needs equal shapes: \Delta^{(2)} is (n, n_L) = (4, 1); W^{(2)} is "
     r"(n_L, n_{L-1}) = (1, 3)"),
     r"\frac{\partial C}{\partial A^{(1)}} = \Delta^{(2)} W^{(2)}"),
    ("dC/dA^(1) = Delta^(2) * W^(2)",
     ("an entrywise product needs equal shapes: Delta^(2) is (n, n_L) = (4, 1); W^(2) is "
     "(n_L, n_{L-1}) = (1, 3)"), "dC/dA^(1) = Delta^(2) W^(2)"),
    ("dC/dA^(1) = Delta^(2) + W^(2)",
     ("a sum of matrices needs equal shapes: Delta^(2) is (n, n_L) = (4, 1); W^(2) is "
     "(n_L, n_{L-1}) = (1, 3)"), None),
    # a bias adds to every row as a row, not as a column
    (r"A^{(1)} = \sigma(X W^{(1)\top} + b^{(1)\top})",
     (r"a sum of matrices needs equal shapes: X W^{(1)\top} is (n, n_{L-1}) = (4, 3); "
     r"b^{(1)\top} is (n_{L-1}, 1) = (3, 1)"), r"A^{(1)} = \sigma(X W^{(1)\top} + b^{(1)})"),
])
def test_entrywise_products_and_sums_need_equal_shapes(capsys, formula, problem, corrected):
    result = check_formula(SEED001, formula)
    assert not result.right and result.exit_code == 1
    assert result.problem == problem
    assert result.shapes[1].endswith(": the shapes inside do not fit")
    assert [f.corrected for f in result.findings][:1] == ([corrected] if corrected else [])
    if corrected:
        assert check_formula(SEED001, corrected).right
    assert main(["check", str(EXAMPLES / "seed001.toml"), "--formula", formula]) == 1
    assert problem in capsys.readouterr().out


def test_a_bias_row_adds_to_every_row():
    assert check_formula(SEED001, r"A^{(1)} = \sigma(X W^{(1)\top} + b^{(1)})").right
    assert check_formula(SEED001, "A^(1) = sigma(b^(1) + X W^(1)^T)").right


def test_shapes_that_do_not_fit_name_both_shapes(capsys):
    formula = r"\frac{\partial C}{\partial W^{(1)}} = (\Delta^{(2)} W^{(2)}) X"
    result = check_formula(SOFT, formula)
    assert not result.right
    assert result.problem == (
        r"a matrix product needs the columns of the first (n_{L-2}) to match the rows of the "
        r"second (n): (\Delta^{(2)} W^{(2)}) is (n, n_{L-2}) = (2, 5); X is (n, n_0) = (2, 4)")
    transposed = check_formula(SOFT, r"\frac{\partial C}{\partial W^{(L)}} = "
                                     r"A^{(L-1)\top} \Delta^{(L)}")
    assert transposed.problem == (r"A^{(L-1)\top} \Delta^{(L)} is (n_{L-1}, n_L) = (4, 3), the "
                                  r"left side (n_L, n_{L-1}) = (3, 4): transposed")
    assert transposed.shapes == [r"\frac{\partial C}{\partial W^{(L)}}: (n_L, n_{L-1}) = (3, 4)",
                                 r"A^{(L-1)\top} \Delta^{(L)}: (n_{L-1}, n_L) = (4, 3)"]
    markdown = transposed.render("markdown")
    assert "**Shapes**" in markdown and r"`A^{(L-1)\top} \Delta^{(L)}: (n_{L-1}, n_L) = (4, 3)`" \
        in markdown


def test_the_command_line_exit_codes(capsys):
    spec = str(EXAMPLES / "seed001.toml")
    assert main(["check", spec, "--formula",
                 r"\frac{\partial C}{\partial W^{(L)}} = \Delta^{(L)\top} A^{(L-1)}"]) == 0
    assert main(["check", spec, "--formula",
                 r"\frac{\partial C}{\partial W^{(L)}} = A^{(L-1)\top} \Delta^{(L)}"]) == 1
    out = capsys.readouterr().out
    assert "corrected: \\frac{\\partial C}{\\partial W^{(L)}} = \\Delta^{(L)\\top} A^{(L-1)}" \
        in out and "Shapes (n is the batch" in out
    assert main(["check", spec, "--formula", r"\Delta^{(L)} W^{(L"]) == 2
    assert main(["check", spec, "--debug", "--formula", "Delta^(2) = Delta^(2)"]) == 0


@pytest.mark.parametrize("formula, message, at", [
    (r"\frac{\partial C}{\partial W^{(L)}} = \Delta^{(L)\top} A^{(L-1", "cannot read 'A' here",
     "A^{(L-1"),
    (r"\frac{\partial C}{\partial W^{(5)}} = \Delta^{(5)\top} A^{(4)}", "no value of  makes",
     None),
    (r"\frac{\partial C}{\partial W^{(L)}} = \Delta^{(L)\top} A^{(L+1)}",
     "A^(3) names layer 3; A exists in layers 0..2", r"A^{(L+1)}"),
    (r"\frac{\partial C}{\partial Y} = Y", "C is differentiated by W, b, A, Z or X, not by Y",
     "Y}"),
    (r"\frac{\partial C_0}{\partial W^{(L)}} = W^{(L)}", ("a derivative by a matrix is of the "
     "batch loss C"), r"\frac"),
    (r"\frac{\partial C}{\partial b^{(L)}} = \sum_{i=0}^{2} \Delta^{(L)}",
     "sums its rows, the samples", r"\sum"),
])
def test_bad_matrix_formulas_are_errors_with_a_caret(capsys, formula, message, at):
    code = main(["check", str(EXAMPLES / "seed001.toml"), "--formula", formula])
    err = capsys.readouterr().err
    if "no value of" in message:  # W^(5) does not exist: no case to check
        assert code == 2 and "W^{(5)}" in err, err
        return
    assert code == 2 and message in err, err
    if at is not None:
        assert err.splitlines()[-1] == " " * (4 + formula.index(at)) + "^", err


# ------------------------------------------------------------------ general layers
SOFTMAX_CE = Spec.from_toml(EXAMPLES / "softmax_ce.toml")
TUTORIAL = Spec.from_toml(EXAMPLES / "tutorial.toml")


@pytest.mark.parametrize("spec, formula, checked, left_out", [
    # the three (they crashed with IndexError), on a softmax network
    (SOFTMAX_CE, (r"\delta_j^{(l)} = g^{\prime (l)}(z_j^{(l)}) \sum_{m} w_{mj}^{(l+1)} "
                 r"\delta_m^{(l+1)}"), "Checked for l = 1 (each with every j there).",
     ("l = 0, since \\delta_j^{(l)}: delta_0^(0) names layer 0, which has no delta; l = 2, "
     "since g^{\\prime (l)}(z_j^{(l)}): layer 2 is a softmax")),
    (SOFTMAX_CE, (r"\frac{\partial C_0}{\partial a_k^{(l)}} = \sum_{j=0}^{n-1} w_{jk}^{(l+1)} "
                 r"\delta_j^{(l+1)}"), "Checked for l = 0, 1 (each with every k there).",
     "l = 2, since w_{jk}^{(l+1)}"),
    (SOFTMAX_CE, (r"\frac{\partial C_0}{\partial a_k^{(l-1)}} = \sum_j w_{jk}^{(l)} "
                 r"\delta_j^{(l)}"), "Checked for l = 1, 2 (each with every k there).",
     "l = 0, since a_k^{(l-1)}"),
    # Nielsen's BP1-BP4 in index form, on a network whose output is elementwise
    (TUTORIAL, r"\delta_j^{(L)} = \frac{\partial C_0}{\partial a_j^{(L)}} g'^{(L)}(z_j^{(L)})",
     None, None),
    (TUTORIAL, r"\delta_j^{(l)} = \sum_k w_{kj}^{(l+1)} \delta_k^{(l+1)} g'^{(l)}(z_j^{(l)})",
     "Checked for l = 1, 2 (each with every j there).", "l = 3, since w_{kj}^{(l+1)}"),
    (TUTORIAL, r"\frac{\partial C_0}{\partial b_j^{(l)}} = \delta_j^{(l)}",
     "Checked for l = 1, 2, 3 (each with every j there).", "l = 0"),
    (TUTORIAL, r"\frac{\partial C_0}{\partial w_{jk}^{(l)}} = a_k^{(l-1)} \delta_j^{(l)}",
     "Checked for l = 1, 2, 3 (each with every j and k there).", "l = 0"),
    # the matrix form's general steps
    (SOFT, r"\Delta^{(l)} = \frac{\partial C}{\partial A^{(l)}} \odot g'^{(l)}(Z^{(l)})",
     "Checked for l = 1, 2.", "l = 3, since g'^{(l)}(Z^{(l)}): layer 3 is a softmax"),
])
def test_general_formulas_name_the_layers_checked(spec, formula, checked, left_out):
    if spec is TUTORIAL and "b_j" in formula:
        spec = Spec(layers=[3, 6, 6, 4], activation="g", loss="sse", bias=True)
    result = check_formula(spec, formula)
    assert result.right, str(result)
    if checked is not None:
        assert result.coverage[0] == checked
        assert left_out in result.coverage[1]
        assert checked in str(result)


def test_a_letter_with_no_value_is_an_input_error(capsys):
    code = main(["check", str(EXAMPLES / "softmax_ce.toml"), "--formula",
                 r"\frac{\partial C_0}{\partial w_{jk}^{(l)}} = w_{jk}^{(l+5)}"])
    err = capsys.readouterr().err
    assert code == 2 and "no value of j, k, l makes every name of the formula exist" in err


def test_swapped_index_letters_are_diagnosed():
    formula = r"\frac{\partial C_0}{\partial w_{jk}^{(l)}} = \delta_k^{(l)} a_j^{(l-1)}"
    result = check_formula(TUTORIAL, formula)
    assert not result.right
    first = result.findings[0]
    assert first.fix.startswith("swap the letters j and k throughout")
    assert first.corrected == (r"\frac{\partial C_0}{\partial w_{jk}^{(l)}} = \delta_{j}^{(l)} "
                               r"a_{k}^{(l-1)}")
    assert check_formula(TUTORIAL, first.corrected).right
    plain = check_formula(TUTORIAL, "dC_0/dw_jk^(l) = delta_k^(l) a_j^(l-1)")
    assert plain.findings[0].corrected == "dC_0/dw_jk^(l) = delta_j^(l) a_k^(l-1)"
