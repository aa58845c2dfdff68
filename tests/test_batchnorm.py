"""batchnorm: the compact backward proven by SymPy for a symbolic batch; the generated code of
every target against PyTorch's autograd through nn.BatchNorm1d/2d in training mode and JAX
(rtol 1e-10, float64), after a dense layer and after a conv, affine on and off; random layer
lists with a batchnorm; ``check --layer`` on right and wrong backwards; torch import; the
commands that do not handle it yet refuse with exit 2; an elementwise activation on a map."""

import numpy as np
import pytest
import sympy
from conftest import assert_near_autodiff, need
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_codegen_frameworks import TARGETS
from test_codegen_frameworks import _verified as verified

from symprop import Spec, check_layer
from symprop.cli import main
from symprop.codegen import generate
from symprop.derivation import backprop, prove_all
from symprop.errors import SpecError
from symprop.layers.batchnorm import compact_identity, general_identity, letter_forms
from symprop.layers.letters import slot
from symprop.layers.mistakes import norm_backward

DENSE = Spec(input=3, name="bn_dense", loss="cross_entropy", stack=[
    {"kind": "dense", "width": 4, "activation": "identity"},
    {"kind": "batchnorm"},
    {"kind": "activation", "activation": "tanh"},
    {"kind": "dense", "width": 3, "activation": "softmax", "bias": True}])


def conv_spec(affine=True, eps=1e-5):
    return Spec(input=[2, 5, 5], name="bn_conv", loss="sse", stack=[
        {"kind": "conv2d", "channels": 3, "kernel": 2, "bias": True},
        {"kind": "batchnorm", "affine": affine, "eps": eps},
        {"kind": "activation", "activation": "relu"},
        {"kind": "maxpool2d", "kernel": 2},
        {"kind": "flatten"},
        {"kind": "dense", "width": 2, "activation": "sigmoid"}])


def dense_spec(affine=True, eps=1e-5):
    return Spec.from_dict({**DENSE.to_dict(), "layer": [
        DENSE.stack[0].to_table(), {"kind": "batchnorm", "affine": affine, "eps": eps},
        *[c.to_table() for c in DENSE.stack[2:]]]})


@pytest.mark.parametrize("n", [2, 3])
def test_the_compact_backward_is_sympy_s_diff_of_a_symbolic_batch(n):
    differences = compact_identity(n)
    assert len(differences) == n
    assert [sympy.simplify(sympy.together(d)) for d in differences] == [0] * n


@pytest.mark.parametrize("affine", [True, False])
def test_sympy_derives_the_compact_backward_for_every_batch_size(affine):
    """In letters over the samples (n symbolic), SymPy's vector-Jacobian product of one
    node's batchnorm is the array code's compact form, and dgamma's summand is G xhat."""
    assert general_identity(affine) == 0
    forms = letter_forms(affine)
    if affine:
        assert forms.param_gradients == {"gamma": slot("grad", letters="j")
                                         * slot("named", "xhat", "j"),
                                         "beta": slot("grad", letters="j")}


def test_the_identity_check_fails_for_the_per_sample_backward():
    """The check can fail: mu and sigma taken as constants (g_m / sigma) is not the VJP."""
    wrong = slot("param", "gamma") * slot("grad", letters="m") / slot("named", "sigma")
    assert sympy.expand(letter_forms().vjp["in"] - wrong) != 0


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("after", ["dense", "conv2d"])
def test_every_target_matches_autodiff_after_dense_and_conv(after, affine, target):
    spec = dense_spec(affine) if after == "dense" else conv_spec(affine)
    report = verified(spec, target)
    assert_near_autodiff(report, 1e-10)


def test_the_numpy_module_is_torch_s_own_batchnorm_in_training_mode():
    """Forward and gradients against nn.BatchNorm2d in train() inside an nn.Sequential, the
    weights copied in: the truth is torch's module, not symprop's reference forward."""
    torch = need("torch")
    nn = torch.nn
    spec = conv_spec()
    module = generate(spec).load()
    params = module.init_params(seed=3)
    params["gamma2"] = np.array([0.5, 1.5, -2.0])
    params["beta2"] = np.array([0.1, -0.2, 0.3])
    model = nn.Sequential(nn.Conv2d(2, 3, 2), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(12, 2), nn.Sigmoid()).double().train()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(params["W1"]))
        model[0].bias.copy_(torch.tensor(params["b1"]))
        model[1].weight.copy_(torch.tensor(params["gamma2"]))
        model[1].bias.copy_(torch.tensor(params["beta2"]))
        model[5].weight.copy_(torch.tensor(params["W6"]))
        model[5].bias.zero_()
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 2, 5, 5)), rng.uniform(size=(6, 2))
    out = model(torch.tensor(X))
    loss = ((out - torch.tensor(Y)) ** 2).sum(1).mean()
    loss.backward()
    np.testing.assert_allclose(module.forward(params, X), out.detach().numpy(), rtol=1e-12)
    grads = module.gradients(params, X, Y)
    for key, p in [("W1", model[0].weight), ("b1", model[0].bias), ("gamma2", model[1].weight),
                   ("beta2", model[1].bias), ("W6", model[5].weight)]:
        np.testing.assert_allclose(grads[key], p.grad.numpy(), rtol=1e-10, atol=1e-14)


@st.composite
def stacks_with_a_batchnorm(draw):
    """A random network with a batchnorm: flat (dense layers around it) or after a conv1d,
    an activation and affine drawn, the loss drawn."""
    activation = draw(st.sampled_from(["tanh", "sigmoid", "relu", "identity", "softplus"]))
    bn = {"kind": "batchnorm", "affine": draw(st.booleans()),
          "eps": draw(st.sampled_from([1e-5, 1e-3, 0.1]))}
    if draw(st.booleans()):
        width = draw(st.integers(2, 4))
        stack = [{"kind": "dense", "width": width, "activation": activation,
                  "bias": draw(st.booleans())}, bn]
        stack += [{"kind": "activation", "activation": "tanh"}] if draw(st.booleans()) else []
        if draw(st.booleans()):
            stack += [{"kind": "dense", "width": width}, dict(bn)]
        return Spec(input=draw(st.integers(1, 3)), stack=stack + [
            {"kind": "dense", "width": 2, "activation": "sigmoid"}], loss="sse", name="g")
    stack = [{"kind": "conv1d", "channels": draw(st.integers(1, 3)), "kernel": 2,
              "activation": activation}, bn,
             {"kind": "activation", "activation": "tanh"}, {"kind": "flatten"},
             {"kind": "dense", "width": 2, "activation": "softmax"}]
    return Spec(input=[draw(st.integers(1, 2)), draw(st.integers(3, 5))], stack=stack,
                loss="cross_entropy", name="g")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=stacks_with_a_batchnorm(), target=st.sampled_from(TARGETS),
       batch=st.integers(2, 6), seed=st.integers(0, 50))
def test_random_networks_with_a_batchnorm_match_autodiff(spec, target, batch, seed):
    need("torch")
    need("jax")
    from symprop.verify import verify

    report = verify(spec, target=target, against=("torch", "jax"), batch=batch, seed=seed)
    assert report.passed, str(report)
    assert_near_autodiff(report, 1e-9)


# ------------------------------------------------------------------ check --layer
def _backward(**mistake):
    """A batchnorm backward as course notes write it, over the batch (and positions)."""
    def backward(params, A, dOut):
        axes = 0 if A.ndim == 2 else (0, *range(2, A.ndim))
        got = norm_backward(A, dOut, params.get("gamma", 1.0), 1e-5, axes, **mistake)
        sums = 0 if A.ndim == 2 else axes
        return got | ({"beta": dOut.sum(sums)} if "gamma" in params else {}) \
            if "gamma" in params else {"A": got["A"]}
    return backward


@pytest.mark.parametrize("spec, l", [(DENSE, 2), (conv_spec(), 2)], ids=["dense", "conv"])
def test_check_layer_calls_a_right_batchnorm_backward_right(spec, l):
    result = check_layer(spec, _backward(), l)
    assert result.right, str(result)


@pytest.mark.parametrize("mistake, words", [
    ({"mean": False, "variance": False}, "mu and sigma are treated as constants"),
    ({"variance": False}, "the variance's dependence on the input is left out"),
    ({"mean": False}, "the mean's dependence on the input is left out"),
    ({"ddof": 1}, "the unbiased variance (divided by n - 1)")])
@pytest.mark.parametrize("spec, l", [(DENSE, 2), (conv_spec(), 2)], ids=["dense", "conv"])
def test_check_layer_names_each_usual_batchnorm_mistake(spec, l, mistake, words):
    result = check_layer(spec, _backward(**mistake), l)
    assert not result.right
    text = str(result)
    assert f"the usual mistake: {words}" in text, text
    assert "over the batch" in text or "ddof" in mistake


def test_dgamma_without_xhat_is_named(tmp_path):
    def backward(params, A, dOut):
        right = _backward()(params, A, dOut)
        return right | {"gamma": dOut.sum(0)}
    text = str(check_layer(DENSE, backward, 2))
    assert "the usual mistake: dgamma without xhat" in text


def test_the_example_s_batchnorm_functions(capsys):
    from pathlib import Path

    examples = Path(__file__).resolve().parent.parent / "examples"
    spec, fns = str(examples / "batchnorm.toml"), str(examples / "layer_backward.py")
    assert main(["check", spec, "--function", f"{fns}:batchnorm", "--layer", "2"]) == 0
    assert main(["check", spec, "--function", f"{fns}:batchnorm_per_sample", "--layer",
                 "2"]) == 1
    assert "mu and sigma are treated as constants" in capsys.readouterr().out
    assert main(["check", spec, "--function", f"{fns}:batchnorm_no_mean", "--layer", "2"]) == 1
    assert "the mean's dependence on the input is left out" in capsys.readouterr().out


# ------------------------------------------------------------------ import
def test_batchnorm1d_and_2d_import_in_training_mode():
    torch = need("torch")
    from symprop import from_torch

    nn = torch.nn
    torch.manual_seed(0)
    dense = nn.Sequential(nn.Linear(4, 5, bias=False), nn.BatchNorm1d(5), nn.ReLU(),
                          nn.Linear(5, 3))
    conv = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2, affine=False),
                         nn.ReLU(), nn.Flatten(), nn.Linear(32, 2))
    for model, shape in [(dense, 4), ((conv), (1, 4, 4))]:
        with torch.no_grad():  # not the defaults 1 and 0, so a mix-up would show
            for m in model.modules():
                if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:
                    m.weight.uniform_(0.5, 2)
                    m.bias.uniform_(-1, 1)
        spec, params = from_torch(model, shape, nn.CrossEntropyLoss())
        kinds = [c.kind for c in spec.stack]
        assert "batchnorm" in kinds and kinds[kinds.index("batchnorm") + 1] == "activation"
        module = generate(spec).load()
        X = np.random.default_rng(1).normal(size=(5, *np.atleast_1d(shape)))
        want = torch.softmax(model.double().train()(torch.tensor(X)), -1)
        np.testing.assert_allclose(module.forward(params, X), want.detach().numpy(),
                                   rtol=1e-10)


# ------------------------------------------------------------------ not yet
@pytest.mark.parametrize("args", [["codegen", "SPEC", "-o", "OUT.py", "--style", "scalar"]])
def test_the_derivations_over_a_batch_refuse_with_exit_2(tmp_path, capsys, args):
    spec_file = tmp_path / "bn.toml"
    spec_file.write_text("input = 3\nloss = \"sse\"\n[[layer]]\nkind = \"dense\"\nwidth = 2\n"
                         "[[layer]]\nkind = \"batchnorm\"\n")
    args = [a.replace("SPEC", str(spec_file)).replace("OUT", str(tmp_path / "out"))
            for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "layer 2 (batchnorm)" in err and "does not handle batchnorm layers yet" in err
    assert "symprop codegen SPEC -o FILE.py" in err
    assert not list(tmp_path.glob("out*"))
    with pytest.raises(SpecError, match="does not handle batchnorm"):
        backprop(DENSE).derive("w_{11}^{(1)}")


def test_a_batchnorm_keeps_its_input_s_shape_and_its_parameters_are_per_channel():
    spec = conv_spec()
    assert spec.shapes[2] == spec.shapes[1] == (3, 4, 4)
    assert {f"{p.key}{l}": p.shape for l, p in spec.parameters()}["gamma2"] == (3,)
    assert {f"{p.key}{l}": p.shape for l, p in dense_spec().parameters()}["beta2"] == (4,)
    assert [f"{p.key}{l}" for l, p in conv_spec(affine=False).parameters()] == ["W1", "b1",
                                                                                "W6"]


# ------------------------------------------------------------------ activations on a map
def test_an_elementwise_activation_reads_a_map_and_is_proven():
    spec = Spec(input=[1, 4, 4], name="map_act", loss="sse", stack=[
        {"kind": "conv2d", "channels": 2, "kernel": 2, "bias": True},
        {"kind": "activation", "activation": "tanh"},
        {"kind": "maxpool2d", "kernel": 2, "stride": 1},
        {"kind": "flatten"}, {"kind": "dense", "width": 2, "activation": "sigmoid"}])
    assert spec.shapes[2] == (2, 3, 3)
    report = prove_all(spec, "numeric")
    assert report.passed, str(report)
    text = str(backprop(spec).derive("a_{0,1,1}^{(1)}"))
    assert "dC_0/da_0,1,1^(L-4) = (dC_0/da_0,1,1^(L-3))*tanh'(a_0,1,1^(L-4))" in text, text
    assert "da_4^(L-3)" not in text  # the map's node under its own indices, not a flat one


def test_a_softmax_on_a_map_is_refused_naming_the_layer():
    with pytest.raises(SpecError, match="a softmax runs over a flat layer's nodes, but layer 1 "
                                        r"is a map of shape \[2, 3, 3\]"):
        Spec(input=[1, 4, 4], loss="sse", stack=[
            {"kind": "conv2d", "channels": 2, "kernel": 2},
            {"kind": "activation", "activation": "softmax"}, {"kind": "flatten"}])
