"""Custom formulas (design.md section 3b) in verify's references and in generated code.

* The JAX and PyTorch references translate every function a custom formula may call, inside
  and outside sum_k, sums multiplied, divided and inside functions, parameters with the
  letters j, k, jk and kj, constants and a spec's own activations: ``symprop verify`` exits
  0 against both (it raised NameError for exp inside sum_k in the torch reference).
* The stable forms reach custom formulas: sigmoid, softplus, log(1 + exp) and a log-sum-exp
  over k, in every target and style, stay finite at |z| ~ 1e3 with overflow, invalid and
  division errors raised and warnings as errors, and agree with autodiff (rtol 1e-10) at
  ordinary points.
"""

import ast
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import sympy
from conftest import need
from test_codegen_frameworks import array_library
from test_codegen_kinds import _assert_autodiff

from symprop import Spec
from symprop.cli import main
from symprop.codegen import generate
from symprop.errors import SympropError
from symprop.graph import build_graph
from symprop.layers.custom import formula_functions
from symprop.reference import _Ops

#: Every function a custom formula may call (the activation whitelist and the activations).
FUNCTIONS = sorted(name for name in formula_functions({}) if name != "sum_k")
#: (target, style) of every generated module.
CASES = [("numpy", "vectorized"), ("numpy", "scalar"), ("torch", "vectorized"),
         ("jax", "vectorized")]


def _call(function: str, inner: str) -> str:
    """``function`` applied to ``inner``, inside its domain (log and sqrt of 1 + u^2)."""
    if function in ("Max", "Min", "max", "min"):
        return f"{function}({inner}, 0.1)"
    if function in ("log", "sqrt"):
        return f"{function}(1 + ({inner})**2)"
    return f"{function}({inner})"


def _toml(formula: str, params: dict, width: int, activations: dict | None = None) -> str:
    table = ", ".join(f'{name} = "{letters}"' for name, letters in params.items())
    extra = "".join(f'{name} = "{text}"\n' for name, text in (activations or {}).items())
    return ('name = "formula"\ninput = 3\nloss = "half_sse"\n\n'
            + (f"[activations]\n{extra}\n" if extra else "")
            + '[[layer]]\nkind = "dense"\nwidth = 4\nactivation = "tanh"\n\n'
            f'[[layer]]\nkind = "custom"\nwidth = {width}\nformula = "{formula}"\n'
            f"params = {{ {table} }}\n")


@pytest.mark.parametrize("where", ["inside", "outside"])
@pytest.mark.parametrize("function", FUNCTIONS)
def test_verify_translates_every_function_inside_and_outside_sum_k(tmp_path, capsys,
                                                                    function, where):
    need("jax")
    need("torch")
    if where == "inside":
        formula, params = f"sum_k({_call(function, 'c_jk * a_k')})", {"c": "jk"}
    else:
        formula, params = f"s_j * {_call(function, 'sum_k(c_jk * a_k)')}", {"c": "jk", "s": "j"}
    path = tmp_path / "spec.toml"
    path.write_text(_toml(formula, params, width=2))
    assert main(["verify", str(path), "--against", "jax", "--against", "torch"]) == 0
    # the loss, W1 and each parameter, twice; the gradients through a workspace
    comparisons = 2 * (2 + len(params)) + 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"PASS: all {comparisons} comparisons within tolerance"), last


#: Formulas beyond one function: the letters j, k, jk, kj; sums multiplied, divided and
#: inside functions; constants; powers; a three-way Max; the spec's own activations.
SHAPES = {
    "quotient of sums": ("s_j * sum_k(exp(c_jk * a_k)) / sum_k(exp(d_k * a_k))",
                         {"s": "j", "c": "jk", "d": "k"}, 2),
    "kj, product of sums": ("tanh(sum_k(c_kj * a_k)) * sum_k(sin(a_k) * d_k)",
                            {"c": "kj", "d": "k"}, 2),
    "sums inside functions, a_j": (("log(1 + sum_k(sigmoid(c_jk * a_k))**2) "
                                    "- a_j * erf(sum_k(d_k * a_k))"), {"c": "jk", "d": "k"}, 4),
    "constants, abs, powers": (("pi * sum_k(exp(-e * (a_k - c_jk)**2)) "
                                "+ sqrt(1 + sum_k(abs(c_jk - a_k)))**3 "
                                "+ (1 + sum_k(a_k**2))**(-1.5)"), {"c": "jk"}, 2),
    "three-way max, min": ("Max(a_j, sum_k(c_jk * a_k), 0.2) + min(a_j * s_j, -0.3)",
                           {"c": "jk", "s": "j"}, 4),
    "the spec's activations": ("sum_k(gelu(c_jk * a_k)) + bump(s_j * a_j)",
                               {"c": "jk", "s": "j"}, 4),
}
ACTIVATIONS = {"gelu": "0.5*x*(1 + erf(x/sqrt(2)))", "bump": "max(0, x) + exp(-x**2)"}


@pytest.mark.parametrize(("target", "style"), CASES)
@pytest.mark.parametrize("shape", SHAPES)
def test_formulas_of_every_shape_agree_with_both_references(tmp_path, shape, target, style):
    need("jax")
    need("torch")
    formula, params, width = SHAPES[shape]
    path = tmp_path / "spec.toml"
    path.write_text(_toml(formula, params, width, ACTIVATIONS))
    from symprop.verify import verify

    report = verify(Spec.from_toml(path), style=style, target=target, against=("jax", "torch"))
    _assert_autodiff(report)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_custom_activations_and_losses_use_the_same_translation(backend):
    """A spec's own activation and loss reach the reference the same way (relu's Max(0, x)
    was torch.max(0, x), erf was math.erf for JAX)."""
    need("jax")
    need("torch")
    from symprop.verify import verify

    spec = Spec(layers=(3, 4, 2), activation=["bump", "identity"], bias=True,
                loss="max(a - y, 0)**2 + erf(a - y)**2",
                activations={"bump": "erf(x) + max(0, x) + min(x, 0)/3"})
    _assert_autodiff(verify(spec, against=(backend,)))


def test_a_node_the_reference_cannot_evaluate_is_named():
    need("torch")
    x = sympy.Symbol("x", real=True)
    ops = _Ops("torch")
    with pytest.raises(SympropError, match="cannot evaluate gamma"):
        ops.translate(sympy.gamma(x), {x: ops.xp.ones(2, dtype=ops.xp.float64)})


# ------------------------------------------------------------------- stable forms
#: Formulas whose stable forms matter at |z| ~ 1e3 (params; the custom layer's width).
STABLE = {
    "sigmoid(s_j * a_j)": ({"s": "j"}, 4),
    "softplus(sum_k(c_jk * a_k))": ({"c": "jk"}, 3),
    "log(1 + exp(s_j * a_j))": ({"s": "j"}, 4),
    "log(sum_k(exp(c_jk * a_k)))": ({"c": "jk"}, 3),
    "s_j * log(sum_k(exp(c_kj * a_k))) + sigmoid(-sum_k(c_kj * a_k))": ({"c": "kj", "s": "j"}, 3),
    "sum_k(swish(c_jk * a_k)) + log(1 - sigmoid(s_j * a_j))": ({"c": "jk", "s": "j"}, 4),
}


def _stable_spec(formula: str) -> Spec:
    params, width = STABLE[formula]
    return Spec(input=3, stack=[{"kind": "dense", "width": 4, "bias": True},
                                {"kind": "custom", "width": width, "formula": formula,
                                 "params": params},
                                {"kind": "dense", "width": 2}], loss="half_sse", name="stable")


@pytest.mark.parametrize(("target", "style"), CASES)
@pytest.mark.parametrize("formula", STABLE)
def test_stable_forms_stay_finite_at_z_1e3(tmp_path, formula, target, style):
    xp = array_library(target)
    m = generate(_stable_spec(formula), style, target=target).load(tmp_path / "m.py")
    p = {k: xp.asarray(np.asarray(v), dtype=xp.float64)
         for k, v in m.init_params(0, xp.float64).items()}
    X = np.array([[1e3, -1e3, 5e2], [-1e3, 1e3, -5e2], [7e2, 8e2, -9e2], [0.5, -0.2, 0.1]])
    Y = np.array([[1.0, -1.0], [0.5, 2.0], [-1.0, 0.0], [0.0, 0.3]])
    z = X @ np.asarray(p["W1"]).T + np.asarray(p["b1"])
    assert 300 < np.abs(z).max() < 3e3  # the custom layer reads |z| ~ 1e3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            value, grads = m.loss_and_gradients(p, xp.asarray(X), xp.asarray(Y))
    assert np.isfinite(float(value))
    assert sorted(grads) == sorted(p)
    for key, g in grads.items():
        assert bool(np.isfinite(np.asarray(g)).all()), key


@pytest.mark.parametrize(("target", "style"), CASES)
@pytest.mark.parametrize("formula", STABLE)
def test_stable_forms_agree_with_autodiff(formula, target, style):
    need("jax")
    need("torch")
    from symprop.verify import verify

    _assert_autodiff(verify(_stable_spec(formula), style=style, target=target,
                            against=("jax", "torch")))


def test_stable_forms_are_what_the_modules_print():
    """sigma' through the output, softplus' as sigma, the log-sum-exp as each library's own
    and its softmax weights as one exp(u - a) (SymPy's expand splits it into two exps)."""
    sigmoid = generate(_stable_spec("sigmoid(s_j * a_j)")).source
    assert '    A2 = _sigmoid(A1*params["s2"])\n' in sigmoid
    assert '    ds2 = np.sum(dA2*A1*A2*(1 - A2), axis=0)\n' in sigmoid
    softplus = generate(_stable_spec("log(1 + exp(s_j * a_j))")).source
    assert '    A2 = np.logaddexp(0, A1*params["s2"])\n' in softplus
    assert '    ds2 = np.sum(dA2*A1*_sigmoid(A1*params["s2"]), axis=0)\n' in softplus
    lse = _stable_spec("log(sum_k(exp(c_jk * a_k)))")
    numpy = generate(lse).source
    assert ('    A2 = (np.logaddexp.reduce(A1[:, None, :]*params["c2"][None, :, :], axis=2, '
            "keepdims=True))[:, :, 0]\n") in numpy
    assert 'np.exp(A1[:, None, :]*params["c2"][None, :, :] - A2[:, :, None])' in numpy
    assert "np.exp(-A2" not in numpy and "/np.sum(" not in numpy
    assert ("    A2 = (torch.logsumexp(A1[:, None, :]*c2[None, :, :], dim=2, keepdim=True))"
            "[:, :, 0]\n") in generate(lse, target="torch").source
    assert ("    A2 = (jax.nn.logsumexp(A1[:, None, :]*c2[None, :, :], axis=2, keepdims=True))"
            "[:, :, 0]\n") in generate(lse, target="jax").source
    scalar = generate(lse, "scalar").source
    assert ("    a2_0 = np.logaddexp(a1_0*c2[0, 0], np.logaddexp(a1_1*c2[0, 1], "
            "np.logaddexp(a1_2*c2[0, 2], a1_3*c2[0, 3])))  # a_0^(2) = log(exp(a_0^(1)*c_00^(2))"
            " + exp(a_1^(1)*c_01^(2)) + exp(a_2^(1)*c_02^(2)) + exp(a_3^(1)*c_03^(2)))\n") in scalar
    assert "    dc2[0, 0] = np.mean(a1_0*dC_da2_0*np.exp(a1_0*c2[0, 0] - a2_0))" in scalar


def test_derivations_keep_the_formula_as_written():
    """Only generated code reads the stable forms: the derivation is the user's formula."""
    layer = build_graph(_stable_spec("log(sum_k(exp(c_jk * a_k)))")).layers[2]
    assert str(layer.output_form) == "log(SumK(exp(<in:in_k>*<param:c_jk>)))"


def test_stable_modules_pass_ruff_and_import_only_their_array_library(tmp_path):
    need("jax")
    need("torch")
    files = []
    for n, formula in enumerate(STABLE):
        for target, style in CASES:
            path = tmp_path / f"m{n}_{target}_{style}.py"
            generate(_stable_spec(formula), style, target=target).write(path)
            files.append(path)
            imported = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    imported |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom):
                    imported.add((node.module or "").split(".")[0])
            assert imported - sys.stdlib_module_names == {target}, (path.name, imported)
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    proc = subprocess.run([ruff, "check", "--isolated", *map(str, files)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
