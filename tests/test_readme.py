"""README's layer examples are real: its residual spec is examples/residual.toml, and each
row of its table of kinds parses, derives and generates a module that agrees with finite
differences."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from symprop import Spec, backprop
from symprop.derivation import prove_all
from symprop.verify import verify

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README[README.index("### Layers of any kind"):README.index("### Adding a layer kind")]
ROWS = re.findall(r"^\| (\w+) \| `(\{.*?\})` \|", SECTION, flags=re.MULTILINE)


def test_the_table_has_one_example_per_kind():
    from symprop.layers import KINDS

    assert [kind for kind, _ in ROWS] == list(KINDS)


def test_the_residual_spec_is_the_example_file():
    block = re.search(r"```toml\n(.*?)```", SECTION, flags=re.DOTALL)[1]
    assert Spec.from_toml_string(block) == Spec.from_toml(ROOT / "examples" / "residual.toml")


@pytest.mark.parametrize("kind, example", ROWS, ids=[k for k, _ in ROWS])
def test_each_example_table_works(kind, example):
    from symprop.layers import KINDS

    table = tomllib.loads(f"layer = {example}")["layer"]
    assert table["kind"] == kind
    if getattr(KINDS[kind], "READS_SEQUENCE", False):  # rnn: a sequence of 4 steps
        spec = Spec(input=3, steps=4, stack=[table, {"kind": "dense", "width": 2}],
                    loss="sse", name=kind)
    elif KINDS[kind].READS_FLAT:
        stack = [{"kind": "dense", "width": 4, "activation": "tanh", "bias": True},
                 {"kind": "dense", "width": 4, "activation": "sigmoid"}, table,
                 {"kind": "dense", "width": 2}]
        spec = Spec(input=3, stack=stack, loss="sse", name=kind)
    else:  # a kind that reads a map: on an input of channels and positions, then flat
        stack = [table, *([] if kind == "flatten" else [{"kind": "flatten"}]),
                 {"kind": "dense", "width": 2}]
        spec = Spec(input=[2, 5] if kind.endswith("1d") else [1, 4, 4], stack=stack,
                    loss="sse", name=kind)
    if "derive" not in KINDS[kind].SUPPORTS:  # a batch-coupled kind: its module, verified
        report = verify(spec, against=("fd",))
        assert report.passed, str(report)
        return
    engine = backprop(spec)
    assert len(engine.gradients()) == spec.n_parameters
    if "codegen" not in KINDS[kind].SUPPORTS:  # derived and proven, no module yet
        report = prove_all(engine, "numeric")
        assert report.passed, str(report)
        return
    report = verify(spec, against=("fd",))
    assert report.passed, str(report)
