"""symprop import: PyTorch models as specs. nn.Sequential of every kind that exists (Linear with
each activation, LayerNorm, RMSNorm, Softmax) and a class with a chained forward, under
CrossEntropyLoss, MSELoss and BCEWithLogitsLoss: the generated module's forward, loss and
gradients equal the model's output, torch's loss and autograd (float64, rtol 1e-10).
Refusals name the module's path and why, and write nothing."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import need

from symprop import Spec
from symprop.codegen import generate
from symprop.codegen.module import load_module

RTOL = 1e-10
ACTIVATIONS = ["ReLU", "Tanh", "Sigmoid", "Softplus", "ELU", "SiLU", "LeakyReLU"]


def _models(torch):
    nn = torch.nn
    torch.manual_seed(0)
    models = {f"linear+{a}": nn.Sequential(nn.Linear(3, 4), getattr(nn, a)(), nn.Linear(4, 2))
              for a in ACTIVATIONS}
    models["leaky 0.2, no bias"] = nn.Sequential(nn.Linear(3, 4, bias=False),
                                                 nn.LeakyReLU(0.2), nn.Linear(4, 2))
    models["norms and a softmax inside"] = nn.Sequential(
        nn.Linear(3, 5), nn.Tanh(), nn.LayerNorm(5), nn.Linear(5, 4), nn.Softmax(dim=-1),
        nn.RMSNorm(4, eps=1e-6), nn.Sequential(nn.Linear(4, 2)))

    class Chain(nn.Module):  # read with torch.fx
        def __init__(self):
            super().__init__()
            self.fc1, self.norm, self.fc2 = nn.Linear(3, 5), nn.LayerNorm(5), nn.Linear(5, 2)

        def forward(self, x):
            return self.fc2(torch.relu(self.norm(torch.tanh(self.fc1(x)))))

    models["class with a chained forward"] = Chain()
    return models


def _targets(torch, loss: str, n: int, m: int):
    g = torch.Generator().manual_seed(1)
    if loss == "CrossEntropyLoss":
        return torch.softmax(torch.randn(n, m, generator=g, dtype=torch.float64), dim=1)
    if loss == "BCEWithLogitsLoss":
        return torch.rand(n, m, generator=g, dtype=torch.float64)
    return torch.randn(n, m, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("loss", ["CrossEntropyLoss", "MSELoss", "BCEWithLogitsLoss"])
def test_imported_models_equal_torch_forward_loss_and_autograd(tmp_path, loss):
    torch = need("torch")
    from symprop import from_torch

    for name, model in _models(torch).items():
        model = model.double()
        if loss == "BCEWithLogitsLoss":  # torch's mean runs over the outputs too: one output
            model = torch.nn.Sequential(model, torch.nn.Linear(2, 1)).double()
        spec, params = from_torch(model, 3, loss)
        module = generate(spec).load(tmp_path / "net.py")
        X = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        Y = _targets(torch, loss, 6, spec.layers[-1])
        out = model(X)
        C = getattr(torch.nn, loss)()(out, Y)
        C.backward()
        probabilities = {"CrossEntropyLoss": torch.softmax(out, 1),
                         "BCEWithLogitsLoss": torch.sigmoid(out)}.get(loss, out)
        np.testing.assert_allclose(module.forward(params, X.numpy()),
                                   probabilities.detach().numpy(), rtol=RTOL, err_msg=name)
        value, grads = module.loss_and_gradients(params, X.numpy(), Y.numpy())
        np.testing.assert_allclose(value, C.item(), rtol=RTOL, err_msg=name)
        for p in model.parameters():  # each torch parameter is the imported array of its value
            key = next(k for k, v in params.items() if v.shape == tuple(p.shape)
                       and np.array_equal(v, p.detach().numpy()))
            np.testing.assert_allclose(grads[key], p.grad.numpy(), rtol=RTOL, atol=1e-14,
                                       err_msg=f"{name}: {key}")


def test_the_spec_reads_as_the_user_wrote_the_model():
    torch = need("torch")
    from symprop import from_torch

    spec, params = from_torch(_models(torch)["norms and a softmax inside"], 3,
                              "CrossEntropyLoss")
    assert [c.to_table() for c in spec.stack] == [
        {"kind": "dense", "width": 5, "activation": "tanh", "bias": True},
        {"kind": "layernorm", "eps": 1e-05, "affine": True},
        {"kind": "dense", "width": 4, "activation": "identity", "bias": True},
        {"kind": "activation", "activation": "softmax"},
        {"kind": "rmsnorm", "eps": 1e-06},
        {"kind": "dense", "width": 2, "activation": "softmax", "bias": True}]
    assert (spec.loss, spec.reduction) == ("cross_entropy", "mean")
    assert sorted(params) == ["W1", "W3", "W6", "b1", "b3", "b6", "beta2", "gamma2", "gamma5"]


MODEL_FILE = """
import torch
from torch import nn

torch.manual_seed(0)
net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))

def make():
    return nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 3))

conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2, 2))
lenet = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(18, 3))
plus = nn.Sequential(nn.Linear(3, 3), nn.Softplus(beta=2.0))
ln = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3, bias=False))
rms = nn.Sequential(nn.Linear(3, 3), nn.RMSNorm(3))
wide = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm((2, 2)))
drop = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.1), nn.Linear(3, 2))

class Skip(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        return x + self.fc(x)

skip = Skip()
"""


def _import(tmp_path, *args):
    (tmp_path / "model.py").write_text(MODEL_FILE)
    return subprocess.run([sys.executable, "-m", "symprop", "import", *args], cwd=tmp_path,
                          capture_output=True, text=True, check=False)


def test_the_command_writes_a_spec_and_weights_the_other_commands_use(tmp_path):
    torch = need("torch")
    proc = _import(tmp_path, "model.py:net", "--input", "3", "--loss", "MSELoss", "-o",
                   "net.toml", "--weights", "net.npz")
    assert proc.returncode == 0, proc.stderr
    assert "wrote net.toml and net.npz" in proc.stderr
    derived = subprocess.run([sys.executable, "-m", "symprop", "derive", "net.toml", "--wrt",
                              "w_00^(1)", "--prove"], cwd=tmp_path, capture_output=True,
                             text=True, check=False)
    assert derived.returncode == 0 and "Proof: PROVEN" in derived.stdout
    from symprop import Spec

    spec = Spec.from_toml(tmp_path / "net.toml")
    assert (spec.loss, spec.reduction, list(spec.layers)) == ("mse", "mean", [3, 4, 2])
    module = generate(spec).load(tmp_path / "gen.py")
    params = dict(np.load(tmp_path / "net.npz"))
    again = load_module(tmp_path / "model.py")  # the same seed: the same weights
    X = torch.randn(4, 3, dtype=torch.float64)
    np.testing.assert_allclose(module.forward(params, X.numpy()),
                               again.net.double()(X).detach().numpy(), rtol=RTOL)


@pytest.mark.parametrize("args, message", [
    (("model.py:net", "--loss", "L1Loss"), ("L1Loss is not supported: |a - y| has no "
                                           "derivative where a = y")),
    (("model.py:net", "--loss", "HuberLoss"), ("unknown torch loss 'HuberLoss'. Use one of "
                                              "CrossEntropyLoss, MSELoss, BCEWithLogitsLoss")),
    (("model.py:conv", "--loss", "MSELoss"), ("layer 1 (conv2d): a conv2d layer reads a map "
                                              "[channels, height, width], but the input has "
                                              "shape [3]")),
    (("model.py:plus", "--loss", "MSELoss"), ("1 (Softplus): beta=2.0, threshold=20.0 is not "
                                             "symprop's softplus")),
    (("model.py:ln", "--loss", "MSELoss"), "1 (LayerNorm): bias=False keeps gamma without beta"),
    (("model.py:rms", "--loss", "MSELoss"), ("1 (RMSNorm): eps=None takes the input dtype's "
                                            "machine epsilon")),
    (("model.py:wide", "--loss", "MSELoss"), ("1 (LayerNorm): normalized_shape=(2, 2) spans "
                                             "several axes")),
    (("model.py:drop", "--loss", "MSELoss"), "1 (Dropout) has no symprop layer kind"),
    (("model.py:skip", "--loss", "MSELoss"), ("add in Skip.forward reads x, fc: not a straight "
                                             "chain")),
    (("model.py:missing", "--loss", "MSELoss"), "model.py has no model 'missing'"),
])
def test_what_cannot_be_expressed_is_exit_2_naming_the_module(tmp_path, args, message):
    need("torch")
    proc = _import(tmp_path, args[0], "--input", "3", *args[1:], "-o", "net.toml",
                   "--weights", "net.npz")
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "net.toml").exists() and not (tmp_path / "net.npz").exists()


def test_a_conv_model_imports_with_its_input_shape_and_derives(tmp_path):
    """--input 1,6,6: Conv2d (its ReLU folded in), MaxPool2d, Flatten, Linear become conv2d,
    maxpool2d, flatten, dense; the spec's forward equals the model's, and derive gives
    PyTorch's gradient at the imported weights."""
    torch = need("torch")
    proc = _import(tmp_path, "model.py:lenet", "--input", "1,6,6", "--loss", "CrossEntropyLoss",
                   "-o", "net.toml", "--weights", "net.npz")
    assert proc.returncode == 0, proc.stderr
    spec = Spec.from_toml(tmp_path / "net.toml")
    assert spec.input_shape == (1, 6, 6)
    assert [c.describe() for c in spec.stack] == [
        "conv2d, 2 channels, kernel 3, padding 1, relu, bias", "maxpool2d 2", "flatten",
        "dense, softmax, bias"]
    params = dict(np.load(tmp_path / "net.npz"))
    model = load_module(tmp_path / "model.py").lenet.double()
    X = torch.randn(1, 1, 6, 6, dtype=torch.float64)
    loss = torch.nn.functional.cross_entropy(model(X), torch.tensor([2]))
    loss.backward()
    from symprop import backprop
    from symprop.notation import Node
    from symprop.numeric import Evaluator
    from symprop.proof import definitions_of

    engine = backprop(spec)
    graph = engine.graph
    values = dict(zip(graph.x, X.numpy().reshape(-1))) | dict(zip(graph.y, [0.0, 0.0, 1.0]))
    for l, p in spec.parameters():
        for index in np.ndindex(*p.shape):
            values[Node(p.kind, l, *index).symbol] = float(params[f"{p.key}{l}"][index])
    got = Evaluator(values, resolve=definitions_of(engine))(
        engine.gradient(Node("w", 1, 1, 0, 2, 1)))
    assert got == pytest.approx(float(model[0].weight.grad[1, 0, 2, 1]), rel=1e-10)


def test_without_pytorch_import_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    from symprop.cli import main

    (tmp_path / "m.py").write_text("x = 1\n")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    code = main(["import", str(tmp_path / "m.py") + ":x", "--input", "3", "--loss", "MSELoss",
                 "-o", str(tmp_path / "n.toml")])
    assert code == 2
    assert ("symprop import needs PyTorch, which is not installed. Install it first: pip "
            "install torch==2.13.0") in capsys.readouterr().err
    assert not (tmp_path / "n.toml").exists()
