"""The torch target follows torch's conventions: its autograd Functions use the
setup_context style, so torch.func.grad of loss runs the derived backward (and equals
loss_and_gradients and ordinary autograd), as does a user's SGD step under torch.compile,
for every example network."""

import warnings
from pathlib import Path

import pytest
from conftest import need
from test_jax_conventions import NETWORKS

from symprop import Spec
from symprop.codegen import generate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _setup(tmp_path, name):
    torch = need("torch")
    spec = Spec.from_toml(EXAMPLES / f"{name}.toml")
    m = generate(spec, target="torch").load(tmp_path / f"{name}_torch.py")
    g = torch.Generator().manual_seed(0)
    X = torch.rand(5, m.LAYERS[0], generator=g, dtype=torch.float64) * 2 - 1
    Y = torch.softmax(torch.randn(5, m.LAYERS[-1], generator=g, dtype=torch.float64), dim=1)
    return torch, m, m.init_params(0, torch.float64), X, Y


@pytest.mark.parametrize("name", NETWORKS)
def test_torch_func_grad_of_loss_is_the_derived_gradient(tmp_path, name):
    torch, m, params, X, Y = _setup(tmp_path, name)
    _, want = m.loss_and_gradients(params, X, Y)
    got = torch.func.grad(m.loss)(params, X, Y)
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    m.loss(leaves, X, Y).backward()
    for key in params:
        torch.testing.assert_close(got[key], want[key], rtol=1e-10, atol=1e-14)
        torch.testing.assert_close(leaves[key].grad, want[key], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["softmax_ce", "residual"])
def test_a_compiled_sgd_step_runs_it(tmp_path, name):
    torch, m, params, X, Y = _setup(tmp_path, name)

    def step(p, X, Y):
        C, grads = torch.func.grad_and_value(m.loss)(p, X, Y)[::-1]
        return C, {k: p[k] - 0.1 * grads[k] for k in p}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        C, updated = torch.compile(step, backend="eager")(params, X, Y)
    value, grads = m.loss_and_gradients(params, X, Y)
    assert abs(float(C) - value) <= 1e-12 * abs(value)
    for key in params:
        torch.testing.assert_close(updated[key], params[key] - 0.1 * grads[key])
