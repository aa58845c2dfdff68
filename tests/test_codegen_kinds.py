"""Generated NumPy modules for every layer kind, both styles: gradients agree with JAX and
PyTorch autodiff of the reference forward (rtol 1e-10) and finite differences; float32 stays
float32; |z| up to 1e3 stays finite; every file passes ruff and runs without symprop."""

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_near_autodiff, need
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from test_layers import AROUND, layer_lists, spec_around

from symprop import Spec
from symprop.codegen import generate
from symprop.verify import verify

STYLES = ["vectorized", "scalar"]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: Outputs that are not a dense layer, each meeting a loss.
ENDINGS = {
    "activation softmax + cross-entropy": ([{"kind": "dense", "width": 3},
                                            {"kind": "activation", "activation": "softmax"}],
                                           "cross_entropy"),
    "activation sigmoid + bce": ([{"kind": "dense", "width": 3},
                                  {"kind": "activation", "activation": "sigmoid"}],
                                 "binary_cross_entropy"),
    "layernorm + sse": ([{"kind": "dense", "width": 3, "activation": "tanh"},
                         {"kind": "layernorm"}], "sse"),
    "custom + half_sse": ([{"kind": "dense", "width": 3},
                           {"kind": "custom", "width": 2,
                            "formula": "tanh(sum_k(c_jk * a_k))", "params": {"c": "jk"}}],
                          "half_sse"),
}


def _assert_autodiff(report, rtol=1e-10):
    assert report.passed, str(report)
    assert_near_autodiff(report, rtol)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("kind", AROUND)
def test_every_kind_agrees_with_autodiff_and_finite_differences(kind, style):
    need("jax")
    need("torch")
    report = verify(spec_around(kind, reduction="sum"), style=style,
                    against=("jax", "torch", "fd"))
    _assert_autodiff(report)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("ending", ENDINGS)
def test_outputs_of_other_kinds_meet_the_loss(ending, style):
    need("torch")
    stack, loss = ENDINGS[ending]
    spec = Spec(input=2, stack=stack, loss=loss, name="ending")
    _assert_autodiff(verify(spec, style=style, against=("torch", "fd")))


@pytest.mark.parametrize("style", STYLES)
def test_the_residual_example_agrees_in_float64_and_float32(style):
    need("torch")
    spec = Spec.from_toml(EXAMPLES / "residual.toml")
    _assert_autodiff(verify(spec, style=style, against=("torch", "fd")))
    assert verify(spec, style=style, dtype="float32", against=("torch", "fd")).passed


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_kind_is_finite_at_z_1e3(style, dtype):
    for kind in list(AROUND) + list(ENDINGS):
        if kind in ENDINGS:
            stack, loss = ENDINGS[kind]
            spec = Spec(input=2, stack=stack, loss=loss, name="ending")
        else:
            spec = spec_around(kind)
        m = generate(spec, style).load()
        p = {k: (v * 300).astype(dtype) for k, v in m.init_params(0, np.float64).items()}
        X = np.array([[1e3, -1e3], [-1e3, 1e3], [0.5, -0.2]], dtype=dtype)
        Y = np.eye(spec.layers[-1], dtype=dtype)[[0, -1, 0]]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
                value, grads = m.loss_and_gradients(p, X, Y)
        assert np.isfinite(value), kind
        for key, g in grads.items():
            assert g.dtype == dtype and g.shape == p[key].shape, (kind, key)
            assert np.all(np.isfinite(g)), (kind, key)


def test_the_modules_of_every_kind_pass_ruff_and_run_without_symprop(tmp_path):
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    files = []
    for n, kind in enumerate(AROUND):
        for style in STYLES:
            path = tmp_path / f"m{n}_{style}.py"
            generate(spec_around(kind), style).write(path)
            files.append(path)
    proc = subprocess.run([ruff, "check", "--isolated", *map(str, files)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    script = ("import sys, numpy as np\nsys.modules['symprop'] = None\n"
              "import importlib.util as u\n"
              "for path in sys.argv[1:]:\n"
              "    s = u.spec_from_file_location('m', path); m = u.module_from_spec(s)\n"
              "    s.loader.exec_module(m)\n"
              "    p = m.init_params(1)\n"
              "    X = np.ones((3, m.LAYERS[0])); Y = np.zeros((3, m.LAYERS[-1]))\n"
              "    assert np.isfinite(m.loss(p, X, Y))\n")
    proc = subprocess.run([sys.executable, "-c", script, *map(str, files)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_vectorized_layernorm_backward_is_the_split_jacobian():
    source = generate(spec_around("layernorm")).source
    assert "    Xhat2 = (A1 - Mu2)/Sigma2\n" in source
    assert ('    Delta1 = (dA2*params["gamma2"] - 1/3*Xhat2*np.sum(dA2*Xhat2*params["gamma2"], '
            'axis=1, keepdims=True) - 1/3*np.sum(dA2*params["gamma2"], axis=1, keepdims=True))'
            '/Sigma2\n') in source
    assert "    dgamma2 = np.sum(dA2*Xhat2, axis=0)\n" in source


def test_a_residual_sum_passes_its_gradient_to_both_layers():
    source = generate(spec_around("add")).source
    # the last layer to start from dA3 takes the array itself (nothing reads it after)
    assert "    Delta2 = dA3.copy()\n    Delta1 = dA3\n" in source
    assert '    Delta1 += Delta2.dot(params["W2"])\n' in source


def test_generic_g_and_parameterless_networks_are_refused():
    from symprop.errors import InputError

    with pytest.raises(InputError, match="no parameters to learn"):
        generate(Spec(input=2, stack=[{"kind": "activation", "activation": "tanh"}],
                      loss="sse"))
    with pytest.raises(InputError, match="generic activation g"):
        generate(Spec(input=2, stack=[{"kind": "dense", "width": 2, "activation": "g"}]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer_lists(), st.sampled_from(STYLES))
@example(Spec(input=3, loss="sse", stack=[  # a loss of 3e6: the bound is relative to it
    {"kind": "layernorm"},
    {"kind": "custom", "width": 1, "formula": "exp(-s_j * sum_k((a_k - c_jk)**2))",
     "params": {"c": "jk", "s": "j"}}]), "vectorized")
def test_random_layer_lists_generate_modules_that_agree_with_autodiff(spec, style):
    """Random kinds, widths, skip connections (a residual sum passing one array on to two
    layers), activations and losses: the generated module agrees with JAX autodiff of the
    independent reference forward."""
    need("jax")
    assume(spec.n_parameters > 0)
    _assert_autodiff(verify(spec, style=style, against=("jax",)))
