"""rnn: the generated code of every target against PyTorch's own nn.RNN (weights copied,
b_ih + b_hh as b) and against autodiff of the reference forward (rtol 1e-10, float64):
sequence false and true, one and two stacked layers, tanh and relu, with and without bias;
float32 stays float32 and |z| = 1e3 stays finite; JAX runs lax.scan; random rnn stacks;
bad specs name the layer; ``check --layer`` on right and wrong BPTT; nn.RNN import."""

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_near_autodiff, need
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_codegen_frameworks import TARGETS

from symprop import Spec, check_layer
from symprop.cli import main
from symprop.codegen import generate
from symprop.errors import SpecError
from symprop.verify import verify

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def rnn_spec(layers=((5, "tanh", True, False),), steps=4, n0=3):
    """rnn layers (width, activation, bias, sequence), the last one's h_T (or its sequence,
    flattened) into a dense softmax."""
    stack = [{"kind": "rnn", "width": w, "activation": g, "bias": b, "sequence": s}
             for w, g, b, s in layers]
    if layers[-1][3]:
        stack.append({"kind": "flatten"})
    stack.append({"kind": "dense", "width": 2, "activation": "softmax", "bias": True})
    return Spec(input=n0, steps=steps, stack=stack, loss="cross_entropy", name="rnn")


CASES = {
    "tanh, last step": ((5, "tanh", True, False),),
    "relu, no bias, sequence": ((4, "relu", False, True),),
    "two stacked": ((5, "tanh", True, True), (3, "relu", False, False)),
    "two stacked, sequence out": ((4, "relu", True, True), (3, "tanh", True, True)),
}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", CASES)
def test_every_target_matches_autodiff_of_the_reference(case, target):
    need("torch")
    need("jax")
    report = verify(rnn_spec(CASES[case]), target=target, against=("torch", "jax"))
    assert report.passed, str(report)
    assert_near_autodiff(report, 1e-10)


def _torch_model(torch, spec, params):
    """nn.RNN layers (batch_first) with the module's weights, b split as b_ih = b, b_hh = 0."""
    rnns = []
    for config in spec.stack:
        if config.kind != "rnn":
            continue
        l = config.index
        rnn = torch.nn.RNN(config.n_in, config.units, batch_first=True, bias=config.bias,
                           nonlinearity=config.activation.name).double()
        with torch.no_grad():
            rnn.weight_ih_l0.copy_(torch.tensor(params[f"W{l}"]))
            rnn.weight_hh_l0.copy_(torch.tensor(params[f"U{l}"]))
            if config.bias:
                rnn.bias_ih_l0.copy_(torch.tensor(params[f"b{l}"]) * 0.25)
                rnn.bias_hh_l0.copy_(torch.tensor(params[f"b{l}"]) * 0.75)
        rnns.append((rnn, config.sequence))
    L = spec.L
    fc = torch.nn.Linear(spec.layers[L - 1], 2).double()
    with torch.no_grad():
        fc.weight.copy_(torch.tensor(params[f"W{L}"]))
        fc.bias.copy_(torch.tensor(params[f"b{L}"]))

    def model(x):
        for rnn, sequence in rnns:
            x = rnn(x)[0]
            if not sequence:
                x = x[:, -1]
        return torch.softmax(fc(x.reshape(len(x), -1)), -1)
    return model, rnns, fc


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", CASES)
def test_every_target_is_torch_s_own_rnn(case, target):
    """The truth is nn.RNN itself, weights copied in (b split over b_ih and b_hh)."""
    torch = need("torch")
    if target == "jax":
        need("jax")
    spec = rnn_spec(CASES[case])
    module = generate(spec, target=target).load()
    params = {k: np.asarray(v, dtype=np.float64)
              for k, v in generate(spec).load().init_params(seed=2).items()}
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 4, 3)), np.eye(2)[rng.integers(0, 2, 6)]
    model, rnns, fc = _torch_model(torch, spec, params)
    out = model(torch.tensor(X))
    (-(torch.tensor(Y) * torch.log(out)).sum(1).mean()).backward()
    want = {"W": "weight_ih_l0", "U": "weight_hh_l0", "b": "bias_ih_l0"}
    expected = {}
    for (rnn, _), config in zip(rnns, [c for c in spec.stack if c.kind == "rnn"]):
        for key, name in want.items():
            if key != "b" or config.bias:
                expected[f"{key}{config.index}"] = getattr(rnn, name).grad.numpy()
    expected[f"W{spec.L}"] = fc.weight.grad.numpy()
    if target == "numpy":
        got, forward = module.gradients(params, X, Y), module.forward(params, X)
    elif target == "torch":
        tensors = {k: torch.tensor(v) for k, v in params.items()}
        got = {k: v.numpy() for k, v in module.gradients(tensors, torch.tensor(X),
                                                         torch.tensor(Y)).items()}
        forward = module.forward(tensors, torch.tensor(X)).numpy()
    else:
        import jax
        jax.config.update("jax_enable_x64", True)
        got = {k: np.asarray(v) for k, v in module.gradients(params, X, Y).items()}
        forward = np.asarray(module.forward(params, X))
    np.testing.assert_allclose(forward, out.detach().numpy(), rtol=1e-10)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-10, atol=1e-13, err_msg=key)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_float32_stays_float32_and_large_z_stays_finite(target, activation):
    need("torch")
    if target == "jax":
        need("jax")
    spec = rnn_spec(((4, activation, True, True), (3, activation, False, False)))
    report = verify(spec, target=target, dtype="float32", against=("torch",))
    assert report.passed, str(report)
    module = generate(spec).load() if target == "numpy" else None
    if module is not None:
        params = {k: v.astype(np.float32) for k, v in module.init_params(seed=0).items()}
        X = np.full((2, 4, 3), 1e3, dtype=np.float32)
        X[1] *= -1
        grads = module.gradients(params, X, np.eye(2, dtype=np.float32))
        assert all(g.dtype == np.float32 and np.isfinite(g).all() for g in grads.values())


def test_the_generated_code_loops_over_time_steps_only_and_jax_scans():
    spec = rnn_spec(CASES["two stacked"])
    numpy_code = generate(spec).source
    assert numpy_code.count("for t in range(") == 2  # forward and backward, over time
    assert "for i in" not in numpy_code
    jax_code = generate(spec, target="jax").source
    assert jax_code.count("jax.lax.scan(") == 2 and "for t in" not in jax_code
    torch_code = generate(spec, target="torch").source
    assert "torch.autograd.Function" in torch_code and "_rnn_deltas(" in torch_code


@st.composite
def rnn_stacks(draw):
    layers = []
    for _ in range(draw(st.integers(1, 2))):
        layers.append((draw(st.integers(1, 4)), draw(st.sampled_from(["tanh", "relu",
                                                                         "sigmoid"])),
                       draw(st.booleans()), True))
    layers[-1] = (*layers[-1][:3], draw(st.booleans()))
    return rnn_spec(tuple(layers), steps=draw(st.integers(1, 5)), n0=draw(st.integers(1, 3)))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=rnn_stacks(), target=st.sampled_from(TARGETS), seed=st.integers(0, 20),
       batch=st.integers(1, 5))
def test_random_rnn_stacks_match_autodiff(spec, target, seed, batch):
    need("torch")
    need("jax")
    report = verify(spec, target=target, against=("torch", "jax"), seed=seed, batch=batch)
    assert report.passed, str(report)
    assert_near_autodiff(report, 1e-9)


# ------------------------------------------------------------------ bad specs
@pytest.mark.parametrize("text, message", [
    ('input = 3\nloss = "sse"\n[[layer]]\nkind = "rnn"\nwidth = 2\n',
     ("layer 1 (rnn): an rnn layer reads a sequence (one vector per time step), but the input "
     "is not one")),
    (('input = 3\nsteps = 4\nloss = "sse"\n[[layer]]\nkind = "rnn"\nwidth = 2\n'
     'sequence = true\n[[layer]]\nkind = "dense"\nwidth = 2\n'),
     ("layer 2 (dense): a dense layer cannot read the sequence of layer 1 (an rnn with "
     "sequence = true)")),
    ('input = 3\nsteps = 4\nloss = "sse"\n[[layer]]\nkind = "dense"\nwidth = 2\n',
     "layer 1 (dense): a dense layer cannot read the sequence of the input (steps = T)"),
    ('input = 3\nsteps = 0\nloss = "sse"\n[[layer]]\nkind = "rnn"\nwidth = 2\n',
     "key 'steps': expected the number of time steps"),
    (('input = 3\nsteps = 2\nloss = "sse"\n[[layer]]\nkind = "flatten"\n[[layer]]\n'
     'kind = "dense"\nwidth = 2\n'), "steps makes the input a sequence, but no layer is an rnn"),
    (('input = 3\nsteps = 2\nloss = "sse"\n[[layer]]\nkind = "rnn"\nwidth = 2\n'
     'sequence = true\n'), "the last layer meets the loss and must be flat"),
])
def test_bad_rnn_specs_exit_2_naming_the_layer(tmp_path, capsys, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["codegen", str(path), "-o", str(tmp_path / "out.py")]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err and not (tmp_path / "out.py").exists()


def test_a_flatten_after_a_sequence_reads_it_flat():
    spec = rnn_spec(((4, "tanh", False, True),))
    assert spec.shapes[1] == (4, 4) and spec.layers[1] == 16 and spec.layers[2] == 16
    assert Spec.from_dict(spec.to_dict()) == spec and spec.to_dict()["steps"] == 4


def test_names_other_than_an_rnn_s_weights_refuse_with_exit_2(tmp_path, capsys):
    path = tmp_path / "rnn.toml"
    path.write_text('input = 3\nsteps = 4\nloss = "sse"\n[[layer]]\nkind = "rnn"\nwidth = 2\n')
    assert main(["derive", str(path), "--wrt", "w_{11}^{(1)}"]) == 0  # derived through time
    capsys.readouterr()
    assert main(["derive", str(path), "--wrt", "x_{1,1}"]) == 2
    err = capsys.readouterr().err
    assert "x_{1,1} is not derived step by step in this network" in err
    assert "Derive u_jk^(1), w_jk^(1), or use symprop codegen" in err  # no bias: no b_j
    with pytest.raises(SpecError):
        Spec(input=[2, 3], steps=4, stack=[{"kind": "rnn", "width": 2}], loss="sse")


# ------------------------------------------------------------------ check --layer
def _torch_backward(config):
    """The true BPTT through PyTorch's own nn.RNN (b as b_ih, b_hh = 0)."""
    torch = need("torch")

    def backward(params, A, dOut):
        rnn = torch.nn.RNN(config.n_in, config.units, batch_first=True, bias=config.bias,
                           nonlinearity=config.activation.name).double()
        with torch.no_grad():
            rnn.weight_ih_l0.copy_(torch.tensor(params["W"]))
            rnn.weight_hh_l0.copy_(torch.tensor(params["U"]))
            if config.bias:
                rnn.bias_ih_l0.copy_(torch.tensor(params["b"]))
                rnn.bias_hh_l0.zero_()
        x = torch.tensor(A, requires_grad=True)
        out = rnn(x)[0]
        (out if config.sequence else out[:, -1]).backward(torch.tensor(dOut))
        grads = {"A": x.grad.numpy(), "W": rnn.weight_ih_l0.grad.numpy(),
                 "U": rnn.weight_hh_l0.grad.numpy()}
        return grads | ({"b": rnn.bias_ih_l0.grad.numpy()} if config.bias else {})
    return backward


@pytest.mark.parametrize("case", CASES)
def test_check_layer_calls_torch_s_rnn_backward_right(case):
    spec = rnn_spec(CASES[case])
    for config in spec.stack:
        if config.kind == "rnn":
            result = check_layer(spec, _torch_backward(config), config.index)
            assert result.right, str(result)


def test_check_layer_names_the_classic_bptt_mistakes(tmp_path):
    spec = rnn_spec(((4, "tanh", True, True),))
    fn = f"{EXAMPLES / 'layer_backward.py'}:rnn_backward_overwrite"
    text = str(check_layer(spec, fn, 1))
    assert "the usual mistake: dC/dh_t is assigned, not added" in text

    from symprop.layers.rnn import _bptt

    def no_carry(params, A, dOut):
        class Point:
            pass
        point = Point()
        point.params, point.A, point.dOut = params, A, dOut
        return _bptt("tanh", True, point, carry=False)
    text = str(check_layer(spec, no_carry, 1))
    assert "the usual mistake: the gradient through time is missing" in text


# ------------------------------------------------------------------ import
def test_nn_rnn_models_import_with_their_steps(tmp_path):
    torch = need("torch")
    from symprop import from_torch

    nn = torch.nn

    class Stacked(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn1 = nn.RNN(3, 5, batch_first=True, nonlinearity="relu")
            self.rnn2 = nn.RNN(5, 4, batch_first=True, bias=False)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            out, _ = self.rnn1(x)
            out, _ = self.rnn2(out)
            return self.fc(out[:, -1])

    torch.manual_seed(0)
    model = Stacked().double()
    spec, params = from_torch(model, (6, 3), nn.CrossEntropyLoss())
    assert spec.steps == 6 and spec.input == 3
    assert [(c.kind, getattr(c, "sequence", None)) for c in spec.stack] == [
        ("rnn", True), ("rnn", False), ("dense", None)]
    np.testing.assert_allclose(params["b1"], (model.rnn1.bias_ih_l0 + model.rnn1.bias_hh_l0)
                               .detach().numpy())
    module = generate(spec).load()
    X = np.random.default_rng(0).normal(size=(5, 6, 3))
    Y = np.eye(2)[[0, 1, 1, 0, 1]]
    logits = model(torch.tensor(X))
    torch.nn.functional.cross_entropy(logits, torch.tensor(Y)).backward()
    grads = module.gradients(params, X, Y)
    np.testing.assert_allclose(grads["U1"], model.rnn1.weight_hh_l0.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(grads["W2"], model.rnn2.weight_ih_l0.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize("kind", ["add", "concat"])
@pytest.mark.parametrize("source, input_, what", [
    (0, 'input = 3\nsteps = 2\n', "the input (its 'from') is a sequence of shape [2, 3]"),
    (0, 'input = [1, 2, 3]\n', "the input (its 'from') is a map of shape [1, 2, 3]")])
def test_a_from_layer_that_is_a_sequence_or_a_map_is_refused(tmp_path, capsys, kind, source,
                                                             input_, what):
    """Found by review: add or concat from = 0 read a sequence (or a conv's map) and crashed
    with exit 3 in the generated code; only the layer below was checked."""
    first = '[[layer]]\nkind = "rnn"\nwidth = 6\n' if "steps" in input_ else \
        '[[layer]]\nkind = "flatten"\n'
    path = tmp_path / "from.toml"
    path.write_text(f'{input_}loss = "sse"\n{first}[[layer]]\nkind = "{kind}"\n'
                    f'from = {source}\n')
    assert main(["codegen", str(path), "-o", str(tmp_path / "out.py")]) == 2
    err = capsys.readouterr().err
    assert f"layer 2 ({kind}), key 'from'" in err and what in err, err


def test_a_dense_spec_with_steps_is_refused():
    with pytest.raises(SpecError, match="steps makes the input a sequence for rnn layers"):
        Spec(layers=[3, 4], steps=2, activation="tanh")


@pytest.mark.parametrize("first", [{"kind": "rnn", "width": 3, "sequence": True},
                                   {"kind": "rnn", "width": 3}])
def test_generated_modules_pass_ruff_with_an_rnn_or_batchnorm_first(tmp_path, first):
    """Found by review: dX1 (rnn) and G1 (batchnorm) were assigned and never read when the
    layer is the first one (no gradient is passed to X)."""
    import shutil
    import subprocess
    import sys
    exe = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    specs = [Spec(input=3, steps=4, stack=[first, *([{"kind": "flatten"}] if first.get(
        "sequence") else []), {"kind": "dense", "width": 2}], loss="sse"),
        Spec(input=3, stack=[{"kind": "batchnorm"}, {"kind": "dense", "width": 2}],
             loss="sse")]
    for i, spec in enumerate(specs):
        for target in TARGETS:
            path = tmp_path / f"m{i}_{target}.py"
            generate(spec, target=target).write(path)
            done = subprocess.run([exe, "check", "--isolated", str(path)], check=False,
                                  capture_output=True, text=True)
            assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("name", ["digits_rnn", "batchnorm"])
def test_the_torch_target_works_under_torch_func_and_double_backward(tmp_path, name):
    """Found by review: out= in the rnn's backward broke torch.func.grad, vmap and
    create_graph; the torch target's layers are autograd.Functions that torch.func runs."""
    torch = need("torch")
    spec = Spec.from_toml(EXAMPLES / f"{name}.toml")
    m = generate(spec, target="torch").load(tmp_path / f"{name}_torch.py")
    g = torch.Generator().manual_seed(0)
    X = torch.rand(4, *spec.input_shape, generator=g, dtype=torch.float64)
    Y = torch.softmax(torch.randn(4, spec.layers[-1], generator=g, dtype=torch.float64), 1)
    p = m.init_params(0, torch.float64)
    got, want = torch.func.grad(m.loss)(p, X, Y), m.gradients(p, X, Y)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-12, atol=1e-14)
    leaves = {k: v.clone().requires_grad_() for k, v in p.items()}
    first = torch.autograd.grad(m.loss(leaves, X, Y), list(leaves.values()), create_graph=True)
    assert all(f.requires_grad for f in first)
    if name == "digits_rnn":  # per-sample gradients (a batchnorm needs the whole batch)
        per_sample = torch.func.vmap(lambda x, y: torch.func.grad(m.loss)(
            p, x[None], y[None])["U1"])(X, Y)
        torch.testing.assert_close(per_sample[1], m.gradients(p, X[1:2], Y[1:2])["U1"])
