"""The command line: output, exit codes, and messages for bad input."""

import subprocess
import sys
from pathlib import Path

import pytest

from symprop.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args):
    return subprocess.run([sys.executable, "-m", "symprop", *args], capture_output=True, check=False,
                          text=True, timeout=300)


def test_demo_derives_the_seed_examples_once_each_and_proves_them_symbolically():
    proc = run("demo")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    titles = [f"\n{t}\n{'=' * len(t)}\n" for t in
              ("dC_0/dw_12^(L)", "dC_0/dw_22^(L-1)", "dC_0/da_2^(L-1)")]
    for title in titles:
        assert out.count(title) == 1, title  # the backward step only inside w_22
    assert out.index(titles[1]) < out.index("The backward step\n") < out.index(titles[2])
    assert "dC_0/dw_12^(L) = 2*(a_1^(L) - y_1)*g'^(L)(z_1^(L))*a_2^(L-1)" in out
    symbolic = "PROVEN equal to SymPy's diff of the composed C_0 (symbolic: expanding"
    assert out.count("Proof: " + symbolic) == 2
    assert out.count("Proof of the backward step dC_0/da_2^(L-1): " + symbolic) == 1


def test_derive_text_for_a_hidden_weight(capsys):
    assert main(["derive", str(EXAMPLES / "tutorial.toml"), "--wrt", "w_22^(L-1)"]) == 0
    out = capsys.readouterr().out
    assert "dC_0/dw_22^(L-1) = (dC_0/da_2^(L-1)) * (da_2^(L-1)/dz_2^(L-1)) * " \
           "(dz_2^(L-1)/dw_22^(L-1))" in out
    assert "The backward step" in out
    assert "delta_1^(L) = 2*(a_1^(L) - y_1)*g'^(L)(z_1^(L))" in out


def test_derive_absolute_layers_and_prove(capsys):
    code = main(["derive", str(EXAMPLES / "softmax_ce.toml"), "--wrt", "b_{1}^{(2)}",
                 "--layers", "absolute", "--prove"])
    out = capsys.readouterr().out
    assert code == 0
    assert "dC_0/db_1^(2)" in out and "Proof: PROVEN" in out


def test_output_file_is_written(tmp_path):
    target = tmp_path / "d.txt"
    assert main(["derive", str(EXAMPLES / "custom.toml"), "--wrt", "w_{10}^{(1)}", "-o",
                 str(target)]) == 0
    assert target.read_text().startswith("dC_0/dw_10^(1)")  # as typed: absolute
    assert [p.name for p in tmp_path.iterdir()] == ["d.txt"]


@pytest.mark.parametrize("args, fragment", [
    (["derive", "missing.toml", "--wrt", "w_12^(L)"], "missing.toml: no such file"),
    (["derive", "EX/tutorial.toml", "--wrt", "w_{92}^{(L)}"], "node 9 of layer 3"),
    (["derive", "EX/tutorial.toml", "--wrt", "w_12^(L-7)"], "layer -4"),
    (["derive", "EX/tutorial.toml", "--wrt", "v_1^(L)"], "cannot read the name"),
    (["derive", "EX/tutorial.toml", "--wrt", "b_1^(L)"], "layer 3 has none"),
    (["derive", "EX/tutorial.toml", "--wrt", "w_123^(L)"], "needs 2 node index(es)"),
    (["derive", "EX", "--wrt", "w_12^(L)"], "is a directory"),
    # names the network has that C_0 is not differentiated by
    (["derive", "EX/residual.toml", "--wrt", "mu^(2)"],
     "mu^(2) is an intermediate quantity of layer 2"),
    (["derive", "EX/tutorial.toml", "--wrt", "y_1"], "y_1 is a target"),
    (["derive", "EX/tutorial.toml", "--wrt", "delta_1^(L)"], "is itself an accumulated gradient"),
])
def test_bad_input_exits_2_with_a_message_and_no_traceback(args, fragment):
    args = [a.replace("EX", str(EXAMPLES)) for a in args]
    proc = run(*args)
    assert proc.returncode == 2
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_bad_toml_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("layers = [3, 0]\n")
    proc = run("derive", str(bad), "--wrt", "w_00^(1)")
    assert proc.returncode == 2
    assert f"{bad}: key 'layers': width of layer 1 must be at least 1, got 0." in proc.stderr


def test_unwritable_output_leaves_nothing(tmp_path):
    proc = run("derive", str(EXAMPLES / "tutorial.toml"), "--wrt", "w_12^(L)", "-o",
               str(tmp_path / "no" / "such" / "dir.txt"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------ codegen / verify
def test_codegen_writes_a_module_that_imports(tmp_path, capsys):
    out = tmp_path / "net.py"
    assert main(["codegen", str(EXAMPLES / "softmax_ce.toml"), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().err
    text = out.read_text()
    assert text.startswith('"""Backpropagation in matrix form (seed 001) for the network '
                           '"softmax-cross-entropy"')
    assert f"Spec: {EXAMPLES / 'softmax_ce.toml'}" in text
    namespace: dict = {}
    exec(compile(text, str(out), "exec"), namespace)  # noqa: S102 - our own generated file
    assert namespace["LAYERS"] == [4, 5, 3]


def test_codegen_scalar_style(tmp_path):
    out = tmp_path / "scalar.py"
    assert main(["codegen", str(EXAMPLES / "seed001.toml"), "-o", str(out),
                 "--style", "scalar"]) == 0
    assert "dW1[2, 1] = np.mean(delta1_2*x_1)  # dC_0/dw_21^(1) = delta_2^(1)*x_1" \
        in out.read_text()


def test_verify_prints_a_table_and_exits_0():
    proc = run("verify", str(EXAMPLES / "softmax_ce.toml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert ("parameter  against    entries  max abs err  max rel err  tolerance"
            in proc.stdout)
    # loss vs jax and torch, W1 b1 W2 b2 vs jax, torch and fd, the gradients through a
    # workspace against those without
    assert sum(1 for line in lines if line.rstrip().endswith(" ok")) == 15
    assert "gradients  workspace" in proc.stdout
    assert "PASS: all 15 comparisons within tolerance" in proc.stdout


def test_verify_against_one_reference_float32_scalar():
    proc = run("verify", str(EXAMPLES / "seed001.toml"), "--against", "fd", "--dtype", "float32",
               "--style", "scalar")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dtype float32, against fd" in proc.stdout
    # no path of a temporary file that is gone once verify exits: the spec and the style
    assert f"module: generated from {EXAMPLES / 'seed001.toml'}, style scalar, imported from " \
           "a temporary file (keep it with -o FILE.py)" in proc.stdout
    assert "symprop-verify-" not in proc.stdout and ".py" not in proc.stdout.split("(keep")[0]


def test_verify_keeps_the_module_with_o(tmp_path):
    kept = tmp_path / "net.py"
    proc = run("verify", str(EXAMPLES / "seed001.toml"), "--against", "fd", "-o", str(kept))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"style vectorized, kept in {kept}" in proc.stdout
    assert "def loss_and_gradients(params, X, Y, workspace=None):" in kept.read_text()


def test_verify_generic_g_is_bad_input():
    proc = run("verify", str(EXAMPLES / "tutorial.toml"))
    assert proc.returncode == 2
    assert "tutorial.toml: key 'activation': layer 1 uses the generic activation g" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_verify_without_jax_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "jax", None)
    assert main(["verify", str(EXAMPLES / "softmax_ce.toml"), "--against", "jax"]) == 2
    err = capsys.readouterr().err
    assert "jax is not installed" in err and "pip install 'symprop[verify]'" in err


def test_codegen_unwritable_output_is_exit_2(tmp_path, capsys):
    target = tmp_path / "missing" / "net.py"
    assert main(["codegen", str(EXAMPLES / "softmax_ce.toml"), "-o", str(target)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not target.exists()


def test_version_names_the_installed_package():
    from importlib.metadata import version

    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout == f"symprop {version('symprop')}\n"
