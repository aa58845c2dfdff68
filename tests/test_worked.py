"""Worked examples (derive --at VALUES.toml): every printed number of Mazur's 2-2-2 sigmoid
network recomputed here independently in plain Python floats, the SGD update, every format
(pdflatex compiles the LaTeX), and bad VALUES files as exit 2 naming the key and the shape."""

import math
import subprocess
import sys
from pathlib import Path

import pytest

from symprop import Spec, backprop
from symprop.cli import main
from symprop.documents import derivation_document
from symprop.worked import read_point

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SPEC, VALUES = str(EXAMPLES / "mazur.toml"), str(EXAMPLES / "mazur_values.toml")

# Mazur's network, by hand
W1, B1 = [[0.15, 0.20], [0.25, 0.30]], [0.35, 0.35]
W2, B2 = [[0.40, 0.45], [0.50, 0.55]], [0.60, 0.60]
X, Y, RATE = [0.05, 0.10], [0.01, 0.99], 0.5


def sigmoid(t):
    return 1 / (1 + math.exp(-t))


Z1 = [sum(W1[j][k] * X[k] for k in range(2)) + B1[j] for j in range(2)]
A1 = [sigmoid(z) for z in Z1]
Z2 = [sum(W2[j][k] * A1[k] for k in range(2)) + B2[j] for j in range(2)]
A2 = [sigmoid(z) for z in Z2]
PRIME2 = [a * (1 - a) for a in A2]
DELTA2 = [(A2[j] - Y[j]) * PRIME2[j] for j in range(2)]
ADJ1 = [sum(DELTA2[j] * W2[j][k] for j in range(2)) for k in range(2)]
PRIME1 = [a * (1 - a) for a in A1]


def n(value: float) -> str:
    return f"{value:.9g}"


def derive(*args, capsys):
    code = main(["derive", SPEC, *args, "--at", VALUES])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_output_weight_step_by_step_with_mazurs_numbers(capsys):
    code, out, _ = derive("--wrt", "w_00^(2)", capsys=capsys)
    assert code == 0
    grad = DELTA2[0] * A1[0]
    assert n(grad) == "0.0821670406"  # Mazur's dE_total/dw5 = 0.082167041
    for line in [
        f"  y_0 = {n(Y[0])}", f"  a_0^(1) = {n(A1[0])}", f"  w_00^(2) = {n(W2[0][0])}",
        f"  z_0^(2) = {n(Z2[0])}", f"  a_0^(2) = {n(A2[0])}",
        f"    = a_0^(2) - y_0 = {n(A2[0] - Y[0])}",
        f"    = sigma'(z_0^(2)) = {n(PRIME2[0])}",
        f"    = a_0^(1) = {n(A1[0])}",
        f"  dC_0/dw_00^(2) = (a_0^(2) - y_0) * sigma'(z_0^(2)) * a_0^(1) = {n(grad)}",
        f"  dC_0/dw_00^(2) = (a_0^(2) - y_0)*sigma'(z_0^(2))*a_0^(1) = {n(grad)}",
        "SGD update with learning rate 0.5:",
        (f"  w_00^(2) <- w_00^(2) - eta * dC_0/dw_00^(2) = 0.4 - 0.5 * {n(grad)} = "
        f"{n(W2[0][0] - RATE * grad)}"),
    ]:
        assert line + "\n" in out, line
    assert n(W2[0][0] - RATE * grad) == "0.35891648"  # Mazur's w5+
    assert out.endswith("Worked example: the result equals the generated NumPy module's "
                        "gradient at the same point (float64, rtol 1e-9).\n")


def test_a_hidden_weight_with_every_delta_and_the_backward_sum(capsys):
    code, out, _ = derive("--wrt", "w_00^(1)", capsys=capsys)
    assert code == 0
    grad = ADJ1[0] * PRIME1[0] * X[0]
    assert n(W1[0][0] - RATE * grad) == "0.149780716"  # Mazur's w1+
    for line in [
        f"    = delta_0^(2)*w_00^(2) + delta_1^(2)*w_10^(2) = {n(ADJ1[0])}",
        f"    = sigma'(z_0^(1)) = {n(PRIME1[0])}",
        f"    = x_0 = {n(X[0])}",
        f"    delta_0^(2) = (a_0^(2) - y_0)*sigma'(z_0^(2)) = {n(DELTA2[0])}",
        f"    delta_1^(2) = (a_1^(2) - y_1)*sigma'(z_1^(2)) = {n(DELTA2[1])}",
        (f"  dC_0/dw_00^(1) = (delta_0^(2)*w_00^(2) + delta_1^(2)*w_10^(2))*sigma'(z_0^(1))*x_0"
        f" = {n(grad)}"),
        f"    + (a_1^(2) - y_1) * sigma'(z_1^(2)) * w_10^(2) = {n(ADJ1[0])}",  # the sum over j
        (f"  w_00^(1) <- w_00^(1) - eta * dC_0/dw_00^(1) = 0.15 - 0.5 * {n(grad)} = "
        f"{n(W1[0][0] - RATE * grad)}"),
    ]:
        assert line + "\n" in out, line


def _every_value() -> set[str]:
    """Every quantity of Mazur's network at his point, computed here, to 9 digits."""
    delta1 = [ADJ1[k] * PRIME1[k] for k in range(2)]
    values = [*X, *Y, *Z1, *A1, *Z2, *A2, *PRIME1, *PRIME2, *DELTA2, *ADJ1, *delta1, *B1, *B2,
              *(A2[j] - Y[j] for j in range(2))]
    for W, B, grad, below in ((W1, B1, delta1, X), (W2, B2, DELTA2, A1)):
        for j in range(2):
            values += [B[j] - RATE * grad[j], grad[j]]
            for k in range(2):
                values += [W[j][k], grad[j] * below[k], W[j][k] - RATE * grad[j] * below[k]]
    return {n(v) for v in values} | {n(RATE), "1"}  # dz/db = 1


@pytest.mark.parametrize("name", ["w_00^(1)", "w_11^(1)", "b_1^(1)", "w_01^(2)", "b_0^(2)"])
def test_every_printed_number_is_a_quantity_computed_by_hand(capsys, name):
    """Whatever a line ends in (a value read, a factor, a sum, a delta, the result, the
    update, in the derivation and in its backward steps) is one of the network's quantities
    at the point, recomputed here in plain floats."""
    import re

    code, out, _ = derive("--wrt", name, capsys=capsys)
    assert code == 0
    printed = [m.group(1) for line in out.splitlines()
               if (m := re.search(r"= (-?[0-9][0-9.e+-]*)$", line))]
    assert len(printed) > 6
    assert set(printed) <= _every_value(), set(printed) - _every_value()
    assert " = 1 = 1" not in out  # a constant factor needs no number


def test_a_node_has_its_numbers_and_no_update(capsys):
    code, out, _err = derive("--wrt", "a_1^(1)", capsys=capsys)
    assert code == 0
    assert f"  dC_0/da_1^(1) = delta_0^(2)*w_01^(2) + delta_1^(2)*w_11^(2) = {n(ADJ1[1])}\n" in out
    assert "SGD update" not in out and "Worked example:" not in out


@pytest.mark.needs("pdflatex")
def test_every_format_shows_the_numbers_and_the_latex_compiles(tmp_path):
    from test_documents import compile_ok

    engine = backprop(Spec.from_toml(SPEC))
    point = read_point(VALUES, engine)
    d = engine.derive("w_00^(1)")
    value = ADJ1[0] * PRIME1[0] * X[0]
    grad = n(value)
    tex = derivation_document(d, "latex", standalone=True, at=point)
    assert rf"= 0.15 - 0.5 \cdot {grad} = {n(W1[0][0] - RATE * value)}" in tex
    compile_ok(tex)
    for fmt in ("markdown", "html"):
        assert grad in derivation_document(d, fmt, standalone=True, at=point)


def test_small_numbers_print_with_a_power_of_ten_in_latex(tmp_path):
    from symprop.printing.context import FLAVORS

    assert FLAVORS["latex"].number("1.5e-05") == r"1.5 \cdot 10^{-5}"
    assert FLAVORS["text"].number("1.5e-05") == "1.5e-05"


@pytest.mark.parametrize("change, message", [
    (("b2 = [0.60, 0.60]\n", ""),
     "mazur_values.toml: missing key 'b2'. Give b2 as a list of 2 numbers."),
    (("W2 = [[0.40, 0.45], [0.50, 0.55]]", "W2 = [[0.40, 0.45, 1.0], [0.50, 0.55, 1.0]]"),
     ("mazur_values.toml: key 'W2': has shape (2, 3), expected (2, 2). Give W2 as 2 lists of 2 "
     "numbers (shape (2, 2)).")),
    (("x = [0.05, 0.10]", 'x = [0.05, "a"]'),
     "mazur_values.toml: key 'x': expected numbers (nested lists of numbers, all finite)."),
    (("y = [0.01, 0.99]", "y = [0.01, 0.99]\nz = 1"),
     ("mazur_values.toml: unknown key 'z'. The keys of this network are W1, b1, W2, b2, x, y, "
     "learning_rate.")),
    (("learning_rate = 0.5", 'learning_rate = "fast"'),
     "mazur_values.toml: key 'learning_rate': expected a number. Write learning_rate = 0.5."),
    (("W1 =", "W1 = = "), "mazur_values.toml: not valid TOML"),
])
def test_bad_values_files_exit_2_naming_the_key_and_the_shape(tmp_path, change, message):
    values = tmp_path / "mazur_values.toml"
    values.write_text(Path(VALUES).read_text().replace(*change))
    proc = subprocess.run([sys.executable, "-m", "symprop", "derive", SPEC, "--wrt",
                           "w_00^(2)", "--at", str(values)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr


def test_the_generic_g_has_no_numbers(capsys):
    code = main(["derive", str(EXAMPLES / "tutorial.toml"), "--wrt", "w_12^(L)", "--at", VALUES])
    assert code == 2
    assert "layer 1 uses the generic activation g, which has no numbers" in \
        capsys.readouterr().err


def test_readmes_values_block_is_the_example_file():
    import re
    import tomllib

    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(W1 = .*?)```", readme, re.DOTALL).group(1)
    assert tomllib.loads(block) == tomllib.loads(Path(VALUES).read_text())


@pytest.mark.parametrize("example, name", [
    ("residual", "gamma_0^(2)"), ("residual", "c_10^(4)"), ("residual", "w_01^(1)"),
    ("rbf", "s_0^(1)"), ("gated", "w_00^(1)"), ("softmax_ce", "b_1^(1)")])
def test_every_kind_works_out_with_numbers(tmp_path, capsys, example, name):
    """Each layer kind's definitions evaluate at the point; the printed result is the
    generated module's gradient (computed here again) to 9 digits."""
    import numpy as np

    from symprop.codegen import generate

    spec = Spec.from_toml(EXAMPLES / f"{example}.toml")
    module = generate(spec).load(tmp_path / "net.py")
    params = {k: np.round(v, 3) for k, v in module.init_params(1).items()}
    x = np.round(np.linspace(-0.9, 0.8, spec.layers[0]), 3)
    y = np.full(spec.layers[-1], 1 / spec.layers[-1])
    values = tmp_path / "values.toml"
    values.write_text("\n".join(f"{k} = {v.tolist()}" for k, v in
                                {**params, "x": x, "y": y}.items()))
    assert main(["derive", str(EXAMPLES / f"{example}.toml"), "--wrt", name, "--at",
                 str(values), "--layers", "absolute"]) == 0
    out = capsys.readouterr().out
    graph = backprop(spec).graph
    node = graph.resolve(name)
    key = next(f"{p.key}{l}" for l, p in spec.parameters() if l == node.layer
               and p.kind == node.kind)
    want = module.gradients(params, x[None, :], y[None, :])[key][node.indices]
    result = out[out.index("Result:"):].splitlines()[1]
    assert result.endswith(f" = {want:.9g}"), (result, want)


@pytest.mark.needs("pdflatex")
def test_the_report_is_a_worked_example_and_compiles(tmp_path):
    from symprop.report import write_report

    pdf = write_report(Spec.from_toml(SPEC), tmp_path / "r.pdf", at=VALUES)
    assert pdf.read_bytes().startswith(b"%PDF")
    tex = write_report(Spec.from_toml(SPEC), tmp_path / "r.tex", at=VALUES).read_text()
    # each layer's representative weight w_11, Mazur's w8 (dE/dw8 = -0.022740242) and w4
    assert f"= {n(DELTA2[1] * A1[1])}" in tex and n(DELTA2[1] * A1[1]) == "-0.0227402422"
    assert f"= {n(ADJ1[1] * PRIME1[1] * X[1])}" in tex


def test_every_interactive_section_shows_its_numbers(tmp_path):
    from symprop.interactive import build_interactive

    report = build_interactive(Spec.from_toml(SPEC), at=VALUES)
    sections = {s["name"]: s["d"] for s in report.sections}
    assert sections["w_01^(L)"]["result"].endswith(f"= {n(DELTA2[0] * A1[1])}")
    assert sections["b_1^(L-1)"]["result"].endswith(f"= {n(ADJ1[1] * PRIME1[1])}")
    assert sections["a_0^(L-1)"]["result"].endswith(f"= {n(ADJ1[0])}")
    html = report.render()
    assert n(W2[0][1] - RATE * DELTA2[0] * A1[1]) in html  # w_01^(L)'s SGD update
