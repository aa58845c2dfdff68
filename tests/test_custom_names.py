"""A custom layer's parameter names resolve in their own layer (design.md section 3b): only
design's list is reserved, so r, mu, sigma, xhat and adj -- names other kinds give their own
quantities -- are free, and work end to end from the command line (derive --prove, report,
codegen on three targets, verify, check --formula), next to an rmsnorm whose r^(l) exists
or a layernorm whose xhat_j^(l) does."""

import importlib.util
import sys

import pytest
from conftest import need

from symprop import Spec
from symprop.cli import main
from symprop.errors import NameLookupError, SpecError
from symprop.graph import build_graph
from symprop.layers.custom import RESERVED
from symprop.notation import KINDS, SHARED_KINDS, Node, OwnKind

#: design.md section 3b's reserved names, as it lists them.
DESIGN_RESERVED = {"a", "z", "w", "b", "x", "y", "u", "h", "gamma", "beta", "delta", "C", "n",
                   "i", "j", "k", "l", "L", "e", "pi"}


def _toml(name: str = "r", letters: str = "j", before: str = "") -> str:
    """dense tanh (4) -> [``before``] -> custom ``name``_j * a_j (4) -> dense (2)."""
    middle = f'[[layer]]\nkind = "{before}"\n\n' if before else ""
    return ('name = "names"\ninput = 3\nloss = "half_sse"\n\n'
            '[[layer]]\nkind = "dense"\nwidth = 4\nactivation = "tanh"\n\n' + middle +
            f'[[layer]]\nkind = "custom"\nwidth = 4\nformula = "{name}_{letters} * a_j"\n'
            f'params = {{ {name} = "{letters}" }}\n\n'
            '[[layer]]\nkind = "dense"\nwidth = 2\n')


@pytest.fixture
def spec_file(tmp_path):
    def write(**kwargs):
        path = tmp_path / "names.toml"
        path.write_text(_toml(**kwargs))
        return path
    return write


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_only_designs_names_are_reserved():
    assert RESERVED == DESIGN_RESERVED
    assert SHARED_KINDS == set(KINDS) - RESERVED


@pytest.mark.parametrize("name", sorted(DESIGN_RESERVED - {"C", "L"}))
def test_a_reserved_name_is_refused_with_exit_2(spec_file, capsys, name):
    path = spec_file(name=name)
    code, out, err = _run(capsys, "derive", path, "--wrt", "w_00^(1)")
    assert code == 2 and out == ""
    assert err.startswith(f"symprop derive: error: {path}: layer 2 (custom), key 'params': "
                          f"'{name}' cannot be a parameter's name. Use letters only")
    assert "Traceback" not in err


def test_a_function_name_is_refused_and_says_why(spec_file, capsys):
    path = spec_file(name="exp")
    code, _, err = _run(capsys, "derive", path, "--wrt", "w_00^(1)")
    assert code == 2
    assert err == (f"symprop derive: error: {path}: layer 2 (custom), key 'params': 'exp' "
                   "cannot be a parameter's name. A formula calls the function exp(...).\n")


def test_a_parameter_named_r_end_to_end(spec_file, capsys, tmp_path):
    path = spec_file(name="r")
    code, out, err = _run(capsys, "derive", path, "--wrt", "r_0^(2)", "--prove")
    assert code == 0, err
    assert out.startswith("dC_0/dr_0^(2)\n=============\n")
    assert "    We know that a_0^(2) = a_0^(1)*r_0^(2).\n" in out
    assert "  dC_0/dr_0^(2) = (delta_0^(3)*w_00^(3) + delta_1^(3)*w_10^(3))*a_0^(1)\n" in out
    assert out.rstrip().endswith("Proof: PROVEN equal to SymPy's diff of the composed C_0 "
                                 "(symbolic: expanding diff(C_0) - result gives exactly 0).")

    report = tmp_path / "x.md"
    assert _run(capsys, "report", path, "-o", report)[0] == 0
    text = report.read_text()
    assert "| $r_{j}^{(2)}$ | parameter of custom layer $2$, shape from its letters |" in text
    assert ("\\frac{\\partial C_{0}}{\\partial r_{j}^{(L-1)}} = "
            "\\frac{\\partial C_{0}}{\\partial a_{j}^{(L-1)}} a_{j}^{(L-2)}") in text

    for target in ("numpy", "torch", "jax"):
        need(target)
        module = tmp_path / f"m_{target}.py"
        assert _run(capsys, "codegen", path, "-o", module, "--target", target)[0] == 0
        spec = importlib.util.spec_from_file_location(f"names_{target}", module)
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        assert sorted(m.init_params(0)) == ["W1", "W3", "r2"]

    need("jax")
    need("torch")
    code, out, _ = _run(capsys, "verify", path)
    assert code == 0
    assert out.strip().splitlines()[-1].startswith("PASS: all 12 comparisons within tolerance")

    right = ("\\frac{\\partial C_0}{\\partial r_0^{(2)}} = "
             "(\\delta_0^{(3)} w_{00}^{(3)} + \\delta_1^{(3)} w_{10}^{(3)}) a_0^{(1)}")
    code, out, _ = _run(capsys, "check", path, "--formula", right)
    assert code == 0
    assert out.startswith("RIGHT: the formula equals \\frac{\\partial C_0}{\\partial "
                          "r_0^{(2)}}\n")
    wrong = "(\\delta_0^{(3)} w_{00}^{(3)} + \\delta_1^{(3)} w_{01}^{(3)}) a_0^{(1)}"
    code, out, _ = _run(capsys, "check", path, "--wrt", "r_0^(2)", "--formula", wrong)
    assert code == 1
    assert out.startswith("WRONG: the formula is not dC_0/dr_0^(2)\n")


def test_r_of_a_custom_layer_needs_its_index(spec_file, capsys):
    path = spec_file(name="r")
    code, out, err = _run(capsys, "derive", path, "--wrt", "r^(2)")
    assert (code, out) == (2, "")
    assert err == ("symprop derive: error: 'r^(2)' needs 1 node index(es), e.g. r_{2}. "
                   "Separate two-digit indices with a comma.\n")


def test_an_rmsnorm_and_a_custom_r_each_resolve_in_their_own_layer(spec_file):
    graph = build_graph(Spec.from_toml(spec_file(name="r", before="rmsnorm")))
    rms = graph.resolve("r^(2)")
    own = graph.resolve("r_0^(3)")
    assert rms == Node("r", 2, None) and not rms.is_parameter
    assert own == Node(OwnKind("r"), 3, 0) and own.is_parameter
    assert own != Node("r", 3, 0) and own.kind != "r" and str(own.kind) == "r"
    assert rms.symbol != own.symbol and own.text() == "r_0^(3)" and own.latex() == "r_{0}^{(3)}"
    assert own.symbol in graph.parameter_symbols()
    with pytest.raises(NameLookupError, match=r"'r_0\^\(2\)': r\^\(l\) is one value per layer"):
        graph.resolve("r_0^(2)")
    with pytest.raises(NameLookupError, match=r"'r\^\(3\)' needs 1 node index"):
        graph.resolve("r^(3)")


def test_an_rmsnorm_and_a_custom_r_from_the_command_line(spec_file, capsys):
    path = spec_file(name="r", before="rmsnorm")
    code, out, _ = _run(capsys, "derive", path, "--wrt", "r_0^(3)", "--prove")
    assert code == 0
    assert "  dC_0/dr_0^(3) = (delta_0^(4)*w_00^(4) + delta_1^(4)*w_10^(4))*a_0^(2)\n" in out
    assert "Proof: PROVEN" in out
    # both r's in one formula: the rmsnorm's r^(2) divides, the custom r_0^(3) multiplies
    both = ("\\frac{\\partial C_0}{\\partial \\gamma_0^{(2)}} = (\\delta_0^{(4)} w_{00}^{(4)} + "
            "\\delta_1^{(4)} w_{10}^{(4)}) r_0^{(3)} \\frac{a_0^{(1)}}{r^{(2)}}")
    code, out, _ = _run(capsys, "check", path, "--formula", both)
    assert code == 0 and out.startswith("RIGHT: ")
    own = ("\\frac{\\partial C_0}{\\partial r_0^{(3)}} = "
           "(\\delta_0^{(4)} w_{00}^{(4)} + \\delta_1^{(4)} w_{10}^{(4)}) a_0^{(2)}")
    code, out, _ = _run(capsys, "check", path, "--formula", own)
    assert code == 0 and out.startswith("RIGHT: ")
    code, out, err = _run(capsys, "check", path, "--formula",
                          "\\frac{\\partial C_0}{\\partial r_0^{(2)}} = a_0^{(2)}")
    assert (code, out) == (2, "")
    assert err.startswith("symprop check: error: --formula: r takes 0 node indices.\n")
    code, out, err = _run(capsys, "check", path, "--formula",
                          "\\frac{\\partial C_0}{\\partial r_0^{(3)}} = r^{(3)}")
    assert (code, out) == (2, "")
    assert err.startswith("symprop check: error: --formula: r takes 1 node index.\n")
    need("jax")
    need("torch")
    code, out, _ = _run(capsys, "verify", path, "--against", "torch")
    assert code == 0 and out.strip().splitlines()[-1].startswith("PASS: all 6 comparisons")


@pytest.mark.parametrize("name", sorted(SHARED_KINDS - {"r"}))
def test_every_shared_name_is_a_parameter_of_its_own(spec_file, capsys, name):
    """mu and sigma (one value per layer in a layernorm), xhat (a layernorm's node j) and
    adj (a layer's dC_0/da_j) name a custom layer's parameter there."""
    path = spec_file(name=name)
    code, out, err = _run(capsys, "derive", path, "--wrt", f"{name}_0^(2)", "--prove")
    assert code == 0, err
    assert (f"  dC_0/d{name}_0^(2) = (delta_0^(3)*w_00^(3) + delta_1^(3)*w_10^(3))*a_0^(1)\n"
            in out)
    assert "Proof: PROVEN" in out
    formula = (f"\\frac{{\\partial C_0}}{{\\partial {name}_0^{{(2)}}}} = "
               "(\\delta_0^{(3)} w_{00}^{(3)} + \\delta_1^{(3)} w_{10}^{(3)}) a_0^{(1)}")
    code, out, _ = _run(capsys, "check", path, "--formula", formula)
    assert code == 0 and out.startswith("RIGHT: ")


def test_a_custom_xhat_next_to_a_layernorms(spec_file):
    graph = build_graph(Spec.from_toml(spec_file(name="xhat", before="layernorm")))
    norm, own = graph.resolve("xhat_0^(2)"), graph.resolve("xhat_0^(3)")
    assert not norm.is_parameter and own.is_parameter
    assert norm.symbol != own.symbol and norm.symbol not in graph.parameter_symbols()
    assert norm.latex() == "\\hat{x}_{0}^{(2)}" and own.latex() == "xhat_{0}^{(3)}"


def test_a_spec_naming_the_shared_names_parses_and_an_unknown_letter_is_refused():
    for name in sorted(SHARED_KINDS):
        spec = Spec(input=2, stack=[{"kind": "custom", "width": 2, "formula": f"{name}_j * a_j",
                                     "params": {name: "j"}}], loss="sse")
        assert [p.key for _, p in spec.parameters()] == [name]
    with pytest.raises(SpecError, match="'r' has index letters 'jj'"):
        Spec(input=2, stack=[{"kind": "custom", "width": 2, "formula": "r_j * a_j",
                              "params": {"r": "jj"}}], loss="sse")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
