"""What users read: error messages, --help and README send no one to a file they do not
have (design.md), say what the program does today, and README's code blocks are whole."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from symprop.cli import _parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _help_texts() -> dict[str, str]:
    """``symprop --help`` and every subcommand's, as argparse formats them."""
    parser = _parser()
    texts = {"symprop": parser.format_help()}
    for action in parser._subparsers._group_actions:
        for name, sub in action.choices.items():
            texts[name] = sub.format_help()
    return texts


def _message_strings(path: Path) -> list[tuple[int, str]]:
    """The string literals of a module that are not docstrings: messages, hints, help."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def test_no_user_facing_text_mentions_design_md():
    found = []
    for name, text in _help_texts().items():
        if "design.md" in text:
            found.append(f"symprop {name} --help")
    for path in sorted((ROOT / "symprop").rglob("*.py")):
        found += [f"{path.relative_to(ROOT)}:{line}" for line, s in _message_strings(path)
                  if "design.md" in s]
    for folder in ("templates", "examples"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "design.md" in path.read_text(encoding="utf-8",
                                                                 errors="replace"):
                found.append(str(path.relative_to(ROOT)))
    if "design.md" in README:
        found.append("README.md")
    assert not found, f"these send users to design.md, which they do not have: {found}"


def test_a_spec_that_is_not_toml_points_to_readme():
    from symprop.errors import SpecError
    from symprop.spec import Spec

    with pytest.raises(SpecError) as caught:
        Spec.from_toml_string("layers = [3")
    assert "README" in str(caught.value) and "The spec" in str(caught.value)
    assert '## The spec' in README


def test_codegen_help_says_every_target_prints_every_kind():
    text = " ".join(_help_texts()["codegen"].split())
    assert "dense layers for now" not in text
    assert "every target prints every layer kind" in text


def test_readme_code_fences_are_balanced():
    """Every fence opens on a line of its own (with a language) and closes on a bare one."""
    fences = [(n, line) for n, line in enumerate(README.splitlines(), 1)
              if line.lstrip().startswith("```")]
    assert len(fences) % 2 == 0, fences
    for (n_open, opening), (n_close, closing) in zip(fences[::2], fences[1::2]):
        assert re.fullmatch(r"```[a-z]+", opening), (n_open, opening)
        assert closing == "```", (n_close, closing)


def test_readme_names_and_shows_the_tutorial_notation_near_the_top():
    top = README[:README.index("## Use")]
    assert "## The notation: seed 000 and seed 001" in top
    assert '"Backpropagation Explained"' in top and "*seed 000*" in top
    for symbol in ("w_jk^(l)", "a_j^(l)", "z_j^(l)", "C_0", "L-1", "delta_j^(l)"):
        assert symbol in top, symbol
    # the first mention of "seed 000" comes with its explanation
    assert README.index("seed 000") >= README.index("## The notation")
