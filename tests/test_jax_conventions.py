"""The JAX target follows JAX's conventions: loss_and_gradients returns JAX arrays (no
float() of a traced value), so it runs inside a user's jax.jit -- a jitted SGD step, as
every JAX training loop has -- and loss maps over a leading batch of parameter sets with
jax.vmap, for every example network."""

from pathlib import Path

import numpy as np
import pytest
from test_codegen_frameworks import array_library

from symprop import Spec
from symprop.codegen import generate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: Every bundled example codegen accepts (the tutorial's generic g is refused on purpose).
NETWORKS = ["softmax_ce", "seed001", "custom", "gated", "rbf", "residual", "digits"]
LEARNING_RATE = 0.1


def _module_and_batch(tmp_path, name):
    jnp = array_library("jax")
    import jax

    spec = Spec.from_toml(EXAMPLES / f"{name}.toml")
    m = generate(spec, target="jax").load(tmp_path / f"{name}_jax.py")
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.uniform(-1, 1, (5, m.LAYERS[0])))
    Y = jax.nn.softmax(jnp.asarray(rng.normal(size=(5, m.LAYERS[-1]))), axis=1)
    return jax, m, m.init_params(0), X, Y


@pytest.mark.parametrize("name", NETWORKS)
def test_a_jitted_sgd_step_runs_the_generated_gradients(tmp_path, name):
    jax, m, params, X, Y = _module_and_batch(tmp_path, name)
    C, grads = m.loss_and_gradients(params, X, Y)
    assert isinstance(C, jax.Array) and C.shape == () and C.dtype == np.float64

    @jax.jit
    def step(p, X, Y):
        C, g = m.loss_and_gradients(p, X, Y)
        return C, {k: p[k] - LEARNING_RATE * g[k] for k in p}

    C_jit, updated = step(params, X, Y)
    np.testing.assert_allclose(C_jit, C, rtol=1e-12)
    for key in params:  # the update is SGD with the module's own (unjitted) gradients
        np.testing.assert_allclose(updated[key], params[key] - LEARNING_RATE * grads[key],
                                   rtol=1e-12, atol=1e-15)
    assert float(step(updated, X, Y)[0]) < float(C)  # a small step downhill lowers C
    jitted_C, jitted_grads = jax.jit(m.loss_and_gradients)(params, X, Y)
    np.testing.assert_allclose(jitted_C, C, rtol=1e-12)
    for key in params:
        np.testing.assert_allclose(jitted_grads[key], grads[key], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", ["softmax_ce", "residual"])
def test_loss_maps_over_a_leading_batch_of_parameter_sets(tmp_path, name):
    jax, m, _, X, Y = _module_and_batch(tmp_path, name)
    sets = [m.init_params(seed) for seed in range(3)]
    stacked = {k: jax.numpy.stack([s[k] for s in sets]) for k in sets[0]}
    mapped = jax.vmap(m.loss, in_axes=(0, None, None))(stacked, X, Y)
    np.testing.assert_allclose(mapped, [m.loss(s, X, Y) for s in sets], rtol=1e-12)
    grads = jax.vmap(m.gradients, in_axes=(0, None, None))(stacked, X, Y)
    for i, s in enumerate(sets):
        for key, g in m.gradients(s, X, Y).items():
            np.testing.assert_allclose(grads[key][i], g, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", [*NETWORKS, "lenet"])
def test_second_derivatives_through_the_custom_vjp_are_right(tmp_path, name):
    """jax.grad of jax.grad differentiates the derived bwd: a Hessian-vector product equals
    the one of JAX's autodiff through the reference forward."""
    jnp = array_library("jax")
    import jax

    from symprop.reference import _Ops, forward_loss

    spec = Spec.from_toml(EXAMPLES / f"{name}.toml")
    m = generate(spec, target="jax").load(tmp_path / f"{name}_jax.py")
    rng = np.random.default_rng(1)
    X = jnp.asarray(rng.uniform(-1, 1, (3, *getattr(m, "INPUT_SHAPE", (m.LAYERS[0],)))))
    Y = jax.nn.softmax(jnp.asarray(rng.normal(size=(3, m.LAYERS[-1]))), axis=1)
    params = {k: v + 0.3 * rng.normal(size=v.shape) for k, v in m.init_params(0).items()}
    direction = {k: jnp.asarray(rng.normal(size=v.shape)) for k, v in params.items()}

    def hvp(loss):
        return jax.grad(lambda p: sum(jnp.vdot(g, direction[k]) for k, g in
                                      jax.grad(loss)(p, X, Y).items()))(params)
    want = hvp(forward_loss(_Ops("jax", spec, {}), spec, {}))
    got = hvp(m.loss)
    assert max(float(jnp.abs(v).max()) for v in want.values()) > 1e-3
    for key in params:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-9, atol=1e-12)
