"""Custom formulas (design.md section 3b) in verify's references and in generated code.

* The JAX and PyTorch references translate every function a custom formula may call, inside
  and outside sum_k, sums multiplied, divided and inside functions, parameters with the
  letters j, k, jk and kj, constants and a spec's own activations: ``symprop verify`` exits
  0 against both (it raised NameError for exp inside sum_k in the torch reference).
"""


import pytest
import sympy
from conftest import need
from test_codegen_kinds import _assert_autodiff

from symprop import Spec
from symprop.cli import main
from symprop.errors import SympropError
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
    comparisons = 2 * (2 + len(params))  # the loss, W1 and each parameter, twice
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
