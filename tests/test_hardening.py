"""Hostile and broken input, nothing lost, big networks refused early (issue 6).

Every hostile string below would, if anything evaluated it, create a canary file; the
tests check it never appears, that the command exits 2 with a message naming the place,
and that no traceback is printed.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time
import types
from pathlib import Path

import pytest
from conftest import need

from symprop import Spec
from symprop.budget import TooBigError, composed_size
from symprop.cli import main
from symprop.codegen import generate
from symprop.io import write_atomic

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TUTORIAL = str(EXAMPLES / "tutorial.toml")
SOFTMAX = str(EXAMPLES / "softmax_ce.toml")


def _toml(data: dict) -> str:
    """A spec dict as TOML (JSON strings and lists are valid TOML values)."""
    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append(f"[{key}]\n" + "".join(f"{k} = {json.dumps(v)}\n"
                                                 for k, v in value.items()))
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n" + "\n".join(tables)


def _spec_file(tmp_path: Path, **changes) -> str:
    data = {"name": "t", "layers": [2, 3, 2], "activation": "tanh", "loss": "sse", **changes}
    path = tmp_path / "spec.toml"
    path.write_text(_toml(data), encoding="utf-8")
    return str(path)


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- hostile input
def _payload(canary: Path) -> str:
    return f"__import__('os').system('touch {canary}')"


def _hostile_specs(canary: Path) -> list[tuple[dict, str]]:
    """(spec changes, a fragment of the message): each must be refused, nothing run."""
    code = _payload(canary)
    return [
        ({"activation": code}, "key 'activation'"),
        ({"loss": code}, "key 'loss'"),
        ({"loss": "a.__class__.__bases__"}, "Attribute access is not allowed"),
        ({"loss": "open('/etc/passwd')"}, "key 'loss'"),
        ({"loss": "getattr(a, 'real')"}, "key 'loss'"),
        ({"loss": "eval('a')"}, "key 'loss'"),
        ({"loss": "exec('a')"}, "key 'loss'"),
        ({"loss": "(lambda: a)()"}, "key 'loss'"),
        ({"loss": "[a][0]"}, "key 'loss'"),
        ({"loss": "a if y else a"}, "key 'loss'"),
        ({"loss": "f'{a}'"}, "key 'loss'"),
        ({"loss": "a; import os"}, "key 'loss'"),
        ({"loss": "__builtins__"}, "key 'loss'"),
        ({"loss": "a" + " + a" * 2000}, "key 'loss'"),
        ({"loss": "(" * 200 + "a" + ")" * 200}, "key 'loss'"),
        ({"loss": "a**99999999999"}, "key 'loss'"),
        ({"activations": {"evil": code}, "activation": "evil"}, "evil"),
        ({"activations": {"evil": "x.__class__"}, "activation": "evil"}, "evil"),
        ({"activations": {"evil": "(lambda q: q)(x)"}, "activation": "evil"}, "evil"),
        ({"activations": {"__init__": "x"}, "activation": "tanh"}, "__init__"),
        ({"activation": "tanh(__import__('os'))"}, "key 'activation'"),
        ({"activation": "leaky_relu(1e309)"}, "key 'activation'"),
        ({"name": "line\nbreak"}, "key 'name'"),
        ({"name": "x" * 81}, "key 'name'"),
    ]


def test_hostile_spec_strings_are_refused_and_never_run(tmp_path, capsys):
    canary = tmp_path / "CANARY"
    cases = _hostile_specs(canary)
    for changes, fragment in cases:
        spec = _spec_file(tmp_path, **changes)
        for command in (["derive", spec, "--wrt", "w_11^(L)"], ["codegen", spec, "-o",
                                                                   str(tmp_path / "m.py")]):
            code, _out, err = _run(command, capsys)
            assert code == 2, (changes, err)
            assert fragment in err and "Traceback" not in err, (changes, err)
            assert not (tmp_path / "m.py").exists()
    assert not canary.exists()


def _layer_list_file(tmp_path: Path, layer: dict) -> str:
    """A design.md 3b spec: input 2, the given layer, a dense output layer."""
    text = 'name = "t"\ninput = 2\nloss = "sse"\n'
    for table in (layer, {"kind": "dense", "width": 2}):
        text += "[[layer]]\n" + "".join(f"{k} = {_value(v)}\n" for k, v in table.items())
    path = tmp_path / "layers.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _value(v) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {json.dumps(x)}" for k, x in v.items()) + " }"
    return json.dumps(v)


def test_hostile_layer_lists_are_refused_and_never_run(tmp_path, capsys):
    """A custom layer's formula, its parameter names and every other key of a [[layer]]
    table are parsed, never evaluated: each is refused with the layer and key named."""
    code = _payload(tmp_path / "CANARY")
    custom = {"kind": "custom", "width": 2, "formula": "sum_k(c_jk * a_k)",
              "params": {"c": "jk"}}
    cases = [
        (custom | {"formula": code}, "layer 1 (custom), key 'formula'"),
        (custom | {"formula": "a_j.__class__"}, "Attribute access is not allowed"),
        (custom | {"formula": "eval('a_j')"}, "layer 1 (custom), key 'formula'"),
        (custom | {"formula": "(lambda: a_j)()"}, "layer 1 (custom), key 'formula'"),
        (custom | {"formula": "a_j" + " + a_j" * 2000}, "layer 1 (custom), key 'formula'"),
        (custom | {"formula": "a_j**99999999999"}, "layer 1 (custom), key 'formula'"),
        (custom | {"params": {"__class__": "jk"}}, "layer 1 (custom), key 'params'"),
        (custom | {"params": {"c": code}}, "layer 1 (custom), key 'params'"),
        (custom | {"init": {"c": code}}, "layer 1 (custom), key 'init.c'"),
        (custom | {"width": 10 ** 9}, "layer 1 (custom), key 'width'"),
        ({"kind": code}, "layer 1, key 'kind'"),
        ({"kind": "add", "from": code}, "layer 1 (add), key 'from'"),
        ({"kind": "dense", "width": 2, "activation": code}, "layer 1 (dense), key 'activation'"),
    ]
    for layer, fragment in cases:
        spec = _layer_list_file(tmp_path, layer)
        for command in (["derive", spec, "--wrt", "w_11^(L)"], ["codegen", spec, "-o",
                                                                   str(tmp_path / "m.py")]):
            status, _out, err = _run(command, capsys)
            assert status == 2, (layer, err)
            assert fragment in err and "Traceback" not in err, (layer, err)
            assert not (tmp_path / "m.py").exists()
    assert not (tmp_path / "CANARY").exists()


def _hostile_formulas(canary: Path) -> list[str]:
    return [_payload(canary), r"\input{/etc/passwd}", r"\write18{touch " + str(canary) + "}",
            "a_1^(L).__class__", "lambda: 1", "eval(a_1^(L))", "exec(1)", "__import__",
            "x_1" + " + x_1" * 3000, "(" * 100 + "x_1" + ")" * 100, "a_1^(L)^{99999}",
            "\x00", "w_{12}^{(L)} \\def\\x{1}"]


def test_hostile_formulas_are_refused_and_never_run(tmp_path, capsys):
    canary = tmp_path / "CANARY"
    for text in _hostile_formulas(canary):
        code, _out, err = _run(["check", TUTORIAL, "--wrt", "w_12^(L)", "--formula", text],
                              capsys)
        assert code == 2, (text[:40], err)
        assert "--formula" in err and "Traceback" not in err
    assert not canary.exists()


def _hostile_matrix_formulas(canary: Path) -> list[tuple[str, str]]:
    """(formula, a fragment of the message): seed 001's matrix grammar under attack."""
    lhs = r"\frac{\partial C}{\partial W^{(2)}} = "
    return [
        (lhs + _payload(canary), "--formula"),
        (lhs + r"\Delta^{(2)\top}.__class__", "--formula"),
        (lhs + "W^{(__import__)}", "cannot read the layer"),
        ("dC/d__import__('os') = X", "--formula"),
        (lhs + "X @ __import__", "--formula"),
        (lhs + "W^{(2)} " * 1200, "characters long"),
        (lhs + "(" * 100 + "W^{(2)}" + ")" * 100, "nests brackets"),
        (lhs + r"W^{(2)} W^{(2)\top} " * 8 + "W^{(2)}", "writes out"),
        (lhs + r"W^{(2)} \odot \exp(W^{(2)})^{99999}", "small number"),
    ]


def test_hostile_matrix_formulas_are_refused_and_never_run(tmp_path, capsys):
    canary = tmp_path / "CANARY"
    for text, fragment in _hostile_matrix_formulas(canary):
        code, _out, err = _run(["check", TUTORIAL, "--formula", text], capsys)
        assert code == 2, (text[:60], err)
        assert fragment in err and "Traceback" not in err, (text[:60], err)
    assert not canary.exists()


HOSTILE_WRT = ["__import__('os').system('true')", "w_12^(L); rm -rf /", "w_12^(L).real",
               "w_" + "1" * 5000 + "^(L)", "w_{12}^{(" + "(" * 100 + "L)}", "\\input{x}",
               "w_12^(__import__)", ""]


@pytest.mark.parametrize("wrt", HOSTILE_WRT)
def test_hostile_wrt_names_are_refused(wrt, capsys):
    code, out, err = _run(["derive", TUTORIAL, "--wrt", wrt], capsys)
    assert code == 2 and "error:" in err and "Traceback" not in err
    assert out == ""


def test_hostile_function_names_are_refused(tmp_path, capsys):
    # --function runs the user's own file by design; the NAME is looked up, never evaluated
    grad = tmp_path / "g.py"
    grad.write_text("import os\n\ndef gradients(params, X, Y):\n    return {}\n")
    for name in ("os.system", "__import__('os')", "gradients()", "", "__class__"):
        code, _out, err = _run(["check", SOFTMAX, "--function", f"{grad}:{name}"], capsys)
        assert code == 2 and "Traceback" not in err, (name, err)


def test_hostile_name_is_inert_in_generated_python_latex_and_html(tmp_path, capsys):
    canary = tmp_path / "CANARY"
    name = f'"""; import os; os.system("touch {canary}") # \\input{{x}} <script>'[:80]
    spec = _spec_file(tmp_path, name=name)
    module = tmp_path / "m.py"
    assert main(["codegen", spec, "-o", str(module)]) == 0
    subprocess.run([sys.executable, str(module)], check=True, cwd=tmp_path)
    subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(module)],
                   check=True, cwd=tmp_path, capture_output=True)
    assert not canary.exists()
    for fmt, bad in (("latex", r"\input{x}"), ("html", "<script>")):
        code, out, _err = _run(["derive", spec, "--wrt", "w_11^(L)", "--format", fmt,
                               "--standalone"], capsys)
        assert code == 0 and bad not in out


# ---------------------------------------------------------------- bad input
def _bad_input_cases(tmp: Path) -> list[tuple[list[str], str]]:
    """(argv, fragment of the message): every one exits 2 with a message, no traceback."""
    def spec(**changes):
        sub = tmp / f"s{len(list(tmp.iterdir()))}"
        sub.mkdir()
        return _spec_file(sub, **changes)

    broken = tmp / "broken.toml"
    broken.write_text("layers = [3, 4\n")
    latin1 = tmp / "latin1.toml"
    latin1.write_bytes(b'name = "caf\xe9"\nlayers = [2, 2]\n')
    ok = spec()
    return [
        (["derive", str(broken), "--wrt", "w_11^(L)"], "broken.toml: not valid TOML"),
        (["derive", str(latin1), "--wrt", "w_11^(L)"], "latin1.toml: cannot read the file"),
        (["derive", str(tmp / "missing.toml"), "--wrt", "w_11^(L)"], "no such file"),
        (["derive", str(tmp), "--wrt", "w_11^(L)"], "is a directory"),
        (["derive", ok + "/inner.toml", "--wrt", "w_11^(L)"], "cannot read the file"),
        (["derive", spec(layers="3,4"), "--wrt", "w_11^(L)"], "expected a list of widths"),
        (["derive", spec(layers=[3, "4"]), "--wrt", "w_11^(L)"], "must be a whole number"),
        (["derive", spec(layers=[3, 2.5]), "--wrt", "w_11^(L)"], "must be a whole number"),
        (["derive", spec(layers=[3, 0, 2]), "--wrt", "w_11^(L)"], "must be at least 1, got 0"),
        (["derive", spec(layers=[3, -4, 2]), "--wrt", "w_11^(L)"], "at least 1, got -4"),
        (["derive", spec(layers=[3]), "--wrt", "w_11^(L)"], "needs at least 2 layers"),
        (["derive", spec(layers=[3, 10**6]), "--wrt", "w_11^(L)"], "more than the 100000"),
        (["derive", spec(bias="yes"), "--wrt", "w_11^(L)"], "key 'bias'"),
        (["derive", spec(bias=[True]), "--wrt", "w_11^(L)"], "has 1 entries"),
        (["derive", spec(activation=3), "--wrt", "w_11^(L)"], "expected an activation"),
        (["derive", spec(activation=["tanh"]), "--wrt", "w_11^(L)"], "has 1 entries"),
        (["derive", spec(activation="relu6"), "--wrt", "w_11^(L)"], "unknown activation"),
        (["derive", spec(activation="softmax"), "--wrt", "w_11^(L)"], "only supported on the"),
        (["derive", spec(loss=5), "--wrt", "w_11^(L)"], "key 'loss': expected a string"),
        (["derive", spec(loss="hinge"), "--wrt", "w_11^(L)"], "unknown loss 'hinge'"),
        (["derive", spec(loss="cross_entropy"), "--wrt", "w_11^(L)"],
         "does not give probabilities"),
        (["derive", spec(loss="binary_cross_entropy", activation="relu"), "--wrt", "w_11^(L)"],
         "does not give probabilities"),
        (["derive", spec(loss="y**2"), "--wrt", "w_11^(L)"], "does not depend on the output"),
        (["derive", spec(reduction="avg"), "--wrt", "w_11^(L)"], "unknown reduction"),
        (["derive", spec(name=7), "--wrt", "w_11^(L)"], "key 'name'"),
        (["derive", spec(layer=[2, 2]), "--wrt", "w_11^(L)"], "either layers = [...] or [[layer]] tables, not both"),
        (["derive", ok, "--wrt", "w_11^(7)"], "w_11^(7)"),
        (["derive", ok, "--wrt", "w_91^(L)"], "w_91^(L)"),
        (["derive", ok, "--wrt", "b_1^(L)"], "has none"),
        (["derive", ok, "--wrt", "foo"], "foo"),
        (["derive", ok, "--wrt", "a_5^(L-1)"], "a_5^(L-1)"),
        (["derive", ok, "--wrt", "w_11^(L)", "-o", str(tmp / "no" / "such" / "d.txt")],
         "does not exist"),
        (["derive", ok, "--wrt", "w_11^(L)", "-o", str(tmp)], "is a directory"),
        (["derive", ok, "--wrt", "w_11^(L)", "-o", str(broken) + "/x.txt"], "does not exist"),
        (["derive", ok, "--wrt", "w_11^(L)", "-o", "/proc/symprop.txt"], "cannot write"),
        (["report", ok, "-o", str(tmp / "r.docx")], "cannot tell the report format"),
        (["codegen", ok, "-o", str(tmp / "missing" / "m.py")], "does not exist"),
        (["verify", ok, "--batch", "0"], "--batch must be at least 1"),
        (["check", ok, "--wrt", "w_11^(L)", "--formula", "2(a_1^(L) - y_1"], "--formula"),
        (["check", ok, "--function", str(tmp / "nope.py") + ":f"], "nope.py"),
        (["check", ok, "--function", "nocolon.py"], "FILE.py:NAME"),
    ]


def test_every_bad_input_gets_exit_2_and_a_message_naming_the_place(tmp_path, capsys):
    cases = _bad_input_cases(tmp_path)
    for argv, fragment in cases:
        code, _out, err = _run(argv, capsys)
        assert code == 2, (argv, err)
        assert fragment in err, (argv, err)
        assert err.startswith(f"symprop {argv[0]}: error: ") and "Traceback" not in err
        assert err.count("\n") <= 4, err  # one paragraph (a caret adds two lines)


def test_a_real_process_prints_no_traceback_and_debug_shows_one(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("layers = [3, 0]\n")
    run = [sys.executable, "-m", "symprop"]
    plain = subprocess.run([*run, "derive", str(bad), "--wrt", "w_11^(1)"],
                           capture_output=True, text=True, check=False)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert "bad.toml: key 'layers': width of layer 1 must be at least 1, got 0" in plain.stderr
    debug = subprocess.run([*run, "--debug", "derive", str(bad), "--wrt", "w_11^(1)"],
                           capture_output=True, text=True, check=False)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "SpecError" in debug.stderr


def test_a_bug_of_ours_is_an_internal_error_line_not_a_traceback(monkeypatch, capsys):
    from symprop import cli

    def broken(args):
        raise ZeroDivisionError("boom")

    monkeypatch.setitem(cli._COMMANDS, "demo", broken)
    code, _out, err = _run(["demo"], capsys)
    assert code == 3 and "internal error (ZeroDivisionError: boom)" in err
    assert "--debug" in err and "Traceback" not in err


# ---------------------------------------------------------------- nothing lost
def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_atomic_keeps_the_old_file_when_interrupted_mid_write(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    target.write_text("old")
    real_fdopen = os.fdopen

    class Interrupted:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[: len(data) // 2])
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: Interrupted(real_fdopen(*a, **k)))
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "new content " * 1000)
    assert target.read_text() == "old" and _leftovers(tmp_path) == []


def test_an_error_while_rendering_leaves_the_existing_output_untouched(tmp_path, monkeypatch,
                                                                       capsys):
    from symprop.codegen import module

    out = tmp_path / "m.py"
    out.write_text("old")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "render", interrupted)
    code, _, err = _run(["codegen", SOFTMAX, "-o", str(out)], capsys)
    assert code == 130 and "interrupted; no output was written" in err
    assert out.read_text() == "old" and _leftovers(tmp_path) == []


def test_a_ctrl_c_that_a_callback_swallows_still_stops_the_output(tmp_path, monkeypatch,
                                                                 capsys):
    """CI found it: the Ctrl-C landed in JAX's garbage-collection hook, whose exceptions
    Python ignores, and the report was written with exit 0."""
    from symprop.codegen import module

    out = tmp_path / "m.py"
    out.write_text("old")
    usual = module.render

    class Swallows:  # an exception raised in __del__ is "ignored", as in JAX's hook
        def __del__(self):
            signal.raise_signal(signal.SIGINT)
            sum(range(1000))  # the handler runs here, inside __del__

    def render(*args, **kwargs):
        Swallows()
        return usual(*args, **kwargs)

    monkeypatch.setattr(module, "render", render)
    code, _, err = _run(["codegen", SOFTMAX, "-o", str(out)], capsys)
    assert code == 130 and "interrupted; no output was written" in err, err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert out.read_text() == "old" and _leftovers(tmp_path) == []


def test_ctrl_c_during_a_long_report_writes_nothing(tmp_path):
    spec = tmp_path / "wide.toml"
    spec.write_text('layers = [784, 256, 256, 10]\nactivation = ["sigmoid", "sigmoid", '
                    '"softmax"]\nloss = "cross_entropy"\nbias = true\n')
    out = tmp_path / "report.md"
    out.write_text("old")
    # -X faulthandler: if the process ever crashes instead, its stack is in the message
    proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "symprop", "report",
                             str(spec), "-o", str(out)], stderr=subprocess.PIPE, text=True)
    time.sleep(6)  # past start-up (under 1 s), well inside the report's 20 s of work
    assert proc.poll() is None, "the report finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; no output was written" in err and "Traceback" not in err
    assert out.read_text() == "old" and _leftovers(tmp_path) == []


def test_a_ctrl_c_inside_jax_or_torch_code_stops_at_the_next_step_not_inside_it():
    # CI once saw SIGSEGV instead of exit 130: a KeyboardInterrupt thrown inside JAX's
    # garbage-collection hook, which runs inside its compiler, can crash the process
    from symprop.interrupts import remember_interrupts, stop_if_interrupted
    from symprop.progress import progress

    def ctrl_c():
        signal.raise_signal(signal.SIGINT)
        return "went on"

    usual = signal.getsignal(signal.SIGINT)
    try:
        for package in ("jax._src.lib", "jaxlib.xla_client", "torch.autograd"):
            # the same function, as if it were defined in that package
            hook = types.FunctionType(ctrl_c.__code__, {"__name__": package, "signal": signal})
            remember_interrupts()
            assert hook() == "went on", package  # recorded, not thrown there
            steps = iter(progress(range(3), what="steps"))
            with pytest.raises(KeyboardInterrupt):  # the work stops before its next step
                next(steps)
            with pytest.raises(KeyboardInterrupt):
                stop_if_interrupted()
            with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C stops at once
                hook()
        remember_interrupts()
        with pytest.raises(KeyboardInterrupt):  # symprop's own code stops at once
            signal.raise_signal(signal.SIGINT)
            sum(range(1000))
    finally:
        signal.signal(signal.SIGINT, usual)


def test_ctrl_c_while_symprop_is_still_loading_is_quiet():
    # import symprop is instant (names load on first use), so the console entry point can
    # catch a Ctrl-C that lands while SymPy and the CLI are importing
    # the installed console script (python -m goes through runpy, whose own imports come
    # first and, rarely, make CPython end with SIGINT even though symprop caught it)
    command = Path(sys.executable).with_name("symprop")
    proc = subprocess.Popen([command, "demo"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)  # past the interpreter's own start, inside the imports or the demo
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err


# ---------------------------------------------------------------- big networks
DEEP = {"layers": [4] * 41, "activation": "tanh", "loss": "sse"}


def test_proof_of_a_deep_network_falls_back_to_autodiff_and_says_why(tmp_path, capsys):
    """The composed C_0 of 40 layers is never built: the proof is JAX's autodiff of the
    reference forward pass (PyTorch's without JAX), and the last line says why."""
    need("jax")
    spec = _spec_file(tmp_path, **DEEP)
    code, out, _ = _run(["derive", spec, "--wrt", "w_12^(1)", "--prove"], capsys)
    assert code == 0
    assert out.splitlines()[-1] == (
        "Proof: PROVEN equal to JAX autodiff of the reference forward pass at a random point "
        "(float64): the composed C_0 would have about 1.9e+25 symbols, more than the 100,000 "
        "a proof against it is done for.")


def test_report_of_a_deep_network_is_refused_with_its_page_count(tmp_path, capsys):
    spec = _spec_file(tmp_path, **DEEP)
    out = tmp_path / "r.md"
    code, _, err = _run(["report", spec, "-o", str(out)], capsys)
    assert code == 2 and "about 1,331 pages, more than the 300" in err
    assert not out.exists()


def test_force_does_the_work_anyway(tmp_path, capsys):
    spec = _spec_file(tmp_path, layers=[90, 60, 2], activation="tanh", loss="sse")
    out = tmp_path / "m.py"
    assert _run(["codegen", spec, "-o", str(out), "--style", "scalar"], capsys)[0] == 2
    assert _run(["--force", "codegen", spec, "-o", str(out), "--style", "scalar"], capsys)[0] == 0
    assert out.read_text().count("\n") > 5520
    out.unlink()
    assert _run(["codegen", spec, "-o", str(out), "--style", "scalar", "--force"], capsys)[0] == 0
    assert out.read_text().count("\n") > 5520


def test_composed_size_counts_the_symbols_sympy_walks():
    # the estimate is exact for the fully composed C_0 of small networks (no simplification)
    import sympy

    from symprop.derivation import backprop

    for layers, act, loss in (([2, 3, 2], "tanh", "sse"), ([3, 2, 2, 3], "sigmoid", "mse"),
                              ([2, 2, 3], ["tanh", "softmax"], "cross_entropy")):
        spec = Spec(layers=layers, activation=act, loss=loss, bias=True)
        walked = sum(1 for e in sympy.preorder_traversal(backprop(spec).graph.composed_C0)
                     if e.is_Symbol)
        assert walked <= composed_size(spec, 1) <= 4 * walked, (layers, walked)


def test_wide_networks_derive_and_generate_code_quickly_with_elided_sums(tmp_path, capsys):
    spec = _spec_file(tmp_path, layers=[1000, 1000, 1000, 10],
                      activation=["tanh", "tanh", "softmax"], loss="cross_entropy", bias=True)
    code, out, _ = _run(["derive", spec, "--wrt", "w_12^(1)"], capsys)
    assert code == 0 and len(out) < 20_000
    assert "delta_0^(2)*w_01^(2) + delta_1^(2)*w_11^(2) + ... + " \
           "delta_999^(2)*w_999,1^(2)" in out  # layers as typed: absolute
    module = tmp_path / "wide.py"
    assert main(["codegen", spec, "-o", str(module)]) == 0
    assert "LAYERS = [1000, 1000, 1000, 10]" in module.read_text()


def test_api_refusals_are_input_errors(tmp_path):
    from symprop.derivation import backprop

    deep = Spec(**DEEP)
    with pytest.raises(TooBigError, match="symbols"):
        backprop(deep).derive("w_12^(1)").prove()
    with pytest.raises(TooBigError, match="lines"):
        generate(Spec(layers=[100, 100, 2], activation="tanh", loss="sse"), "scalar")


# ---------------------------------------------------------------- progress bar
def _stderr_of(args: list[str], tty: bool) -> str:
    if not tty:
        return subprocess.run([sys.executable, "-m", "symprop", *args], capture_output=True,
                              text=True, check=True).stderr
    leader, follower = pty.openpty()
    # a terminal 100 columns wide (a fresh pty has 0, and tqdm draws nothing in 0 columns)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "symprop", *args], stdout=subprocess.DEVNULL,
                            stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(leader)
    assert proc.returncode == 0
    return b"".join(chunks).decode("utf-8", "replace")


def test_progress_bar_only_on_a_terminal(tmp_path):
    out = tmp_path / "r.md"
    args = ["report", str(EXAMPLES / "seed001.toml"), "-o", str(out)]
    on_tty = _stderr_of(args, tty=True)
    assert "matrix form: checking entries" in on_tty and "\r" in on_tty
    piped = _stderr_of(args, tty=False)
    assert "checking" not in piped and "\r" not in piped
    assert piped.strip() == f"wrote {out}"


# ---------------------------------------------------------------- numeric edge cases
HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu(0.2)", "softplus", "elu", "swish"]
OUTPUTS = [("identity", "sse"), ("tanh", "half_sse"), ("sigmoid", "mse"),
           ("softmax", "cross_entropy"), ("sigmoid", "cross_entropy"),
           ("sigmoid", "binary_cross_entropy"), ("softmax", "sse"), ("swish", "(a - y)**4")]


def _edge_inputs(module, dtype, batch: int):
    """Pre-activations of +-1e3 in every layer, targets exactly 0 and 1.

    Overflow, division by zero and invalid values raise (stricter than NumPy's warnings);
    underflow to 0 (exp(-2000)) is exact enough and NumPy ignores it by default.
    """
    import numpy as np

    params = module.init_params(0, dtype)
    for key in params:
        params[key][...] = 0.0
        if key.startswith("W"):
            params[key].flat[::2] = 1.0
            params[key].flat[1::2] = -1.0
    n_in, n_out = module.LAYERS[0], module.LAYERS[-1]
    X = np.resize(np.array([1e3, -1e3], dtype), (batch, n_in)).astype(dtype)
    Y = np.zeros((batch, n_out), dtype)
    Y[:, 0] = 1.0  # one-hot: a 1 and (for n_out > 1) 0s
    return params, X, Y


@pytest.mark.parametrize("style", ["vectorized", "scalar"])
def test_edge_cases_give_finite_results_and_no_warnings(style):
    import warnings

    import numpy as np

    checked = 0
    for hidden in HIDDEN:
        for out, loss in OUTPUTS:
            for layers in ((1, 1, 1), (3, 2, 1), (2, 3, 3)):  # width 1 everywhere, 1 output
                if out == "softmax" and layers[-1] == 1:
                    layers = (*layers[:-1], 2)
                spec = Spec(layers=layers, activation=[hidden, out], loss=loss, bias=True)
                module = generate(spec, style).load()
                for dtype in (np.float64, np.float32):
                    for batch in (1, 4):
                        params, X, Y = _edge_inputs(module, dtype, batch)
                        with warnings.catch_warnings(), np.errstate(all="raise", under="ignore"):
                            warnings.simplefilter("error")
                            value, grads = module.loss_and_gradients(params, X, Y)
                        assert np.isfinite(value), (spec, dtype, batch)
                        for key, g in grads.items():
                            assert g.dtype == dtype and g.shape == params[key].shape
                            assert np.all(np.isfinite(g)), (spec, key, dtype, batch)
                        checked += 1
    assert checked == len(HIDDEN) * len(OUTPUTS) * 3 * 2 * 2  # 768 per style


# ---------------------------------------------------------------- property tests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symprop.errors import InputError

_ANY_VALUE = st.one_of(st.text(max_size=30), st.integers(-10, 10), st.floats(allow_nan=True),
                       st.booleans(), st.lists(st.one_of(st.integers(-3, 6), st.text(max_size=5),
                                                         st.booleans()), max_size=5))
_WORDS = st.sampled_from(["tanh", "sigmoid", "softmax", "relu", "g", "identity", "sse", "mse",
                          "cross_entropy", "binary_cross_entropy", "(a - y)**4", "mean", "sum",
                          "x**2", "a*y", "log(a)", "leaky_relu(0.1)", "elu(2)", "swish"])


@st.composite
def mutated_specs(draw):
    """A valid spec with one to three keys replaced by anything (often, not always, invalid)."""
    data = {"name": "p", "layers": [2, 3, 2], "activation": "tanh", "loss": "sse",
            "bias": True, "reduction": "mean"}
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from([*data, "activations", "extra"]))
        data[key] = draw(st.one_of(_ANY_VALUE, _WORDS, st.dictionaries(
            st.text(max_size=6), st.one_of(_WORDS, st.text(max_size=12)), max_size=2)))
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_specs())
def test_any_spec_dict_is_a_spec_or_an_input_error(data):
    try:
        spec = Spec.from_dict(data)
    except InputError as exc:  # a SpecError, or an ExpressionError in a loss or activation
        assert exc.where and str(exc), data
    else:
        assert Spec.from_dict(spec.to_dict()) == spec


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(
    lambda b: b.decode("latin-1")), mutated_specs().map(_toml)))
def test_any_spec_file_gives_exit_0_or_2_and_never_a_traceback(tmp_path, capsys, text):
    path = tmp_path / "fuzz.toml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    code, out, err = _run(["derive", str(path), "--wrt", "w_11^(1)"], capsys)
    assert code in (0, 2), (text, err)
    if code == 2:
        assert err.startswith("symprop derive: error: ") and "Traceback" not in err
        assert "fuzz.toml" in err or "w_11^(1)" in err, err
    else:
        assert out.startswith("dC_0/dw_11^(")  # layer 1, printed relative to L


def test_report_of_wide_layers_is_refused_for_its_matrix_check(tmp_path, capsys):
    spec = _spec_file(tmp_path, layers=[4, 300, 300, 300, 10], activation="tanh", loss="sse")
    out = tmp_path / "r.md"
    code, _, err = _run(["report", spec, "-o", str(out)], capsys)
    assert code == 2 and "exact check of the matrix form would have about 2,196,000 terms" in err
    assert not out.exists()


def test_a_forced_report_is_written(tmp_path, capsys):
    spec = _spec_file(tmp_path, layers=[2] * 21, activation="tanh", loss="sse")
    out = tmp_path / "r.md"
    code, _, err = _run(["report", spec, "-o", str(out)], capsys)
    assert code == 2 and "about 347 pages, more than the 300" in err and not out.exists()
    assert _run(["report", spec, "-o", str(out), "--force"], capsys)[0] == 0
    assert out.read_text().lower().count("backward step") >= 20
