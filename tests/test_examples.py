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
