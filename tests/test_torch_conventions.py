"""The torch target follows torch's conventions: its autograd Functions use the
setup_context style, so torch.func.grad of loss runs the derived backward (and equals
loss_and_gradients and ordinary autograd), as does a user's SGD step under torch.compile,
for every example network."""

import warnings
from pathlib import Path

import pytest
from conftest import need
from hypothesis import HealthCheck, given, settings
from test_jax_conventions import NETWORKS
from test_property import _concrete, specs

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


def _hvp(torch, loss, params, X, Y, direction):
    """grad(grad(C) . v): a Hessian-vector product by double backward."""
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    grads = torch.autograd.grad(loss(leaves, X, Y), list(leaves.values()), create_graph=True)
    inner = sum((g * direction[k]).sum() for g, k in zip(grads, leaves))
    return dict(zip(leaves, torch.autograd.grad(inner, list(leaves.values()))))


@pytest.mark.parametrize("name", [*NETWORKS, "lenet"])
def test_second_derivatives_through_the_derived_backward_are_right(tmp_path, name):
    """create_graph=True differentiates the derived backward itself (its layer's forward is
    recomputed from the Function's inputs): a Hessian-vector product equals the one of
    PyTorch's autograd through the reference forward (it was 0 when the backward read
    tensors saved without their history)."""
    torch = need("torch")
    from symprop.reference import _Ops, forward_loss

    spec = Spec.from_toml(EXAMPLES / f"{name}.toml")
    m = generate(spec, target="torch").load(tmp_path / f"{name}_torch.py")
    g = torch.Generator().manual_seed(1)
    X = torch.rand(3, *m.INPUT_SHAPE if hasattr(m, "INPUT_SHAPE") else (m.LAYERS[0],),
                   generator=g, dtype=torch.float64) * 2 - 1
    Y = torch.softmax(torch.randn(3, m.LAYERS[-1], generator=g, dtype=torch.float64), dim=1)
    params = {k: v + 0.3 * torch.randn(v.shape, generator=g, dtype=torch.float64)
              for k, v in m.init_params(0, torch.float64).items()}
    direction = {k: torch.randn(v.shape, generator=g, dtype=torch.float64)
                 for k, v in params.items()}
    reference = forward_loss(_Ops("torch", spec, {}), spec, {})
    want = _hvp(torch, reference, params, X, Y, direction)
    got = _hvp(torch, m.loss, params, X, Y, direction)
    assert max(float(v.abs().max()) for v in want.values()) > 1e-3
    for key in params:
        torch.testing.assert_close(got[key], want[key], rtol=1e-9, atol=1e-12)


def test_torch_func_transforms_compose_with_it(tmp_path):
    """jacrev of jacrev is the Hessian (of PyTorch's autograd through the reference
    forward); vmap of grad gives per-sample gradients."""
    from symprop.reference import _Ops, forward_loss

    torch, m, params, X, Y = _setup(tmp_path, "softmax_ce")
    spec = Spec.from_toml(EXAMPLES / "softmax_ce.toml")
    reference = forward_loss(_Ops("torch", spec, {}), spec, {})
    H = torch.func.jacrev(torch.func.jacrev(lambda b: m.loss({**params, "b2": b}, X, Y)))(
        params["b2"])
    torch.testing.assert_close(H, torch.autograd.functional.hessian(
        lambda b: reference({**params, "b2": b}, X, Y), params["b2"]))
    assert float(H.abs().max()) > 1e-3
    per_sample = torch.func.vmap(lambda x, y: torch.func.grad(m.loss)(
        params, x[None], y[None]))(X, Y)
    for i in range(len(X)):
        _, want = m.loss_and_gradients(params, X[i:i + 1], Y[i:i + 1])
        for key in params:
            torch.testing.assert_close(per_sample[key][i], want[key])


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(spec=specs())
def test_a_compiled_sgd_step_runs_on_random_networks(tmp_path, spec):
    """Random layer lists (identity layers and outputs among them, whose forward saves one
    tensor twice: torch.compile refused that) compile and take the derived step."""
    torch = need("torch")
    spec = _concrete(spec)
    m = generate(spec, target="torch").load(tmp_path / "random_torch.py")
    g = torch.Generator().manual_seed(0)
    X = torch.rand(4, m.LAYERS[0], generator=g, dtype=torch.float64)
    Y = torch.rand(4, m.LAYERS[-1], generator=g, dtype=torch.float64)
    Y = Y / Y.sum(1, keepdim=True)
    params = m.init_params(0, torch.float64)

    def step(p, X, Y):
        return torch.func.grad_and_value(m.loss)(p, X, Y)

    torch._dynamo.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grads, C = torch.compile(step, backend="eager")(params, X, Y)
    value, want = m.loss_and_gradients(params, X, Y)
    assert abs(float(C) - value) <= 1e-12 * max(1.0, abs(value))
    for key in params:
        torch.testing.assert_close(grads[key], want[key], rtol=1e-10, atol=1e-12)
