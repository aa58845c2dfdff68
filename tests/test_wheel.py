"""The built wheel, installed non-editably in a brand-new venv, runs every CLI command.

This is what a user gets from ``pip install``: no source tree, no editable path, no test
extras (so no JAX or PyTorch), run from a folder that is not the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args, cwd, expect=0, stdin=None):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          input=stdin, timeout=600, check=False,
                          env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == expect, (args, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, (args, proc.stderr)
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the venv's symprop command, a work folder holding copies of the example specs)."""
    base = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", base / "dist", ROOT],
         cwd=base)
    wheel, = (base / "dist").glob("symprop-*.whl")
    venv.create(base / "venv", with_pip=True, clear=True)
    python = base / "venv" / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", wheel], cwd=base)
    work = base / "work"
    work.mkdir()
    for name in ("tutorial.toml", "softmax_ce.toml", "seed001.toml"):
        shutil.copy(ROOT / "examples" / name, work / name)
    return base / "venv" / "bin" / "symprop", python, work


def test_the_wheel_is_installed_not_linked(installed):
    _, python, work = installed
    where = _run([python, "-c", "import symprop, sys; print(symprop.__file__)"], work).stdout
    assert "site-packages" in where and str(ROOT) not in where


def test_every_command_runs_from_the_installed_wheel(installed):
    symprop, python, work = installed
    assert "derive" in _run([symprop, "--help"], work).stdout
    assert _run([symprop, "demo"], work).stdout.count("PROVEN equal") == 3
    assert "PROVEN" in _run([symprop, "derive", "tutorial.toml", "--wrt", "w_22^(L-1)",
                             "--prove"], work).stdout
    for fmt, suffix in (("latex", "tex"), ("html", "html"), ("markdown", "md")):
        _run([symprop, "derive", "tutorial.toml", "--wrt", "w_12^(L)", "--format", fmt,
              "--standalone", "-o", f"d.{suffix}"], work)
        assert (work / f"d.{suffix}").stat().st_size > 1000
    for suffix in ("tex", "html", "md"):
        _run([symprop, "report", "seed001.toml", "-o", f"r.{suffix}"], work)
        assert (work / f"r.{suffix}").stat().st_size > 1000

    _run([symprop, "codegen", "softmax_ce.toml", "-o", "net.py"], work)
    _run([symprop, "codegen", "seed001.toml", "-o", "net_scalar.py", "--style", "scalar"], work)
    use = ("import net, net_scalar; p = net.init_params(); "
           "print(net.loss(p, [[0.1] * net.LAYERS[0]], [[0, 1, 0]]))")
    _run([python, "-c", use], work)
    assert "PASS" in _run([symprop, "verify", "softmax_ce.toml", "--against", "fd"],
                          work).stdout
    # no verify extra in this venv: a clear message naming it, exit 2
    missing = _run([symprop, "verify", "softmax_ce.toml", "--against", "jax"], work, expect=2)
    assert "symprop[verify]" in missing.stderr

    formula = "2(a_1^(L) - y_1) g'^(L)(z_1^(L)) a_2^(L-1)"
    _run([symprop, "check", "tutorial.toml", "--wrt", "w_12^(L)", "--formula", formula], work)
    _run([symprop, "check", "tutorial.toml", "--wrt", "w_12^(L)", "--formula", "-"], work,
         stdin="2(a_1^(L) - y_1) a_2^(L-1)", expect=1)
    (work / "mygrad.py").write_text("import net\n\n\ndef gradients(params, X, Y):\n"
                                    "    return net.gradients(params, X, Y)\n")
    _run([symprop, "check", "softmax_ce.toml", "--function", "mygrad.py:gradients"], work)
    _run([symprop, "derive", "tutorial.toml", "--wrt", "w_99^(L)"], work, expect=2)


@pytest.mark.needs("pdflatex")
def test_the_installed_wheel_writes_a_pdf_report(installed):
    symprop, _, work = installed
    _run([symprop, "report", "seed001.toml", "-o", "r.pdf"], work)
    assert (work / "r.pdf").read_bytes().startswith(b"%PDF")
