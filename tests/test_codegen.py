"""Generated NumPy modules: exact code for small cases, numbers against JAX, PyTorch and finite
differences for every activation and loss, float32, edge cases, shape errors, standalone runs."""

import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import assert_near_autodiff, need

from symprop import Spec
from symprop.codegen import generate, load_module
from symprop.codegen.rules import output_code
from symprop.derivation import backprop
from symprop.errors import InputError
from symprop.verify import verify, verify_module

HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu(0.2)", "softplus", "elu", "swish"]
#: (output activation, loss): every loss of design.md, on outputs it fits.
OUTPUTS = [("identity", "sse"), ("tanh", "half_sse"), ("sigmoid", "mse"),
           ("softmax", "cross_entropy"), ("sigmoid", "cross_entropy"),
           ("sigmoid", "binary_cross_entropy"), ("softmax", "binary_cross_entropy"),
           ("softmax", "sse"), ("swish", "(a - y)**4")]
STYLES = ["vectorized", "scalar"]


def _spec(hidden, out, loss, bias=True, layers=(3, 4, 3)):
    return Spec(layers=layers, activation=[hidden, out], loss=loss, bias=bias)


def _assert_autodiff(report, rtol=1e-10):
    assert report.passed, str(report)
    assert_near_autodiff(report, rtol)


# ------------------------------------------------------------- exact code
def test_output_delta_forms_are_simplified_by_sympy():
    cases = {("sigmoid", "binary_cross_entropy"): "a - y",
             ("softmax", "cross_entropy"): "a*RowSum(y) - y",
             ("identity", "half_sse"): "a - y",
             ("sigmoid", "cross_entropy"): "a*y - y"}
    for (out, loss), expected in cases.items():
        assert str(output_code(backprop(_spec("tanh", out, loss))).delta) == expected


def test_vectorized_module_exact_lines():
    source = generate(_spec("sigmoid", "softmax", "cross_entropy")).source
    assert "    return a*y.sum(axis=1, keepdims=True) - y\n" in source
    # the forward pass leaves Z2 = log softmax(Z2) (same softmax), so the loss reads it; its
    # factor -1 is applied once, to the sum
    assert "    return y*z\n" in source
    assert "    total = -float(_loss_terms(Z, A, Y).sum())\n" in source
    assert "    A2 = _softmax_keep_log(Z2)  # Z2 is now log softmax(Z2): the loss reads it\n" \
        in source
    # sigma' = a(1 - a) is inlined in the backward step, so no helper is written for it;
    # sigma(z) is written over Z1 (nothing reads z again), so no _act_sigmoid either
    assert "_act_sigmoid" not in source
    # the bias is added in the sigmoid's own first pass
    assert ('    Z1 = A0.dot(params["W1"].T, out=buf.get("Z1"))\n'
            '    _sigmoid(Z1, out=Z1, shift=params["b1"])  # sigma(Z1 + b1) in place: the '
            "backward step needs only A1\n"
            "    A1 = Z1\n") in source
    # softmax: transposed in memory
    assert '    Z2 = params["W2"].dot(A1.T, out=buf.get("Z2T")).T\n' in source
    assert "    return (Z2,), (A0, A1, A2)\n" in source
    assert "    Delta2 = _output_delta(Z2, A2, Y)\n    Delta2 /= Y.shape[0]\n" in source
    assert '    dW2 = Delta2.T.dot(A1, out=buf.get("dW2"))\n' in source
    assert '    db2 = ones.dot(Delta2, out=buf.get("db2"))\n' in source
    assert ('    Delta1 = Delta2.dot(params["W2"], out=buf.get("Delta1"))\n    Delta1 *= A1\n'
            "    np.subtract(1.0, A1, out=A1)  # into A1's memory: it is not read again\n"
            "    Delta1 *= A1\n") in source
    assert "import numpy as np\n" in source and "symprop" not in source.split('"""', 2)[2]


def test_a_hidden_layer_of_the_same_width_passes_back_into_its_dead_output():
    """Delta^(1) = Delta^(2) W^(2) is written into A^(2)'s memory (dead once g' is applied),
    as a hand-written step does: one (batch, n) array fewer per step."""
    spec = Spec(layers=(3, 4, 4, 3), activation=["sigmoid", "tanh", "softmax"],
                loss="cross_entropy", bias=True)
    source = generate(spec).source
    assert ('    Delta1 = Delta2.dot(params["W2"], out=A2)  # into A2\'s memory: it is not '
            "read again\n") in source
    assert '"Delta1"' not in source  # no workspace buffer for it either
    need("jax")
    _assert_autodiff(verify(spec, against=("jax",)))


def test_a_workspace_reuses_every_dense_array_and_gives_the_same_gradients():
    """loss_and_gradients(..., workspace=ws): the same numbers as without, across batch sizes
    and dtypes; the gradients live in the workspace (overwritten by the next call); and a
    step with a warm workspace allocates no array of the batch's size."""
    import tracemalloc

    module = generate(Spec(layers=(20, 64, 64, 5), activation=["sigmoid", "tanh", "softmax"],
                           loss="cross_entropy", bias=True)).load()
    rng = np.random.default_rng(3)
    ws = {}
    for n, dtype in ((256, np.float64), (256, np.float64), (7, np.float64), (256, np.float32)):
        params = module.init_params(1, dtype)
        params = {k: v + 0.1 * rng.normal(size=v.shape).astype(dtype) for k, v in params.items()}
        X = rng.normal(size=(n, 20)).astype(dtype)
        Y = np.eye(5, dtype=dtype)[rng.integers(0, 5, n)]
        loss, grads = module.loss_and_gradients(params, X, Y)
        loss_ws, grads_ws = module.loss_and_gradients(params, X, Y, workspace=ws)
        assert loss_ws == loss
        for key in grads:
            np.testing.assert_array_equal(grads_ws[key], grads[key])
            assert grads_ws[key].dtype == dtype
        assert grads_ws["W1"] is ws["dW1"] and ws["for"] == (n, np.dtype(dtype))
        again = module.gradients(params, X, Y, workspace=ws)
        assert again["W1"] is grads_ws["W1"]
    tracemalloc.start()
    module.loss_and_gradients(params, X, Y, workspace=ws)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 256 * 64 * 4, peak  # less than one Z^(l) of the batch in float32


@pytest.mark.parametrize("style", STYLES)
def test_generated_sigmoid_is_accurate_to_its_documented_absolute_error(style):
    """sigma(z) within one unit of 1 for every z, 0 and exactly 1 far out, no warning: 0
    exactly through exp's overflow (2048 entries or more), at most the smallest normal number
    where small float64 arrays cap -z at 709 (1/(1 + e^709) is 1.2e-308)."""
    import mpmath

    module = generate(_spec("sigmoid", "sigmoid", "binary_cross_entropy"), style).load()
    for dtype in (np.float64, np.float32):
        # 4006 entries (float64: through exp) and 11 (through tanh, as float32 always is)
        z = np.concatenate([np.linspace(-60, 60, 4001), [-1e3, -745, 40, 745, 1e3]]).astype(dtype)
        small = np.concatenate([np.linspace(-60, 60, 6), [-1e3, -745, 40, 745, 1e3]])
        z = np.concatenate([z, small.astype(dtype)])
        exact = np.array([float(mpmath.mpf(1) / (1 + mpmath.exp(-mpmath.mpf(float(v)))))
                          for v in z])
        with np.errstate(all="raise", under="ignore"):
            got = np.concatenate([module._sigmoid(z[:-11]), module._sigmoid(z[-11:])])
            shifted = module._sigmoid(z[-11:] - 2.0, shift=np.full(11, 2.0, dtype))
            big = module._sigmoid(z[:-11] - 1.0, shift=np.ones(4006, dtype))
        np.testing.assert_array_equal(shifted, got[-11:])
        assert np.max(np.abs(big - got[:-11])) <= 2 * np.finfo(dtype).eps
        assert got.dtype == dtype
        assert np.max(np.abs(got - exact)) <= np.finfo(dtype).eps
        assert got[-16] == 0 and 0 <= got[-5] <= np.finfo(dtype).tiny
        assert got[-1] == 1 and got[-12] == 1


def test_log_softmax_in_place_only_when_z_is_read_through_softmax():
    from symprop.codegen.rules import A, Y, Z
    from symprop.codegen.stable import LogSoftmax, RowSum, SoftmaxRow
    from symprop.codegen.vectorized import _through_log_softmax

    out = output_code(backprop(_spec("tanh", "softmax", "cross_entropy")))
    moved = _through_log_softmax(out)
    assert (str(moved.loss), str(moved.delta)) == ("-y*z", "a*RowSum(y) - y")
    # z outside softmax / log softmax would change under the shift: keep the plain path
    for loss in (-Y * LogSoftmax(Z) + Z ** 2, Y * SoftmaxRow(Z) * Z):
        assert _through_log_softmax(type(out)(out.loss_derivative, A * RowSum(Y) - Y, loss,
                                              out.how)) is None


def test_forward_returns_row_major_outputs_like_x():
    for out, loss in (("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy")):
        module = generate(_spec("tanh", out, loss)).load()
        A = module.forward(module.init_params(0), np.ones((5, 3)))
        assert A.shape == (5, 3) and A.flags.c_contiguous


def test_vectorized_module_keeps_z_only_where_g_prime_needs_it():
    source = generate(Spec(layers=(3, 4, 4, 3), activation=["relu", "tanh", "sigmoid"],
                           loss="binary_cross_entropy", bias=False)).source
    # relu' reads z: Z1 is kept; tanh' = 1 - a^2 reads a: Z2's memory becomes A2
    assert "    A1 = _act_relu(Z1)\n" in source
    assert "    np.tanh(Z2, out=Z2)  # tanh(Z2) in place: the backward step needs only A2\n" \
        in source
    assert "    return (Z1, Z3), (A0, A1, A2, A3)\n" in source
    assert ("    np.square(A2, out=A2)  # into A2's memory: it is not read again\n"
            "    np.subtract(1.0, A2, out=A2)\n    Delta2 *= A2\n") in source
    assert "    Delta1 *= _act_relu_prime(Z1, A1)\n" in source
    assert "ones = " not in source  # no biases, no column sums


@pytest.mark.parametrize("style", STYLES)
def test_every_helper_a_module_defines_is_called(style):
    import re

    for hidden in HIDDEN:
        for out, loss in OUTPUTS:
            source = generate(_spec(hidden, out, loss), style).source
            for name in set(re.findall(r"^def (_\w+)\(", source, re.MULTILINE)):
                # its def and at least one call
                assert source.count(f"{name}(") > 1, (hidden, out, loss, name)


def test_scalar_module_exact_lines():
    source = generate(Spec(layers=(2, 2, 1), activation=["tanh", "identity"], loss="sse",
                           name="tiny"), "scalar").source
    assert ("    z1_0 = W1[0, 0]*x_0 + W1[0, 1]*x_1  "
            "# z_0^(1) = w_00^(1)*x_0 + w_01^(1)*x_1\n") in source
    assert "    a1_1 = _act_tanh(z1_1)  # a_1^(1) = tanh(z_1^(1))\n" in source
    assert ("    delta2_0 = 2*a2_0 - 2*y_0  # delta_0^(2) = 2*(a_0^(2) - y_0)*id'(z_0^(2))\n"
            in source)
    assert ("    delta1_1 = delta2_0*W2[0, 1]*(1 - a1_1**2)  "
            "# delta_1^(1) = delta_0^(2)*tanh'(z_1^(1))*w_01^(2)\n") in source
    assert "    dW2[0, 1] = np.mean(a1_1*delta2_0)  # dC_0/dw_01^(2) = delta_0^(2)*a_1^(1)\n" \
        in source


def test_generic_activation_is_refused_with_a_clear_error(tutorial):
    with pytest.raises(InputError, match=r"layer 1 uses the generic activation g.*use identity"):
        generate(tutorial)


def test_scalar_style_refuses_big_networks():
    with pytest.raises(InputError, match=r"about 11,630 lines.*--style vectorized.*--force"):
        generate(Spec(layers=(100, 100, 10), activation="tanh", loss="sse"), "scalar")


# ------------------------------------------------------ against autodiff
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_every_hidden_activation_matches_jax_and_torch(hidden, style):
    need("jax"), need("torch")
    for bias in (True, False):
        report = verify(_spec(hidden, "sigmoid", "binary_cross_entropy", bias), style=style,
                        against=("jax", "torch", "fd"))
        _assert_autodiff(report)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(("out", "loss"), OUTPUTS)
def test_every_output_and_loss_matches_jax_and_torch(out, loss, style):
    need("jax"), need("torch")
    for bias in (True, False):
        report = verify(_spec("tanh", out, loss, bias), style=style,
                        against=("jax", "torch", "fd"), seed=3)
        _assert_autodiff(report)


def test_custom_activation_and_loss_flow_into_the_code(tmp_path):
    need("torch")
    spec = Spec.from_toml_string(
        'layers = [3, 4, 2]\nactivation = ["gelu_tanh", "identity"]\nloss = "(a - y)**4"\n'
        'bias = [true, false]\nreduction = "sum"\n[activations]\n'
        'gelu_tanh = "0.5*x*(1 + tanh(0.7978845608*(x + 0.044715*x**3)))"\n')
    for style in STYLES:
        kept = tmp_path / f"net_{style}.py"
        report = verify(spec, style=style, against=("torch", "fd"), path=kept)
        _assert_autodiff(report)
        assert report.module_path == kept and "gelu_tanh'(z) = " in kept.read_text()


def test_float32_in_float32_out_to_float32_accuracy():
    need("torch")
    for style in STYLES:
        report = verify(_spec("sigmoid", "softmax", "cross_entropy"), style=style,
                        dtype="float32", against=("torch", "fd"))
        assert report.passed, str(report)
        worst = max(c.max_rel_error for c in report.comparisons if c.against == "torch")
        assert 1e-9 < worst < 1e-5  # float32 rounding, not float64 and not garbage


def test_verify_rejects_a_wrong_module():
    """Negative control: one gradient scaled by 1.001 is caught by every reference."""
    need("torch")
    spec = _spec("tanh", "softmax", "cross_entropy")
    module = generate(spec)
    line = 'dW1 = Delta1.T.dot(A0, out=buf.get("dW1"))'
    assert line in module.source
    module.source = module.source.replace(line, f"dW1 = 1.001 * {line[6:]}")
    report = verify(spec, module=module, against=("torch", "fd"))
    assert not report.passed
    assert {(c.parameter, c.against) for c in report.failures} == {("W1", "torch"),
                                                                   ("W1", "fd")}


# ------------------------------------------------------------ edge cases
def _extreme(module, dtype):
    p = module.init_params(0, dtype)
    p["W1"][:] = np.array([[1, 0], [0, 1], [1, 1]])
    p["W2"][:] = np.array([[1, 0, 0], [0, -1, 0], [0, 0, 0.5]])
    X = np.array([[1e3, -1e3], [-1e3, 1e3], [0.5, -0.2]], dtype=dtype)
    Y = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=dtype)
    return p, X, Y


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_no_warning_and_finite_at_z_1e3(style, dtype):
    """Pre-activations of +-1e3, targets at 0 and 1: finite, no RuntimeWarning."""
    for hidden in HIDDEN:
        for out, loss in OUTPUTS:
            if (out, loss) == ("softmax", "binary_cross_entropy"):
                continue  # stated in the module's Caution (test below)
            module = generate(_spec(hidden, out, loss, bias=True, layers=(2, 3, 3)), style)
            assert module.cautions == []
            m = module.load()
            p, X, Y = _extreme(m, dtype)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                value, grads = m.loss_and_gradients(p, X, Y)
                forward = m.forward(p, X[:1])  # batch of 1
            assert np.isfinite(value), (hidden, out, loss)
            assert forward.shape == (1, 3)
            for key, g in grads.items():
                assert g.dtype == dtype and g.shape == p[key].shape
                assert np.all(np.isfinite(g)), (hidden, out, loss, key)


def test_softmax_with_bce_says_where_it_is_not_overflow_safe():
    module = generate(_spec("tanh", "softmax", "binary_cross_entropy"))
    assert len(module.cautions) == 2
    assert "Caution: delta^(L) = " in module.source


def test_width_one_layers():
    need("torch")
    spec = Spec(layers=(1, 1, 1), activation=["sigmoid", "sigmoid"],
                loss="binary_cross_entropy", bias=True)
    for style in STYLES:
        _assert_autodiff(verify(spec, style=style, against=("torch", "fd"), batch=1))


# ------------------------------------------------------- module contract
@pytest.fixture(scope="module")
def module_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "net.py"
    generate(_spec("relu", "softmax", "cross_entropy")).write(path)
    return path


def test_shape_errors_are_value_errors_naming_the_array(module_file):
    m = load_module(module_file)
    p = m.init_params(1)
    X, Y = np.ones((5, 3)), np.eye(3)[[0, 1, 2, 0, 1]]
    with pytest.raises(ValueError, match=r"X has shape \(5, 4\); expected \(batch, 3\)"):
        m.loss(p, np.ones((5, 4)), Y)
    with pytest.raises(ValueError, match=r"X has shape \(3,\).*X.reshape\(1, -1\)"):
        m.forward(p, np.ones(3))
    with pytest.raises(ValueError, match=r"Y has shape \(4, 3\); expected \(5, 3\)"):
        m.gradients(p, X, Y[:4])
    with pytest.raises(ValueError, match=r"params\['W2'\] has shape \(4, 3\); expected \(3, 4\)"):
        m.gradients({**p, "W2": p["W2"].T}, X, Y)
    with pytest.raises(ValueError, match=r"params is missing \['b1'\]"):
        m.loss({k: v for k, v in p.items() if k != "b1"}, X, Y)
    assert m.LAYERS == [3, 4, 3]
    assert sorted(m.init_params(0)) == ["W1", "W2", "b1", "b2"]
    value, grads = m.loss_and_gradients(p, X, Y)
    assert value == m.loss(p, X, Y)
    assert all(np.array_equal(grads[k], m.gradients(p, X, Y)[k]) for k in grads)


def test_generated_file_passes_ruff(module_file, tmp_path):
    ruff = shutil.which("ruff") or str(
        __import__("pathlib").Path(sys.executable).with_name("ruff"))
    scalar = tmp_path / "scalar.py"
    generate(Spec(layers=(2, 3, 2), activation=["elu", "softmax"], loss="cross_entropy",
                  bias=True), "scalar").write(scalar)
    proc = subprocess.run([ruff, "check", "--isolated", str(module_file), str(scalar)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_generated_file_runs_without_symprop(module_file, tmp_path):
    script = (
        "import sys\n"
        "sys.modules['symprop'] = None  # importing symprop now raises ImportError\n"
        "import importlib.util, numpy as np\n"
        f"spec = importlib.util.spec_from_file_location('net', {str(module_file)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "p = m.init_params(0)\n"
        "X = np.ones((2, 3)); Y = np.eye(3)[:2]\n"
        "print(sorted(m.gradients(p, X, Y)))\n")
    proc = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['W1', 'W2', 'b1', 'b2']"


def test_verify_module_api_on_a_loaded_module(module_file):
    need("jax")
    spec = _spec("relu", "softmax", "cross_entropy")
    comparisons = verify_module(load_module(module_file), spec, against=("jax",))
    assert [(c.parameter, c.against) for c in comparisons] == [
        ("loss", "jax"), ("W1", "jax"), ("b1", "jax"), ("W2", "jax"), ("b2", "jax"),
        ("gradients", "workspace")]
    assert all(c.passed for c in comparisons)
