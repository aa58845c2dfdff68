"""The torch and JAX targets (`codegen --target torch|jax`): autograd Functions and
custom_vjp functions whose backward is the derivation, against PyTorch autograd and JAX of
the independent forward pass, finite differences, the framework's own gradient check
(gradcheck, check_grads), Net's .grad and jax.grad, float32, |z| = 1e3, torch.compile, ruff,
the command line."""

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_near_autodiff, need

from symprop import Spec
from symprop.cli import main
from symprop.codegen import generate
from symprop.errors import InputError
from symprop.verify import verify

HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu(0.2)", "softplus", "elu", "swish"]
OUTPUTS = [("identity", "sse"), ("tanh", "half_sse"), ("sigmoid", "mse"),
           ("softmax", "cross_entropy"), ("sigmoid", "cross_entropy"),
           ("sigmoid", "binary_cross_entropy"), ("softmax", "binary_cross_entropy"),
           ("softmax", "sse"), ("swish", "(a - y)**4")]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _spec(hidden, out, loss, bias=True, layers=(3, 4, 3), reduction="mean"):
    return Spec(layers=layers, activation=[hidden, out], loss=loss, bias=bias,
                reduction=reduction)


TARGETS = ["torch", "jax"]
#: What each target's verification adds: the framework's gradient check and autodiff entry.
OWN_CHECKS = {"torch": {"torch gradcheck", "Net.loss().backward()"},
              "jax": {"jax check_grads", "jax.grad(loss)"}}


def _verified(spec, target, dtype="float64"):
    need("torch")
    need("jax")
    report = verify(spec, target=target, dtype=dtype)
    assert report.passed, str(report)
    kinds = {c.against for c in report.comparisons}
    assert {"jax", "torch", "fd"} | OWN_CHECKS[target] <= kinds
    return report


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_every_hidden_activation_matches_autograd_and_its_own_checks(hidden, target):
    report = _verified(_spec(hidden, "softmax", "cross_entropy"), target)
    assert_near_autodiff(report, 1e-10)  # against autodiff, float64


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(("out", "loss"), OUTPUTS)
def test_every_output_and_loss_matches_autograd_and_its_own_checks(out, loss, target):
    _verified(_spec("tanh", out, loss), target)


@pytest.mark.parametrize("target", TARGETS)
def test_deeper_nets_without_biases_and_summed(target):
    _verified(Spec(layers=(4, 5, 5, 3, 2), activation=["sigmoid", "relu", "tanh", "softmax"],
                   loss="cross_entropy", bias=[True, False, True, False], reduction="sum"),
              target)
    _verified(Spec(layers=(2, 3), activation="tanh", loss="sse"), target)  # one layer


@pytest.mark.parametrize("target", TARGETS)
def test_float32_agrees_to_float32_accuracy(target):
    report = _verified(_spec("sigmoid", "softmax", "cross_entropy"), target, dtype="float32")
    worst = max(c.max_rel_error for c in report.comparisons if c.against == "torch")
    assert 1e-9 < worst < 1e-5


@pytest.mark.parametrize("target", TARGETS)
def test_a_wrong_backward_is_caught(target):
    """The derived backward is what the framework runs: an error in it is caught by the
    autodiff references and by the framework's own gradient check."""
    need("torch")
    need("jax")
    spec = _spec("tanh", "softmax", "cross_entropy")
    module = generate(spec, target=target)
    line, wrong = {
        "torch": (("        dA.addcmul_(dA * A, A, value=-1)  # dA * (1 - A**2)\n"
                   "        Delta = dA\n    else:\n        Delta = dA * (1 - A**2)\n"),
                  ("        dA.addcmul_(dA * A, A, value=-1.002)\n        Delta = dA\n"
                   "    else:\n        Delta = dA * (1 - 1.002*A**2)\n")),
        "jax": ("    Delta = dA * (1 - A**2)\n", "    Delta = dA * (1 - A**2) * 1.001\n")}[target]
    assert line in module.source
    module.source = module.source.replace(line, wrong)
    report = verify(spec, module=module, against=("torch", "fd"))
    assert not report.passed
    assert {c.parameter for c in report.failures if c.against == "torch"} == {"W1", "b1"}
    check = {"torch": "torch gradcheck", "jax": "jax check_grads"}[target]
    assert any(c.against == check for c in report.failures)


def test_the_module_saves_the_output_and_works_in_place():
    source = generate(_spec("sigmoid", "softmax", "cross_entropy"), target="torch").source
    assert "    A = Z.sigmoid_()  # in z's memory: the backward reads only a\n" in source
    assert "    return A, (A_prev, W, A)\n" in source
    assert ("    if owned:  # the caller's own array: g' multiplies it in place\n"
            "        dA.mul_(A).addcmul_(dA, A, value=-1)  # dA * (A*(1 - A))\n"
            "        Delta = dA\n    else:\n"
            "        Delta = dA * (A*(1 - A))\n") in source
    assert "torch.addmm(b, A_prev, W.t())" in source
    assert "    return a*y.sum(dim=1, keepdim=True) - y\n" in source
    assert "    return y*torch.log_softmax(z, dim=1)\n" in source
    assert "autograd.grad" not in source and ".backward()" not in source.split("class Net")[0]
    # relu's derivative reads z: z is saved
    relu = generate(_spec("relu", "identity", "sse"), target="torch").source
    assert "    return A, (A_prev, W, Z)\n" in relu


def test_the_jax_module_is_custom_vjp_functions_of_the_derivation():
    source = generate(_spec("sigmoid", "softmax", "cross_entropy"), target="jax").source
    assert "@jax.custom_vjp\ndef layer1(A_prev, W, b):\n" in source
    assert "layer1.defvjp(_layer1_forward, _layer1_backward)\n" in source
    assert "output_loss.defvjp(_output_forward, _output_backward)\n" in source
    assert "    A = jax.nn.sigmoid(Z)\n    return A, (A_prev, W, A)\n" in source
    assert "    Delta = dA * (A*(1 - A))\n" in source
    assert "    return a*y.sum(axis=1, keepdims=True) - y\n" in source
    assert "_value_and_grad = jax.jit(jax.value_and_grad(_loss))\n" in source
    imports = [line for line in source.splitlines() if line.startswith(("import", "from"))]
    assert imports == ["import math", "import jax", "import jax.numpy as jnp"]


def _module(tmp_path, spec, name="net", target="torch"):
    need(target)
    path = tmp_path / f"{name}_{target}.py"
    return generate(spec, target=target).load(path), path


def array_library(target):
    """torch, or jax.numpy with float64 enabled."""
    lib = need(target)
    if target == "jax":
        lib.config.update("jax_enable_x64", True)
        return lib.numpy
    return lib


#: Pre-activations of +-1e3, targets at 0 and 1 (W1, W2, X, Y of a 2-3-3 network).
EXTREME = ([[1.0, 0], [0, 1], [1, 1]], [[1.0, 0, 0], [0, -1, 0], [0, 0, 0.5]],
           [[1e3, -1e3], [-1e3, 1e3], [0.5, -0.2]], [[0.0, 1, 0], [1, 0, 0], [0, 0, 1]])


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_finite_at_z_1e3(tmp_path, dtype, target):
    xp = array_library(target)
    t = getattr(xp, dtype)
    for hidden in HIDDEN:
        for out, loss in OUTPUTS:
            if (out, loss) == ("softmax", "binary_cross_entropy"):
                continue  # the module's Caution says where it is not overflow-safe
            m, _ = _module(tmp_path, _spec(hidden, out, loss, layers=(2, 3, 3)),
                           f"n_{len(hidden)}_{len(out)}_{len(loss)}", target)
            W1, W2, X, Y = (xp.asarray(np.array(a), dtype=t) for a in EXTREME)
            p = {**m.init_params(0, t), "W1": W1, "W2": W2}
            value, grads = m.loss_and_gradients(p, X, Y)
            assert np.isfinite(value), (hidden, out, loss)
            for key, g in grads.items():
                assert g.dtype == t and g.shape == p[key].shape
                assert bool(np.isfinite(np.asarray(g)).all()), (hidden, out, loss, key)


def test_net_is_a_module_whose_backward_fills_grad(tmp_path):
    torch = need("torch")
    m, _ = _module(tmp_path, _spec("tanh", "softmax", "cross_entropy"))
    net = m.Net(seed=1, dtype=torch.float64)
    assert [name for name, _ in net.named_parameters()] == ["W1", "b1", "W2", "b2"]
    X = torch.randn(5, 3, dtype=torch.float64)
    Y = torch.softmax(torch.randn(5, 3, dtype=torch.float64), dim=1)
    C = net.loss(X, Y)
    assert C.requires_grad and C.grad_fn.name().endswith("OutputLossBackward")
    C.backward()
    value, grads = m.loss_and_gradients({k: v.detach() for k, v in net.params().items()}, X, Y)
    assert value == pytest.approx(float(C.detach()), rel=1e-15)
    for key, g in grads.items():
        torch.testing.assert_close(getattr(net, key).grad, g, rtol=1e-12, atol=0)
    # one SGD step lowers the loss
    with torch.no_grad():
        for p in net.parameters():
            p -= 0.5 * p.grad
    assert float(net.loss(X, Y).detach()) < float(C.detach())
    assert net(X).shape == (5, 3)
    with pytest.raises(ValueError, match=r"X has shape \(5, 2\); expected \(batch, 3\)"):
        net.loss(X[:, :2], Y)


@pytest.mark.parametrize("example", ["dense", "residual"])
def test_torch_compile_traces_it(tmp_path, example):
    torch = need("torch")
    spec = (_spec("sigmoid", "softmax", "cross_entropy") if example == "dense" else
            Spec.from_toml(EXAMPLES / "residual.toml"))  # layernorm, add, custom layers
    m, _ = _module(tmp_path, spec)
    p = {k: v.requires_grad_() for k, v in m.init_params(0, torch.float32).items()}
    X = torch.randn(8, m.LAYERS[0])
    Y = torch.softmax(torch.randn(8, m.LAYERS[-1]), dim=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = torch.compile(m.loss, backend="eager")
        C = compiled(p, X, Y)
    C.backward()
    _, grads = m.loss_and_gradients({k: v.detach() for k, v in p.items()}, X, Y)
    for key, g in grads.items():
        torch.testing.assert_close(p[key].grad, g, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("target", TARGETS)
def test_generated_files_pass_ruff_and_run_without_symprop(tmp_path, target):
    need(target)
    paths = []
    for hidden in HIDDEN:  # every activation, with and without biases, through two layers
        for bias in (True, False):
            path = tmp_path / f"net_{len(paths)}.py"
            generate(Spec(layers=(3, 4, 4, 3), activation=[hidden, hidden, "softmax"],
                          loss="cross_entropy", bias=bias), target=target).write(path)
            paths.append(path)
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    proc = subprocess.run([ruff, "check", "--isolated", *map(str, paths)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    array = {"torch": "import torch\nX = torch.ones(2, 3, dtype=torch.float64)\n"
                      "Y = torch.eye(3, dtype=torch.float64)[:2]\n",
             "jax": "import jax\njax.config.update('jax_enable_x64', True)\n"
                    "X = jax.numpy.ones((2, 3)); Y = jax.numpy.eye(3)[:2]\n"}[target]
    blocked = "['symprop', 'numpy']" if target == "torch" else "['symprop']"  # jax needs numpy
    script = (f"import sys\nfor name in {blocked}: sys.modules[name] = None\n"
              f"import importlib.util\n{array}"
              f"spec = importlib.util.spec_from_file_location('net', {str(paths[0])!r})\n"
              "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
              "print(sorted(m.gradients(m.init_params(0), X, Y)))\n")
    proc = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True,
                          text=True, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['W1', 'W2', 'W3', 'b1', 'b2', 'b3']"


@pytest.mark.parametrize(("target", "marks"), [
    ("torch", ("class OutputLoss", "torch gradcheck")),
    ("jax", ("def output_loss", "jax check_grads"))])
def test_command_line(tmp_path, capsys, target, marks):
    need("torch")
    need("jax")
    out = tmp_path / "net.py"
    assert main(["codegen", str(EXAMPLES / "softmax_ce.toml"), "-o", str(out),
                 "--target", target]) == 0
    assert f"({target}, " in capsys.readouterr().err and marks[0] in out.read_text()
    assert main(["verify", str(EXAMPLES / "softmax_ce.toml"), "--target", target]) == 0
    text = capsys.readouterr().out
    assert f"style {target}" in text and marks[1] in text and "PASS" in text
    with pytest.raises(InputError, match="unknown target 'tf'"):
        generate(_spec("tanh", "identity", "sse"), target="tf")
