"""One Jinja2 environment factory for every template symprop renders.

Templates live in the top-level ``templates/`` folder of the source tree and ship inside the
wheel as ``symprop/templates`` (pyproject's force-include).  LaTeX templates use
LaTeX-safe delimiters (``((* *))``, ``((( )))``, ``((= =))``) so they do not fight TeX braces.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

__all__ = ["FILTERS", "environment", "render", "templates_dir"]

_LATEX_DELIMITERS = {"block_start_string": "((*", "block_end_string": "*))",
                         "variable_start_string": "(((", "variable_end_string": ")))",
                         "comment_start_string": "((=", "comment_end_string": "=))"}


def _python_text(value: object) -> str:
    """Text safe inside a generated docstring: escapes and quotes are escaped, lines kept."""
    lines = str(value).split("\n")
    return "\n".join(line.encode("unicode_escape").decode("ascii").replace('"', '\\"')
                     for line in lines)


#: Filters every template may use: ``pyrepr`` for Python literals, ``pytext`` for text inside
#: generated docstrings (user text cannot close the string).  Comments take single-line text
#: only (spec names are printable, so they cannot end a comment line).
FILTERS = {"pyrepr": repr, "pytext": _python_text}


def templates_dir() -> Path:
    """``symprop/templates`` in an installed wheel, else the source tree's ``templates/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("symprop's templates folder is missing from this installation")


@functools.cache
def environment(latex: bool = False) -> jinja2.Environment:
    """The environment for text-like templates, or for LaTeX ones with safe delimiters."""
    options = _LATEX_DELIMITERS if latex else {}
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        **options,
    )
    env.filters.update(FILTERS)
    return env


def render(name: str, **context) -> str:
    """Render ``templates/name`` (LaTeX delimiters for ``.tex`` templates)."""
    latex = ".tex" in name
    return environment(latex).get_template(name).render(**context)
