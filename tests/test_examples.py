"""The examples in examples/ run end to end."""

import importlib.util
from pathlib import Path

from conftest import need

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_sgd_on_bundled_digits_learns(tmp_path, capsys):
    need("sklearn")
    spec = importlib.util.spec_from_file_location("train_digits", EXAMPLES / "train_digits.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    module = tmp_path / "digits_net.py"
    accuracy = example.main(["--epochs", "8", "--module", str(module)])
    out = capsys.readouterr().out
    assert module.is_file() and "import numpy as np" in module.read_text()
    assert "test accuracy" in out
    assert accuracy > 0.9  # 10 classes: chance is 0.1


def test_the_lenet_style_network_trains_on_the_digits_as_images(tmp_path, capsys):
    """examples/lenet.toml (conv2d, relu, maxpool2d, conv2d, flatten, dense softmax): the
    generated NumPy module reads each digit as an image (1, 8, 8) and learns it."""
    need("sklearn")
    example = load("train_digits")
    module = tmp_path / "lenet_net.py"
    accuracy = example.main(["--spec", str(EXAMPLES / "lenet.toml"), "--epochs", "12",
                             "--lr", "0.2", "--module", str(module)])
    out = capsys.readouterr().out
    assert "layers [64, 384, 96, 48, 48, 10], 1210 parameters" in out
    assert "INPUT_SHAPE = (1, 8, 8)" in module.read_text()
    assert accuracy > 0.9


def test_the_rnn_reads_the_digits_row_by_row_and_learns_them(tmp_path, capsys):
    """examples/digits_rnn.toml: 8 time steps of 8 pixels, an rnn of 64 and a dense softmax;
    the generated NumPy module backpropagates through time."""
    need("sklearn")
    example = load("train_digits")
    module = tmp_path / "rnn_net.py"
    accuracy = example.main(["--spec", str(EXAMPLES / "digits_rnn.toml"), "--epochs", "20",
                             "--module", str(module)])
    out = capsys.readouterr().out
    assert "layers [64, 64, 10], 5322 parameters" in out
    assert "INPUT_SHAPE = (8, 8)" in module.read_text()
    assert accuracy > 0.9


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


def test_seed000_derivation_example_writes_every_format(tmp_path, capsys):
    written = load("seed000_derivation").main([str(tmp_path)])
    assert sorted(p.name for p in written) == sorted(
        f"{stem}{ext}" for stem in ("w12_L", "a2_L-1", "w22_L-1")
        for ext in (".tex", ".html", ".md"))
    assert capsys.readouterr().out.strip() == (
        r"\frac{\partial C_{0}}{\partial w_{12}^{(L)}} = 2 \left(a_{1}^{(L)} - y_{1}\right) "
        r"g^{\prime (L)}\left(z_{1}^{(L)}\right) a_{2}^{(L-1)}")


def test_seed001_matrix_form_example(tmp_path):
    out = load("seed001_matrix_form").main([str(tmp_path / "r.md")])
    assert "weights  dC/dW^(L-1) = Delta^(L-1)^T*X   (3 x 2; 6/6 entries checked)" in out
    assert "delta  Delta^(L-1) = dC/dA^(L-1) o sigma'(Z^(L-1))" in out
    assert (tmp_path / "r.md").read_text().count("$$") > 20


def test_the_layer_backward_examples_say_what_readme_says(capsys):
    """examples/layer_backward.py against examples/residual.toml, as README shows it."""
    from symprop.cli import main

    spec, file = str(EXAMPLES / "residual.toml"), str(EXAMPLES / "layer_backward.py")
    for name, layer in (("dense_layer", "1"), ("layernorm", "2")):
        assert main(["check", spec, "--function", f"{file}:{name}", "--layer", layer]) == 0
        assert capsys.readouterr().out.startswith("RIGHT:")
    assert main(["check", spec, "--function", f"{file}:layernorm_sigma_constant",
                 "--layer", "2"]) == 1
    out = capsys.readouterr().out
    assert ("the usual mistake: the variance's dependence on the input is left out: dA misses "
            "- xhat mean(g xhat) / sigma, g = dOut gamma, the mean taken over the nodes") in out
    assert "ok     gamma" in out
    assert main(["check", spec, "--function", f"{file}:layernorm_unbiased", "--layer", "2"]) == 1
    out = capsys.readouterr().out
    assert out.count("the usual mistake: the unbiased variance (divided by n - 1) where the "
                     "biased one (divided by n) belongs") == 2
