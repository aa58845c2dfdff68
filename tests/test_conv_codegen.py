"""Generated code for conv, pooling and flatten layers, in every target: NumPy (windows as a
view, einsum contractions, a loop over kernel offsets only for the scatter-add), torch
(an autograd.Function per layer, no autograd inside) and JAX (a custom_vjp per layer).
Each module is held against PyTorch and JAX autodiff of the layers' own library forward
passes (F.conv2d, F.max_pool2d, lax.conv_general_dilated, lax.reduce_window) at rtol 1e-10
in float64, finite differences and the framework's own checks; float32 stays float32;
max-pool ties go to the first maximum as PyTorch routes them; random conv stacks."""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_near_autodiff, need
from hypothesis import given, settings
from hypothesis import strategies as st
from test_conv import GRID, POOLS, _random_stack, conv_spec

from symprop import Spec
from symprop.cli import main
from symprop.codegen import generate
from symprop.verify import verify, verify_module
from symprop.verify_frameworks import FrameworkAsArrays

TARGETS = ["numpy", "torch", "jax"]


def _spec(input_shape, *layers, loss="sse"):
    return Spec.from_dict({"input": list(input_shape), "loss": loss, "layer": list(layers)})


#: Small networks that between them take every key: kernel, stride and padding as one number
#: and per axis, tiling and overlapping pools, conv after conv, bias or not, an output that
#: is a flattened map.
CASES = {
    "conv2d-relu-maxpool": _spec(
        (2, 5, 5), {"kind": "conv2d", "channels": 3, "kernel": 3, "padding": 1,
                    "activation": "relu", "bias": True},
        {"kind": "maxpool2d", "kernel": 2}, {"kind": "flatten"},
        {"kind": "dense", "width": 3, "activation": "softmax", "bias": True},
        loss="cross_entropy"),
    "conv2d-conv2d-avgpool-overlapping": _spec(
        (1, 6, 9), {"kind": "conv2d", "channels": 2, "kernel": [2, 3], "stride": [1, 2],
                    "padding": [1, 0], "activation": "tanh"},
        {"kind": "conv2d", "channels": 2, "kernel": 2, "stride": 2, "activation": "sigmoid",
         "bias": True},
        {"kind": "avgpool2d", "kernel": 2, "stride": 1}, {"kind": "flatten"},
        {"kind": "dense", "width": 2}),
    "conv1d-maxpool-overlapping": _spec(
        (2, 9), {"kind": "conv1d", "channels": 2, "kernel": 3, "stride": 2, "padding": 1,
                 "activation": "softplus", "bias": True},
        {"kind": "maxpool1d", "kernel": 3, "stride": 1}, {"kind": "flatten"},
        {"kind": "dense", "width": 2, "activation": "sigmoid"}, loss="binary_cross_entropy"),
    "conv1d-avgpool-flattened-output": _spec(
        (1, 7), {"kind": "conv1d", "channels": 2, "kernel": 2, "activation": "elu"},
        {"kind": "avgpool1d", "kernel": 2}, {"kind": "flatten"}),
}


def _verified(spec, target, dtype="float64"):
    need("torch")
    need("jax")
    report = verify(spec, target=target, dtype=dtype)
    assert report.passed, str(report)
    assert {"jax", "torch", "fd"} <= {c.against for c in report.comparisons}
    if dtype == "float64":
        assert_near_autodiff(report, 1e-10)
    return report


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", CASES)
def test_conv_and_pool_modules_agree_with_autodiff(case, target):
    _verified(CASES[case], target)


def _ruff_problems(path) -> str:
    """What `ruff check` finds in a generated file ("" when it is clean)."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    proc = subprocess.run([ruff, "check", "--isolated", str(path)], capture_output=True,
                          text=True, check=False)
    return "" if proc.returncode == 0 else proc.stdout or proc.stderr


def _module_against_autodiff(spec, target, *, folder=None):
    """The module's loss and gradients at verify's random point against PyTorch's and JAX's
    autodiff of the reference forward pass, rtol 1e-10 (no finite differences: fast); with
    ``folder``, the module is also written there and must be ruff-clean."""
    generated = generate(spec, target=target)
    if folder is not None:
        generated.write(folder / f"net_{target}.py")
        assert not _ruff_problems(folder / f"net_{target}.py")
    module = generated.load()
    arrays = module if target == "numpy" else FrameworkAsArrays(module, target)
    comparisons = verify_module(arrays, spec, against=("torch", "jax"))
    bad = [c for c in comparisons if not c.passed or (
        c.against in ("torch", "jax") and c.max_abs_error > 1e-12 and c.max_rel_error > 1e-10)]
    assert not bad, bad


@pytest.mark.parametrize("target", TARGETS)
def test_every_kernel_stride_and_padding_in_every_target(target):
    """conv1d and conv2d with kernel 1-3, stride 1-3 and padding 0-2 (each that fits), and
    every pool of test_conv (max and average, 1-D and 2-D, tiling and overlapping) after a
    conv layer: each module against PyTorch and JAX."""
    need("torch")
    need("jax")
    for dims, kernel, stride, padding in GRID:
        _module_against_autodiff(conv_spec(dims, kernel, stride, padding), target)
    for kind, dims, kernel, stride in POOLS:
        more = [{"kind": f"{kind}{dims}d", "kernel": kernel, "stride": stride}]
        _module_against_autodiff(conv_spec(dims, 1, 1, 0, size=5, more=more), target)


@pytest.mark.parametrize("target", TARGETS)
def test_float32_stays_float32(target):
    """A smooth network (a relu or a max beside a finite-difference step of 0.01 is not):
    within float32's tolerance of autodiff and finite differences, every gradient float32."""
    _verified(CASES["conv2d-conv2d-avgpool-overlapping"], target, "float32")
    if target == "numpy":
        module = generate(CASES["conv2d-conv2d-avgpool-overlapping"]).load()
        params = module.init_params(0, np.float32)
        grads = module.gradients(params, np.ones((2, 1, 6, 9)), np.zeros((2, 2)))
        assert {g.dtype for g in grads.values()} == {np.dtype(np.float32)}


@settings(max_examples=8, deadline=None)
@given(st.data())
def test_random_conv_stacks_generate_modules_that_agree_with_autodiff(data):
    """The module of random conv and pool stacks (any kernel, stride and padding that fit)
    in a random target, against PyTorch's and JAX's autodiff of their own convolutions and
    pools."""
    need("torch")
    need("jax")
    target = data.draw(st.sampled_from(TARGETS))
    spec = _random_stack(data)
    with tempfile.TemporaryDirectory() as folder:
        _module_against_autodiff(spec, target, folder=Path(folder))
    params = generate(spec).load().init_params(0)
    for l, q in spec.parameters():  # each conv weight within PyTorch's bound of its fan-in
        if q.kind == "w" and len(q.shape) > 2:
            assert np.abs(params[f"W{l}"]).max() <= 1 / np.sqrt(np.prod(q.shape[1:]))


@pytest.mark.parametrize("target", TARGETS)
def test_max_pool_ties_go_to_the_first_maximum_as_pytorch_routes_them(target):
    """A constant input: every window of the overlapping max pool is a tie, and only the
    first entry of each (row-major) receives its gradient, as in F.max_pool2d's backward."""
    torch = need("torch")
    spec = _spec((1, 4, 4), {"kind": "conv2d", "channels": 1, "kernel": 1},
                 {"kind": "maxpool2d", "kernel": 2, "stride": 1}, {"kind": "flatten"},
                 {"kind": "dense", "width": 2})
    module = generate(spec, target=target).load()
    W1 = np.array([[[[0.7]]]])
    W4 = np.linspace(-1, 1, 18).reshape(2, 9)
    X, Y = np.ones((2, 1, 4, 4)), np.array([[0.5, -1.0], [2.0, 0.0]])
    if target == "numpy":
        ours = module.gradients({"W1": W1, "W4": W4}, X, Y)
    else:
        lib = need(target)
        xp = lib if target == "torch" else lib.numpy
        if target == "jax":
            lib.config.update("jax_enable_x64", True)
        ours = module.gradients({"W1": xp.asarray(W1), "W4": xp.asarray(W4)}, xp.asarray(X),
                                xp.asarray(Y))
    w1, w4 = (torch.tensor(v, requires_grad=True) for v in (W1, W4))
    a = torch.nn.functional.max_pool2d(torch.nn.functional.conv2d(torch.tensor(X), w1), 2, 1)
    loss = ((a.reshape(2, -1) @ w4.T - torch.tensor(Y)) ** 2).sum(dim=1).mean()
    loss.backward()
    assert np.allclose(np.asarray(ours["W1"]), w1.grad.numpy(), rtol=1e-12, atol=1e-14)
    assert np.allclose(np.asarray(ours["W4"]), w4.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_the_numpy_module_reads_like_the_index_form():
    """Windows as a view and one einsum each for z, dW and the input's shares; the only
    Python loop is over kernel offsets, inside _add_windows."""
    source = generate(CASES["conv2d-relu-maxpool"]).source
    assert ("V1 = _windows(A0, (3, 3), (1, 1), (1, 1))  # (batch, C, p, q, u, v) windows, "
            "zero in the padding") in source
    assert ("Z1 = np.einsum('icpquv,ocuv->iopq', V1, params[\"W1\"], optimize=True)"
            " + params[\"b1\"][:, None, None]") in source
    assert "dW1 = np.einsum('iopq,icpquv->ocuv', Delta1, V1, optimize=True)" in source
    assert "A2, First2 = _window_max(_windows(A1, (2, 2), (2, 2), (0, 0)), 2)" in source
    loops = source[source.index("def _add_windows"):source.index("def _window_max")]
    assert loops.count("    for ") == 1 and "for offset in np.ndindex(*kernel):" in loops
    steps = source[source.index("def _forward("):source.index("\ndef forward(")]
    assert " for " not in steps and "while" not in steps


@pytest.mark.parametrize("target", TARGETS)
def test_modules_pass_ruff_and_run_without_symprop(tmp_path, target):
    need(target if target != "numpy" else "numpy")
    path = tmp_path / f"net_{target}.py"
    generate(CASES["conv2d-conv2d-avgpool-overlapping"], target=target).write(path)
    assert not _ruff_problems(path)
    script = (
        "import sys\nsys.modules['symprop'] = None\n"
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('net', {str(path)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "p = m.init_params(0)\n"
        "import numpy as np\n"
        "X = np.ones((2, 1, 6, 9)); Y = np.zeros((2, 2))\n"
        + ("" if target == "numpy" else
           "import torch\nX, Y = torch.tensor(X, dtype=p['W1'].dtype), torch.tensor(Y, dtype=p['W1'].dtype)\n"
           if target == "torch" else
           "import jax.numpy as jnp\nX, Y = jnp.asarray(X, p['W1'].dtype), jnp.asarray(Y, p['W1'].dtype)\n")
        + "print(sorted(m.gradients(p, X, Y)), m.INPUT_SHAPE)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False)
    assert proc.stdout.strip() == "['W1', 'W2', 'W5', 'b2'] (1, 6, 9)", proc.stderr


def test_a_sample_of_the_wrong_shape_is_a_clear_error():
    module = generate(CASES["conv2d-relu-maxpool"]).load()
    params = module.init_params(0)
    with pytest.raises(ValueError, match=r"X has shape \(3, 50\); expected \(batch, 2, 5, 5\)"):
        module.forward(params, np.zeros((3, 50)))


@pytest.mark.parametrize("case", CASES)
def test_the_scalar_style_writes_every_map_node_and_agrees_with_autodiff(case, tmp_path):
    """One line per node and weight of conv, pooling and flatten layers (a conv's z as its
    terms, a max pool's routing as the first-maximum test), ruff-clean, against PyTorch's
    and JAX's autodiff at rtol 1e-10 and finite differences."""
    need("torch")
    need("jax")
    report = verify(CASES[case], style="scalar", path=tmp_path / "net.py")
    assert report.passed, str(report)
    assert_near_autodiff(report, 1e-10)
    assert not _ruff_problems(tmp_path / "net.py")


def test_the_scalar_style_of_a_map_reads_node_by_node_and_keeps_float32(tmp_path, capsys):
    spec = tmp_path / "conv.toml"
    spec.write_text('input = [1, 4]\nloss = "sse"\n[[layer]]\nkind = "conv1d"\nchannels = 1\n'
                    'kernel = 2\n[[layer]]\nkind = "maxpool1d"\nkernel = 2\nstride = 1\n'
                    '[[layer]]\nkind = "flatten"\n')
    out = tmp_path / "net.py"
    assert main(["codegen", str(spec), "--style", "scalar", "-o", str(out)]) == 0
    source = out.read_text()
    assert "x_2 = X[:, 0, 2]" in source
    assert "z1_1 = W1[0, 0, 0]*x_1 + W1[0, 0, 1]*x_2  # z_0,1^(1) = " in source
    # the first maximum of each overlapping window: a1_1 wins window 0 only if greater
    assert "delta1_1 = dC_da2_0*(a1_1 > a1_0).astype(a1_1.dtype) + dC_da2_1*(a1_1 >= " \
           "a1_2).astype(a1_1.dtype)" in source
    module = generate(Spec.from_toml(spec), "scalar").load()
    params = module.init_params(0, np.float32)
    grads = module.gradients(params, np.ones((2, 1, 4), np.float32), np.zeros((2, 2)))
    assert grads["W1"].dtype == np.float32


CONV_GRADIENTS = '''
import numpy as np


def right(params, X, Y, flip=False):
    """C = mean over the batch of sum_(o,p) (z_(o,p) - y_(o,p))^2, z the conv1d's output."""
    W, b = params["W1"], params["b1"]
    n, k = X.shape[0], W.shape[2]
    P = X.shape[2] - k + 1
    windows = np.stack([X[:, :, u:u + P] for u in range(k)], axis=-1)  # (i, c, p, u)
    Z = np.einsum("icpu,ocu->iop", windows, W) + b[:, None]
    dZ = 2 * (Z.reshape(n, -1) - Y).reshape(Z.shape) / n
    dW = np.einsum("iop,icpu->ocu", dZ, windows)
    return {"W1": dW[:, :, ::-1] if flip else dW, "b1": dZ.sum(axis=(0, 2))}


def flipped(params, X, Y):
    return right(params, X, Y, flip=True)
'''


def test_check_function_on_a_conv_network(tmp_path, capsys):
    """check --function on a hand-written conv gradient: right is exit 0; the kernel flipped
    (correlation written as convolution) is exit 1 naming the entries that differ."""
    grads = tmp_path / "grads.py"
    grads.write_text(CONV_GRADIENTS)
    spec = tmp_path / "conv.toml"
    spec.write_text('input = [2, 6]\nloss = "sse"\n[[layer]]\nkind = "conv1d"\nchannels = 2\n'
                    'kernel = 3\nbias = true\n[[layer]]\nkind = "flatten"\n')
    assert main(["check", str(spec), "--function", f"{grads}:right"]) == 0
    assert capsys.readouterr().out.startswith("RIGHT:")
    assert main(["check", str(spec), "--function", f"{grads}:flipped"]) == 1
    out = capsys.readouterr().out
    assert "WRONG  W1" in out and "the true gradient with the kernel flipped" in out, out
    assert "ok     b1" in out, out


def _codegen_right_then_wrong(spec, mistake: str, held: str, against: str, monkeypatch,
                              capsys):
    """codegen of ``spec`` writes a module held against ``held``; with the conv layer's dW1
    line changed to start ``mistake`` it is exit 3 naming W1 and ``against``, and no file."""
    from symprop.layers.conv import ConvLayer

    out = spec.parent / "net.py"
    assert main(["codegen", str(spec), "-o", str(out)]) == 0
    assert f"its gradients held against {held}" in capsys.readouterr().err
    right = ConvLayer.array_code

    def wrong(self, code):
        lines = right(self, code)
        lines["backward"] = [line.replace("dW1 = ", mistake) for line in lines["backward"]]
        return lines
    monkeypatch.setattr(ConvLayer, "array_code", wrong)
    out.unlink()
    assert main(["codegen", str(spec), "-o", str(out)]) == 3
    assert f"the generated module's W1 differs from {against}" in capsys.readouterr().err
    assert not out.exists()


def test_codegen_holds_the_module_against_autodiff_before_writing_it(tmp_path, monkeypatch,
                                                                      capsys):
    """A module whose code is wrong (here dW^(1) negated in the conv layer's lines) is a
    self-check failure, exit 3, and no file; the right one says what it was held against."""
    need("torch")
    spec = tmp_path / "conv.toml"
    spec.write_text('input = [1, 5]\nloss = "sse"\n[[layer]]\nkind = "conv1d"\nchannels = 2\n'
                    'kernel = 2\nbias = true\n[[layer]]\nkind = "flatten"\n')
    _codegen_right_then_wrong(spec, "dW1 = -", "PyTorch's autodiff at a random batch",
                              "torch", monkeypatch, capsys)


def test_without_autodiff_codegen_holds_the_module_against_differences(tmp_path, monkeypatch,
                                                                       capsys):
    """With neither PyTorch nor JAX installed: central differences of the module's loss, at
    up to three points (a quotient may straddle a relu's kink); a wrong module still fails."""
    import importlib.util

    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("torch", "jax") else found(name, *a))
    spec = tmp_path / "conv.toml"
    spec.write_text('input = [2, 6]\nloss = "sse"\n[[layer]]\nkind = "conv1d"\nchannels = 2\n'
                    'kernel = 3\nactivation = "relu"\n[[layer]]\nkind = "maxpool1d"\nkernel = 2\n'
                    '[[layer]]\nkind = "flatten"\n')
    _codegen_right_then_wrong(spec, "dW1 = 2 * ", "central differences", "fd", monkeypatch,
                              capsys)


POOL_FIRST = _spec((2, 6, 5), {"kind": "maxpool2d", "kernel": 3, "stride": 1},
                   {"kind": "conv2d", "channels": 1, "kernel": [1, 2], "stride": [3, 1],
                    "activation": "relu"}, {"kind": "flatten"}, {"kind": "dense", "width": 2})


@pytest.mark.parametrize("target", TARGETS)
def test_lenet_and_a_pool_first_network_pass_ruff_in_every_target(tmp_path, target):
    """The shipped LeNet (no average pool: torch needs no itertools) and a network whose
    first layer is a pool (nothing below it learns: no gradient is handed to it, and the
    names it saved go unread): every module ruff-clean, the pool-first one right."""
    need("torch")
    lenet = Spec.from_toml(Path(__file__).parent.parent / "examples" / "lenet.toml")
    for name, spec in (("lenet", lenet), ("pool_first", POOL_FIRST)):
        path = tmp_path / f"{name}_{target}.py"
        generate(spec, target=target).write(path)
        assert not _ruff_problems(path)
    need("jax")
    _module_against_autodiff(POOL_FIRST, target)


def test_conv_weights_start_at_pytorchs_bound_of_their_own_fan_in():
    """A conv weight reads C_in kh kw inputs, not the whole map below: W1 of the LeNet
    example (1 channel, 3x3) is uniform in +-1/3, W3 (6 channels, 3x3) in +-1/sqrt(54)."""
    lenet = Spec.from_toml(Path(__file__).parent.parent / "examples" / "lenet.toml")
    params = generate(lenet).load().init_params(0)
    for key, fan_in in (("W1", 9), ("W3", 54)):
        bound = 1 / np.sqrt(fan_in)
        assert 0.8 * bound < np.abs(params[key]).max() <= bound, key
