"""``symprop check SPEC --function FILE.py:NAME --layer l``: one layer's hand-written backward.

Right functions come out RIGHT (the NumPy loops of tests/layer_backwards.py, and PyTorch's
autograd through the layer's own torch function, an independent truth, on random conv and
pooling configurations); each wrong one is WRONG with its mistake named; bad calls exit 2.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symprop import InputError, Spec
from symprop.check import check_layer
from symprop.cli import main
from tests.conftest import need
from tests.test_readme import ROWS

FILE = Path(__file__).with_name("layer_backwards.py")

DENSE = Spec.from_toml_string("""
name = "dense"
input = 3
loss = "cross_entropy"
[[layer]]
kind = "dense"
width = 3
activation = "tanh"
bias = true
[[layer]]
kind = "dense"
width = 4
activation = "softmax"
bias = true
""")
LAYERNORM = Spec.from_toml_string("""
input = 4
[[layer]]
kind = "layernorm"
[[layer]]
kind = "dense"
width = 2
""")
CONV = Spec.from_toml_string("""
name = "conv"
input = [2, 6, 6]
[[layer]]
kind = "conv2d"
channels = 3
kernel = 3
padding = 1
activation = "relu"
bias = true
[[layer]]
kind = "maxpool2d"
kernel = 3
stride = 2
[[layer]]
kind = "flatten"
[[layer]]
kind = "dense"
width = 2
""")
ACTIVATIONS = Spec.from_toml_string("""
input = 4
[[layer]]
kind = "activation"
activation = "tanh"
[[layer]]
kind = "activation"
activation = "softmax"
""")
CONV0 = Spec.from_toml_string("""
input = [1, 5, 5]
[[layer]]
kind = "conv2d"
channels = 2
kernel = 3
activation = "relu"
bias = true
[[layer]]
kind = "avgpool2d"
kernel = 2
stride = 1
[[layer]]
kind = "flatten"
[[layer]]
kind = "dense"
width = 2
""")


@pytest.fixture
def functions(tmp_path):
    shutil.copy(FILE, tmp_path / FILE.name)
    return str(tmp_path / FILE.name)


@pytest.mark.parametrize("spec, layer, name", [
    (DENSE, 1, "dense_tanh"), (DENSE, "L", "dense_softmax"), (LAYERNORM, 1, "layernorm"),
    (CONV, 1, "conv"), (CONV, 2, "maxpool_3_2"), (CONV0, "L-2", "avgpool_2_1"),
    (ACTIVATIONS, 1, "tanh"), (ACTIVATIONS, 2, "softmax")])
def test_a_right_backward_is_right(functions, spec, layer, name):
    result = check_layer(spec, f"{functions}:{name}", layer)
    assert result.right and result.exit_code == 0, str(result)
    assert next(p.name for p in result.parameters) == "A"
    assert all(p.max_abs_error < 1e-12 for p in result.parameters)


@pytest.mark.parametrize("spec, layer, name, entries, diagnosis", [
    (DENSE, 1, "dense_tanh_no_prime", "A W b",
     ("the usual mistake: the activation's derivative is left out: Delta = dOut, not dOut * "
     "tanh'(z)")),
    (DENSE, 1, "dense_tanh_through_WT", "A",
     "the usual mistake: dA = Delta W^T instead of Delta W"),
    (DENSE, 1, "dense_tanh_dW_transposed", "W",
     "the array is transposed: W[j, k] must be dC/dw_jk (row j = node of layer l)"),
    (DENSE, 1, "dense_tanh_dA_transposed", "A",
     ("transposed: shape (3, 5); return its transpose, shape (5, 3), one sample per row, "
      "as A")),
    (DENSE, 1, "dense_tanh_complex", "b", ("complex numbers (dtype complex128); return real "
     "arrays")),
    (ACTIVATIONS, 1, "tanh_no_prime", "A",
     ("the usual mistake: the activation's derivative is left out: dA = dOut, not dOut * "
     "tanh'(A)")),
    (ACTIVATIONS, 2, "softmax_diagonal", "A",
     ("the usual mistake: softmax's Jacobian taken as diagonal, dOut_j a_j (1 - a_j) as for a "
      "sigmoid: every output depends on every A, dA_j = a_j (dOut_j - sum_m dOut_m a_m)")),
    (DENSE, 1, "dense_tanh_averaged", "W",
     ("the array is divided by n = 5, the batch size: dOut already holds the loss's 1/n, so a "
     "layer's backward does not divide again")),
    (DENSE, 2, "dense_softmax_diagonal", "W A b",
     ("the usual mistake: softmax's Jacobian taken as diagonal, dOut_j a_j (1 - a_j) as for a "
     "sigmoid")),
    (LAYERNORM, 1, "layernorm_no_variance", "A",
     "the usual mistake: the variance's dependence on the input is left out"),
    (LAYERNORM, 1, "layernorm_no_mean", "A",
     "the usual mistake: the mean's dependence on the input is left out"),
    (LAYERNORM, 1, "layernorm_unbiased", "gamma A",
     ("the usual mistake: the unbiased variance (divided by n - 1) where the biased one "
     "(divided by n) belongs")),
    (LAYERNORM, 1, "layernorm_dgamma_without_xhat", "gamma",
     "the usual mistake: dgamma without xhat"),
    (CONV, 1, "conv_padding_kept", "A",
     ("the usual mistake: the padding is not removed: this is the gradient of the padded "
     "input; drop the first and last 1 of each axis")),
    (CONV, 1, "conv_padding_removed_twice", "A",
     "the usual mistake: the padding is removed twice"),
    (CONV, 1, "conv_kernel_flipped", "W", "the true gradient with the kernel flipped"),
    (CONV, 1, "conv_dA_flipped", "A", " entries differ: "),
    (CONV0, 1, "conv0_sliced", "A",
     ("the usual mistake: empty: with padding 0, slicing the padding off as [P:-P] keeps "
     "nothing")),
    (CONV, 2, "maxpool_3_2_assigned", "A",
     "the usual mistake: assigned (=) instead of added (+=) where windows overlap"),
    (CONV, 2, "maxpool_3_2_every_max", "A",
     "the usual mistake: ties sent to every maximum of a window"),
    (CONV0, 2, "avgpool_2_1_assigned", "A",
     "the usual mistake: assigned (=) instead of added (+=) where windows overlap"),
])
def test_a_wrong_backward_is_named(functions, spec, layer, name, entries, diagnosis):
    """``entries``: the wrong ones, the diagnosis shown at the first (every other is right)."""
    result = check_layer(spec, f"{functions}:{name}", layer)
    assert not result.right and result.exit_code == 1
    wrong = entries.split()
    verdict = next(p for p in result.parameters if p.name == wrong[0])
    assert any(diagnosis in f for f in verdict.findings), verdict.findings
    assert sum("usual mistake" in f for f in verdict.findings) <= 1, verdict.findings
    assert not any("kernel" in f for f in verdict.findings if name.endswith("dA_flipped"))
    assert [p.name for p in result.parameters if not p.right] == sorted(
        wrong, key=[p.name for p in result.parameters].index), str(result)


def test_only_the_mistake_made_is_named(functions):
    """A hint is printed only when the truth with that mistake equals the user's array."""
    result = check_layer(LAYERNORM, f"{functions}:layernorm_no_mean", 1)
    findings = " ".join(next(p for p in result.parameters if p.name == "A").findings)
    assert "variance's dependence" not in findings and "unbiased" not in findings


def test_the_cli(functions, tmp_path, capsys):
    spec = tmp_path / "conv.toml"
    spec.write_text(
        'input = [2, 6, 6]\n[[layer]]\nkind = "conv2d"\nchannels = 3\nkernel = 3\n'
        'padding = 1\nactivation = "relu"\nbias = true\n[[layer]]\nkind = "maxpool2d"\n'
        'kernel = 3\nstride = 2\n[[layer]]\nkind = "flatten"\n[[layer]]\nkind = "dense"\n'
        'width = 2\nname = "conv"\n'.replace('name = "conv"\n', ''))
    assert main(["check", str(spec), "--function", f"{functions}:conv", "--layer", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("RIGHT: ") and "of layer 1 (conv2d, 3 channels, kernel 3, padding " \
        "1, relu, bias)" in out
    assert main(["check", str(spec), "--function", f"{functions}:maxpool_3_2_assigned",
                 "--layer", "L-2"]) == 1
    out = capsys.readouterr().out
    assert "WRONG  A     shape (5, 3, 6, 6)\n" in out
    assert "the usual mistake: assigned (=) instead of added (+=)" in out
    assert main(["check", str(spec), "--function", f"{functions}:conv", "--layer", "5"]) == 2
    err = capsys.readouterr().err
    assert "--layer 5: the network has layers 1..4" in err and "Traceback" not in err
    assert main(["check", str(spec), "--function", f"{functions}:conv", "--layer", "0"]) == 2
    assert "layer 0 is the input, which has no backward" in capsys.readouterr().err
    assert main(["check", str(spec), "--formula", "1", "--layer", "1"]) == 2
    assert "--layer belongs to --function" in capsys.readouterr().err
    assert main(["check", str(spec), "--function", f"{functions}:conv", "--layer", "1",
                 "--format", "markdown"]) == 0
    assert "| `W` | (3, 2, 3, 3) | right |" in capsys.readouterr().out


def test_functions_that_raise_return_junk_or_miss_a_key(functions):
    raised = check_layer(DENSE, f"{functions}:raises", 1)
    assert raised.exit_code == 1
    line = next(n for n, text in enumerate(FILE.read_text().splitlines(), 1)
                if 'return params["W7"]' in text)
    assert raised.problem == (f"calling it raised KeyError: 'W7' (at layer_backwards.py:"
                              f"{line})"), raised.problem
    exits = check_layer(DENSE, f"{functions}:exits", 1)
    line = next(n for n, text in enumerate(FILE.read_text().splitlines(), 1)
                if "raise SystemExit(1)" in text)
    assert exits.problem == f"calling it called sys.exit(1) (at layer_backwards.py:{line})"
    junk = check_layer(DENSE, f"{functions}:not_a_dict", 1)
    assert junk.problem == "it returned list, not a dict of arrays keyed A, W, b"
    missing = check_layer(DENSE, f"{functions}:no_bias", 1)
    b = next(p for p in missing.parameters if p.name == "b")
    assert b.findings == ["missing from the returned dict"] and missing.exit_code == 1


def test_a_layer_that_reads_two_layers_is_refused(functions, capsys, tmp_path):
    spec = tmp_path / "res.toml"
    spec.write_text('input = 3\n[[layer]]\nkind = "dense"\nwidth = 3\n[[layer]]\n'
                    'kind = "add"\nfrom = 0\n')
    assert main(["check", str(spec), "--function", f"{functions}:conv", "--layer", "2"]) == 2
    assert "layer 2 (add from 0) reads two layers" in capsys.readouterr().err


# ------------------------------------------------------------------ against PyTorch autograd
def _torch_backward(layer):
    """The user's function written with PyTorch's autograd through the layer's forward."""
    torch = need("torch")

    def backward(params, A, dOut):
        tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
        A_t = torch.tensor(A, requires_grad=True)
        out = layer(torch, tensors, A_t)
        out.backward(torch.tensor(dOut))
        return {"A": A_t.grad.numpy(), **{k: t.grad.numpy() for k, t in tensors.items()}}
    return backward


def _conv_spec(channels, size, conv, pool):
    kernel, stride, padding = conv
    table = (f'input = [{channels}, {size}, {size}]\n[[layer]]\nkind = "conv2d"\n'
             f'channels = 2\nkernel = {kernel}\nstride = {stride}\npadding = {padding}\n'
             'activation = "tanh"\nbias = true\n')
    if pool:
        table += f'[[layer]]\nkind = "{pool[0]}"\nkernel = {pool[1]}\nstride = {pool[2]}\n'
    return Spec.from_toml_string(table + '[[layer]]\nkind = "flatten"\n[[layer]]\n'
                                 'kind = "dense"\nwidth = 2\n')


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(channels=st.integers(1, 2), size=st.integers(4, 7), kernel=st.integers(1, 3),
       stride=st.integers(1, 2), padding=st.integers(0, 2),
       pool=st.sampled_from(["maxpool2d", "avgpool2d"]), window=st.integers(1, 2),
       step=st.integers(1, 2))
def test_random_conv_and_pool_layers_agree_with_pytorch(channels, size, kernel, stride,
                                                        padding, pool, window, step):
    """Random shapes, strides, paddings and (overlapping) windows: PyTorch's autograd
    through F.conv2d and F.max_pool2d / F.avg_pool2d is judged right at every layer."""
    torch = need("torch")
    F = torch.nn.functional
    padding = min(padding, kernel - 1)  # a wider padding is refused (windows of zeros only)
    out = (size + 2 * padding - kernel) // stride + 1
    window = min(window, out)
    spec = _conv_spec(channels, size, (kernel, stride, padding), (pool, window, step))
    conv = check_layer(spec, _torch_backward(lambda t, p, A: torch.tanh(F.conv2d(
        A, p["W"], p["b"], stride=stride, padding=padding))), 1)
    assert conv.right, str(conv)
    pooling = getattr(F, pool.replace("pool2d", "_pool2d"))
    pooled = check_layer(spec, _torch_backward(lambda t, p, A: pooling(A, window, step)), 2)
    assert pooled.right, str(pooled)


@pytest.mark.parametrize("spec, layer, forward", [
    (DENSE, 1, lambda t, p, A: t.tanh(A @ p["W"].T + p["b"])),
    (DENSE, 2, lambda t, p, A: t.softmax(A @ p["W"].T + p["b"], dim=1)),
    (LAYERNORM, 1, lambda t, p, A: t.nn.functional.layer_norm(A, (4,), p["gamma"],
                                                              p["beta"], eps=1e-5)),
    (CONV, 2, lambda t, p, A: t.nn.functional.max_pool2d(A, 3, 2)),
])
def test_flat_layers_agree_with_pytorch(spec, layer, forward):
    result = check_layer(spec, _torch_backward(forward), layer)
    assert result.right, str(result)


def test_the_truth_sees_ties_in_a_max_pool_window():
    """A is drawn on a grid, so windows hold ties: sending dOut to every maximum differs."""
    from symprop.check.layer import _point, _Truth

    truth = _Truth(CONV, 2)
    point = _point(CONV, 2, truth, 5, 0)
    windows = np.lib.stride_tricks.sliding_window_view(point.A, (3, 3), axis=(2, 3))
    windows = windows[:, :, ::2, ::2].reshape(*windows[:, :, ::2, ::2].shape[:4], 9)
    assert np.any((windows == windows.max(-1, keepdims=True)).sum(-1) > 1)


def test_a_wrong_truth_is_a_loud_exit_3(functions, tmp_path, capsys, monkeypatch):
    """The truth is proven by differences of its own forward before it judges anything."""
    from symprop.check import layer

    right = layer._Truth.__call__
    monkeypatch.setattr(layer._Truth, "__call__", lambda self, p, A, dOut: {
        k: v * (1.001 if k == "W" else 1) for k, v in right(self, p, A, dOut).items()})
    spec = tmp_path / "dense.toml"
    spec.write_text('input = 3\n[[layer]]\nkind = "dense"\nwidth = 3\nactivation = "tanh"\n'
                    'bias = true\n')
    assert main(["check", str(spec), "--function", f"{functions}:dense_tanh",
                 "--layer", "1"]) == 3
    captured = capsys.readouterr()
    assert "self-check FAILED: the true backward of network_layer1 disagrees" in captured.err
    assert captured.out == ""


def _reference_backward(spec, l):
    """The user's function as PyTorch's autograd through the kind's own reference forward
    (written in torch's functions, not symprop's derivation)."""
    torch = need("torch")
    from symprop.reference import _Ops

    ops, config = _Ops("torch", spec), spec.layer(l)

    def backward(params, A, dOut):
        tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
        flat = torch.tensor(A.reshape(len(A), -1), requires_grad=True)
        config.reference(ops, tensors, {l - 1: flat}).backward(
            torch.tensor(dOut.reshape(len(dOut), -1)))
        return {"A": flat.grad.numpy().reshape(A.shape),
                **{k: t.grad.numpy() for k, t in tensors.items()}}
    return backward


@pytest.mark.parametrize("kind, example", ROWS, ids=[k for k, _ in ROWS])
def test_every_kind_of_readme_agrees_with_its_reference_forward(kind, example):
    """Each kind's table from README's list, checked at the layer it stands in: PyTorch's
    autograd through its reference forward is right (two-input kinds are refused)."""
    from symprop.layers import KINDS

    table = tomllib.loads(f"layer = {example}")["layer"]
    if getattr(KINDS[kind], "READS_SEQUENCE", False):  # rnn: a sequence of 4 steps
        spec, l = Spec(input=3, steps=4, stack=[table, {"kind": "dense", "width": 2}],
                       loss="sse", name=kind), 1
    elif KINDS[kind].READS_FLAT:
        stack = [{"kind": "dense", "width": 4, "activation": "tanh", "bias": True},
                 {"kind": "dense", "width": 4, "activation": "sigmoid"}, table,
                 {"kind": "dense", "width": 2}]
        spec, l = Spec(input=3, stack=stack, loss="sse", name=kind), 3
    else:
        stack = [table, *([] if kind == "flatten" else [{"kind": "flatten"}]),
                 {"kind": "dense", "width": 2}]
        spec, l = Spec(input=[2, 5] if kind.endswith("1d") else [1, 4, 4], stack=stack,
                       loss="sse", name=kind), 1
    if len(spec.layer(l).inputs) > 1:
        with pytest.raises(InputError, match="reads two layers"):
            check_layer(spec, _reference_backward(spec, l), l)
        return
    result = check_layer(spec, _reference_backward(spec, l), l)
    assert result.right, str(result)


def test_a_same_padding_conv_s_valid_correlation_gets_one_hint(tmp_path):
    """With padding (k-1)/2 the "valid" correlation is the padding removed twice: the same
    array, so one hint (the first in the kind's order), not two that read as different."""
    (tmp_path / "valid.py").write_text(
        "from layer_backwards import conv_padding_removed_twice as backward\n")
    shutil.copy(FILE, tmp_path / FILE.name)
    result = check_layer(CONV, f"{tmp_path / 'valid.py'}:backward", 1)
    findings = next(p for p in result.parameters if p.name == "A").findings
    assert [f for f in findings if "usual mistake" in f] == [
        ("the usual mistake: the padding is removed twice: the gradient of the padded input, "
        "cropped once, is already dC/dA")]


def test_tensors_that_require_grad_are_read(functions):
    """A backward written with torch may return its tensors as they are."""
    torch = need("torch")
    from tests import layer_backwards

    def backward(params, A, dOut):
        return {k: torch.tensor(v, requires_grad=True) * 1.0
                for k, v in layer_backwards.dense_tanh(params, A, dOut).items()}
    result = check_layer(DENSE, backward, 1)
    assert result.right and result.exit_code == 0, str(result)


def test_a_file_that_calls_sys_exit_is_an_input_error(tmp_path, capsys):
    path = tmp_path / "exits.py"
    path.write_text("import sys\n\nsys.exit(2)\n")
    spec = tmp_path / "dense.toml"
    spec.write_text('input = 3\n[[layer]]\nkind = "dense"\nwidth = 3\n')
    assert main(["check", str(spec), "--function", f"{path}:backward", "--layer", "1"]) == 2
    err = capsys.readouterr().err
    assert f"importing {path} called sys.exit(2)" in err and f"{path}:3" in err, err


def test_with_input_is_for_the_vectorized_numpy_module():
    from symprop.codegen import generate

    for style, target in [("scalar", "numpy"), ("vectorized", "torch")]:
        with pytest.raises(InputError, match="with_input is for the vectorized NumPy module"):
            generate(DENSE, style, target=target, with_input=True)


def test_odd_inputs_get_clear_answers(tmp_path, capsys):
    """A superscript digit as --layer, a parameter named A, SystemExit() and a bfloat16
    tensor: each a message for the user, never a traceback or a wrong reading."""
    from symprop.check.function import call_user

    with pytest.raises(InputError, match="the network has layers 1..2"):
        check_layer(DENSE, lambda p, A, d: {}, "²")
    custom = Spec.from_dict({"input": 2, "layer": [
        {"kind": "custom", "width": 2, "formula": "tanh(sum_k(A_jk * a_k))",
         "params": {"A": "jk"}}]})
    with pytest.raises(InputError, match="has a parameter named A, the key --layer gives"):
        check_layer(custom, lambda p, A, d: {}, 1)

    def exits(params, A, dOut):
        raise SystemExit()
    assert call_user(exits, {}, None, None, keys=["A"])[1].startswith(
        "calling it called sys.exit() (at ")
    torch = need("torch")
    from tests import layer_backwards

    def bfloat16(params, A, dOut):
        return {k: torch.tensor(v).to(torch.bfloat16)
                for k, v in layer_backwards.dense_tanh(params, A, dOut).items()}
    result = check_layer(DENSE, bfloat16, 1)
    findings = [f for p in result.parameters for f in p.findings]
    assert not any("not an array" in f for f in findings), findings
    assert all(p.shape == p.expected_shape for p in result.parameters)
