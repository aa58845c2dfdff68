"""The torch and JAX targets for every layer kind: each layer that is not dense is one
autograd.Function (custom_vjp) whose backward is its derived letter forms. Against PyTorch
autograd and JAX of the independent forward pass (rtol 1e-10), finite differences,
gradcheck / check_grads, Net's .grad and jax.grad; float32; |z| = 1e3; ruff; the command
line; random layer lists."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_near_autodiff, need
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_codegen_frameworks import HIDDEN, TARGETS, array_library
from test_codegen_frameworks import _verified as verified
from test_codegen_kinds import ENDINGS
from test_layers import AROUND, layer_lists, spec_around

from symprop import Spec
from symprop.cli import main
from symprop.codegen import generate
from symprop.verify import verify

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: Every activation as a layer of its own kind, between two dense layers.
ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu(0.2)", "softplus", "elu",
               "swish", "softmax"]


def _ending(name):
    stack, loss = ENDINGS[name]
    return Spec(input=2, stack=stack, loss=loss, name="ending")


def _verified(spec, target, dtype="float64", rtol=1e-10):
    """The dense tests' verification (passed, with autodiff, fd and the framework's own
    checks), and in float64 rtol 1e-10 against autodiff."""
    report = verified(spec, target, dtype)
    if dtype == "float64":
        assert_near_autodiff(report, rtol)
    return report


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("kind", AROUND)
def test_every_kind_matches_autodiff_and_its_own_checks(kind, target):
    _verified(spec_around(kind, reduction="sum"), target)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("ending", ENDINGS)
def test_outputs_of_other_kinds_meet_the_loss(ending, target):
    _verified(_ending(ending), target)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_as_a_layer_of_its_own(activation, target):
    _verified(Spec(input=3, stack=[{"kind": "dense", "width": 3},
                                   {"kind": "activation", "activation": activation},
                                   {"kind": "dense", "width": 2}], loss="sse"), target)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("example", ["residual", "gated", "rbf", "custom"])
def test_the_examples_in_float64_and_float32(example, target):
    spec = Spec.from_toml(EXAMPLES / f"{example}.toml")
    _verified(spec, target)
    report = _verified(spec, target, dtype="float32")
    worst = max(c.max_rel_error for c in report.comparisons if c.against == "torch")
    assert worst < 1e-4  # float32 accuracy, not float64's


@pytest.mark.parametrize("target", TARGETS)
def test_skip_connections_from_the_input_and_to_the_previous_layer(target):
    tanh = {"kind": "dense", "width": 2, "activation": "tanh"}
    for table in ({"kind": "add", "from": 0}, {"kind": "concat", "from": 0},
                  {"kind": "concat", "from": 1}):
        _verified(Spec(input=2, stack=[tanh, table, {"kind": "dense", "width": 2}],
                       loss="sse"), target)
    # a first layer that is not dense reads X itself
    _verified(Spec(input=3, stack=[{"kind": "layernorm"}, {"kind": "dense", "width": 2}],
                   loss="sse"), target)


@pytest.mark.parametrize("target", TARGETS)
def test_a_custom_parameter_may_take_a_name_the_code_uses(target):
    """A custom parameter A of layer 2 is A2 in params; its array in the layer function and
    its gradient must not be a^(2) or dC/dA^(2)."""
    spec = Spec(input=2, stack=[{"kind": "dense", "width": 2},
                                {"kind": "custom", "width": 2, "formula": "tanh(sum_k(A_jk * a_k))",
                                 "params": {"A": "jk"}},
                                {"kind": "dense", "width": 2}], loss="sse")
    _verified(spec, target)
    source = generate(spec, target=target).source
    assert "def _layer2_forward(A1, p_A2):\n" in source
    assert "    d_A2 = " in source
    assert '"A2": d_A2' in generate(spec).source  # the NumPy module too
    assert verify(spec).passed


def test_the_torch_layernorm_is_its_derivation_in_torch():
    source = generate(spec_around("layernorm"), target="torch").source
    assert ("def _layer2_forward(A1, gamma2, beta2):\n"
            '    """Layer 2, layernorm, eps 1e-05: a^(2) by its definition; saves what the '
            'backward reads."""\n'
            "    Mu2 = (1/3)*torch.sum(A1, dim=1, keepdim=True)\n"
            "    Sigma2 = torch.sqrt((1/3)*torch.sum((A1 - Mu2)**2, dim=1, keepdim=True) "
            "+ 1/100000)\n"
            "    Xhat2 = (A1 - Mu2)/Sigma2\n"
            "    A2 = Xhat2*gamma2 + beta2\n"
            "    return A2, (Sigma2, Xhat2, gamma2)\n") in source
    assert ("    Sigma2, Xhat2, gamma2 = saved\n"
            "    dgamma2 = torch.sum(dA2*Xhat2, dim=0)\n"
            "    dbeta2 = torch.sum(dA2, dim=0)\n"
            "    return (dA2*gamma2 - 1/3*Xhat2*torch.sum(dA2*Xhat2*gamma2, dim=1, keepdim=True)"
            " - 1/3*torch.sum(dA2*gamma2, dim=1, keepdim=True))/Sigma2, dgamma2, dbeta2\n"
            ) in source
    assert "class Layer2(torch.autograd.Function):" in source


def test_the_jax_residual_sum_hands_its_gradient_to_both_inputs():
    source = generate(spec_around("add"), target="jax").source
    assert "@jax.custom_vjp\ndef layer3(A2, A1):\n" in source
    assert "    return dA3, dA3\n" in source
    assert "    A3 = layer3(A2, A1)\n" in source


def test_torch_walks_contributions_without_sharing_an_array_it_changes():
    """The residual sum hands dA3 to layers 2 and 1; layer 2 (dense) must not multiply it
    by g' in place, and layer 1's dA is the sum of both contributions."""
    source = generate(spec_around("add"), target="torch").source
    assert ("        dA2, dA1 = _layer3_backward(saved3, dA3)\n"
            "        del saved3, dA3\n"
            '        dA1_2, grads["W2"], _ = _layer2_backward(saved2, dA2, True, owned=False)\n'
            "        dA1 = dA1 + dA1_2\n"
            "        del saved2, dA2\n"
            '        _, grads["W1"], grads["b1"] = _layer1_backward(saved1, dA1, False, '
            "owned=True)\n") in source


@pytest.mark.parametrize("target", TARGETS)
def test_a_wrong_kind_backward_is_caught(target):
    """An error in a layernorm's derived vector-Jacobian product is what the framework runs:
    autodiff, finite differences and the framework's own check all catch it."""
    need("torch")
    need("jax")
    spec = spec_around("layernorm")
    module = generate(spec, target=target)
    right = "- 1/3*Xhat2*"
    assert module.source.count(right) == 1
    module.source = module.source.replace(right, "- 1/3.003*Xhat2*")
    report = verify(spec, module=module, against=("torch", "fd"))
    assert not report.passed
    assert {c.parameter for c in report.failures if c.against == "torch"} == {"W1", "b1"}
    check = {"torch": "torch gradcheck", "jax": "jax check_grads"}[target]
    assert any(c.against == check for c in report.failures)


def _finite_case(kind):
    return _ending(kind) if kind in ENDINGS else spec_around(kind)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_kind_is_finite_at_z_1e3(tmp_path, dtype, target):
    xp = array_library(target)
    t = getattr(xp, dtype)
    for n, kind in enumerate(list(AROUND) + list(ENDINGS)):
        spec = _finite_case(kind)
        m = generate(spec, target=target).load(tmp_path / f"k{n}_{target}.py")
        p = {k: xp.asarray(np.asarray(v) * 300, dtype=t)
             for k, v in m.init_params(0, xp.float64).items()}
        X = xp.asarray(np.array([[1e3, -1e3], [-1e3, 1e3], [0.5, -0.2]]), dtype=t)
        Y = xp.asarray(np.eye(spec.layers[-1])[[0, -1, 0]], dtype=t)
        value, grads = m.loss_and_gradients(p, X, Y)
        assert np.isfinite(value), kind
        for key, g in grads.items():
            assert g.dtype == t and tuple(g.shape) == tuple(p[key].shape), (kind, key)
            assert bool(np.isfinite(np.asarray(g)).all()), (kind, key)


def test_net_of_a_residual_network_fills_grad(tmp_path):
    torch = need("torch")
    spec = Spec.from_toml(EXAMPLES / "residual.toml")
    m = generate(spec, target="torch").load(tmp_path / "residual_torch.py")
    net = m.Net(seed=2, dtype=torch.float64)
    assert [name for name, _ in net.named_parameters()] == list(m.PARAMETER_KEYS)
    assert "gamma2" in m.PARAMETER_KEYS and "c4" in m.PARAMETER_KEYS
    X = torch.randn(6, spec.layers[0], dtype=torch.float64)
    Y = torch.softmax(torch.randn(6, spec.layers[-1], dtype=torch.float64), dim=1)
    C = net.loss(X, Y)
    C.backward()
    value, grads = m.loss_and_gradients({k: v.detach() for k, v in net.params().items()}, X, Y)
    assert value == pytest.approx(float(C.detach()), rel=1e-14)
    for key, g in grads.items():
        torch.testing.assert_close(getattr(net, key).grad, g, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("target", TARGETS)
def test_modules_of_every_kind_pass_ruff_and_run_without_symprop(tmp_path, target):
    need(target)
    files = []
    for n, kind in enumerate(list(AROUND) + list(ENDINGS)):
        path = tmp_path / f"m{n}.py"
        generate(_finite_case(kind), target=target).write(path)
        files.append(path)
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    proc = subprocess.run([ruff, "check", "--isolated", *map(str, files)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    setup = {"torch": "import torch\nones, zeros = torch.ones, torch.zeros\n",
             "jax": "import jax\nones, zeros = jax.numpy.ones, jax.numpy.zeros\n"}[target]
    script = ("import sys\nsys.modules['symprop'] = None\n" + setup +
              "import importlib.util as u\n"
              "for path in sys.argv[1:]:\n"
              "    s = u.spec_from_file_location('m', path); m = u.module_from_spec(s)\n"
              "    s.loader.exec_module(m)\n"
              "    p = m.init_params(1)\n"
              "    t = p[m.PARAMETER_KEYS[0]].dtype\n"
              "    X = ones((3, m.LAYERS[0]), dtype=t); Y = zeros((3, m.LAYERS[-1]), dtype=t)\n"
              "    value, grads = m.loss_and_gradients(p, X, Y)\n"
              "    assert value == value and sorted(grads) == sorted(m.PARAMETER_KEYS)\n")
    proc = subprocess.run([sys.executable, "-I", "-c", script, *map(str, files)],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("target", TARGETS)
def test_command_line_on_the_residual_example(tmp_path, capsys, target):
    need("torch")
    need("jax")
    out = tmp_path / "residual.py"
    spec = str(EXAMPLES / "residual.toml")
    assert main(["codegen", spec, "-o", str(out), "--target", target]) == 0
    text = out.read_text()
    assert "layer 2: layernorm, eps 1e-05" in text and "def _layer4_backward" in text
    assert main(["verify", spec, "--target", target]) == 0
    report = capsys.readouterr().out
    assert f"style {target}" in report and "gamma2" in report and "PASS" in report
    with pytest.raises(SystemExit) as stop:  # argparse's own exit 2, usage and message
        main(["codegen", spec, "-o", str(tmp_path / "x.py"), "--target", "tf"])
    assert stop.value.code == 2
    assert "invalid choice: 'tf' (choose from 'numpy', 'torch', 'jax')" in capsys.readouterr().err
    assert not (tmp_path / "x.py").exists()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer_lists(), st.sampled_from(TARGETS))
def test_random_layer_lists_agree_with_autodiff(spec, target):
    """Random kinds, widths, skip connections, activations and losses: the framework module
    agrees with autodiff of the independent forward pass (rtol 1e-10), and its own autodiff
    entry (Net's .grad, jax.grad) with loss_and_gradients. Finite differences and gradcheck
    are left to the tests above: a random network's loss can be 1e3 with an exp of squares
    in it, where a central difference of step 1e-6 is off by more than their tolerance."""
    need("torch")
    need("jax")
    assume(spec.n_parameters > 0)
    report = verify(spec, target=target)
    entry = {"torch": "Net.loss().backward()", "jax": "jax.grad(loss)"}[target]
    checked = [c for c in report.comparisons if c.against in ("jax", "torch", entry)]
    assert {c.against for c in checked} == {"jax", "torch", entry}
    for c in checked:  # within 1e-12 + 1e-10 |reference| entry by entry
        assert c.passed and (c.atol, c.rtol) == (1e-12, 1e-10), c


def test_every_kind_runs_on_another_device(tmp_path):
    """No tensor is made on a fixed device: on PyTorch's meta device (shapes without data,
    this machine's stand-in for CUDA, which it lacks) loss, backward and forward run and every
    gradient stays there."""
    torch = need("torch")
    specs = [_finite_case(kind) for kind in list(AROUND) + list(ENDINGS)]
    specs += [Spec(layers=(3, 4, 3), activation=[h, "softmax"], loss="cross_entropy")
              for h in HIDDEN]
    for n, spec in enumerate(specs):
        m = generate(spec, target="torch").load(tmp_path / f"d{n}.py")
        p = {k: v.requires_grad_() for k, v in
             m.init_params(0, torch.float64, device="meta").items()}
        X = torch.empty(5, m.LAYERS[0], dtype=torch.float64, device="meta")
        Y = torch.empty(5, m.LAYERS[-1], dtype=torch.float64, device="meta")
        m.loss(p, X, Y).backward()
        for key, value in p.items():
            assert value.grad.device.type == "meta" and value.grad.shape == value.shape, key
        assert m.forward({k: v.detach() for k, v in p.items()}, X).device.type == "meta"


@pytest.mark.parametrize("stack", [
    [{"kind": "maxpool2d", "kernel": 2}, {"kind": "flatten"},
     {"kind": "activation", "activation": "tanh"},
     {"kind": "dense", "width": 2, "activation": "tanh"}, {"kind": "dense", "width": 2}],
    [{"kind": "activation", "activation": "tanh"}, {"kind": "add", "from": 0},
     {"kind": "dense", "width": 2}],
], ids=["pool-flatten-activation", "activation-add"])
@pytest.mark.parametrize("target", TARGETS)
def test_layers_without_parameters_below_every_parameter_are_not_walked(stack, target):
    """Below the first layer with parameters no gradient is worked out, whatever the kind: an
    activation or a sum there was walked and read a dA no layer had written (torch's
    loss_and_gradients raised UnboundLocalError)."""
    need("torch")
    need("jax")
    spec = Spec(input=[1, 4, 4] if stack[0]["kind"] == "maxpool2d" else 4, stack=stack,
                loss="sse", name="below")
    report = verify(spec, target=target)
    assert report.passed, str(report)
