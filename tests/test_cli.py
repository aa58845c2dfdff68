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


def test_demo_derives_the_three_seed_examples_and_proves_them():
    proc = run("demo")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for title in ("dC_0/dw_12^(L)", "dC_0/dw_22^(L-1)", "dC_0/da_2^(L-1)"):
        assert f"\n{title}\n" in out
    assert "dC_0/dw_12^(L) = 2*(a_1^(L) - y_1)*g'^(L)(z_1^(L))*a_2^(L-1)" in out
    assert out.count("Proof: PROVEN") == 3


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
    assert target.read_text().startswith("dC_0/dw_10^(L-1)")
    assert [p.name for p in tmp_path.iterdir()] == ["d.txt"]


@pytest.mark.parametrize("args, fragment", [
    (["derive", "missing.toml", "--wrt", "w_12^(L)"], "missing.toml: no such file"),
    (["derive", "EX/tutorial.toml", "--wrt", "w_{92}^{(L)}"], "node 9 of layer 3"),
    (["derive", "EX/tutorial.toml", "--wrt", "w_12^(L-7)"], "layer -4"),
    (["derive", "EX/tutorial.toml", "--wrt", "v_1^(L)"], "cannot read the name"),
    (["derive", "EX/tutorial.toml", "--wrt", "b_1^(L)"], "layer 3 has none"),
    (["derive", "EX/tutorial.toml", "--wrt", "w_123^(L)"], "needs 2 node index(es)"),
    (["derive", "EX", "--wrt", "w_12^(L)"], "is a directory"),
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
