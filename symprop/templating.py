"""One Jinja2 environment factory for every template symprop renders.

Templates live in the top-level ``templates/`` folder of the source tree and ship inside the
wheel as ``symprop/templates`` (pyproject's force-include).  LaTeX templates use
LaTeX-safe delimiters (``((* *))``, ``((( )))``, ``((= =))``) so they do not fight TeX braces.
"""

from __future__ import annotations

import functools
import re
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


#: TeX's special characters in prose (spec names, loss names): each prints as itself, and
#: no user text can start a TeX command (\\input, \\write18) or open a group.
_TEX_SPECIALS = {"\\": r"$\backslash$", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&",
                 "#": r"\#", "^": r"\^{}", "_": r"\_", "%": r"\%", "~": r"\~{}",
                 "<": "$<$", ">": "$>$", "|": r"$\vert$"}
_TEX_ESCAPE = str.maketrans(_TEX_SPECIALS)
_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
#: Markdown's inline syntax characters, escaped with a backslash; < > as HTML entities.
_MD_ESCAPE = str.maketrans({**{c: "\\" + c for c in "\\`*_{}[]()#+!|$~"},
                            "<": "&lt;", ">": "&gt;"})


def _tex(value: object) -> str:
    return str(value).translate(_TEX_ESCAPE)


def _md(value: object) -> str:
    return str(value).translate(_MD_ESCAPE)


def _mathml(value: object, display: str = "inline") -> str:
    """LaTeX math -> MathML with latex2mathml (renders with no script and no network)."""
    from latex2mathml.converter import convert

    return convert(str(value), display=display)


def _tex_display(value: object) -> str:
    """A LaTeX display equation, broken over the lines of an align* where it is wider than
    the page (:mod:`symprop.printing.breaking`)."""
    from .printing.breaking import tex_display

    return tex_display(str(value))


#: Filters every template may use: ``pyrepr`` for Python literals, ``pytext`` for text inside
#: generated docstrings (user text cannot close the string).  Comments take single-line text
#: only (spec names are printable, so they cannot end a comment line).  ``tex_display``
#: sets LaTeX display math, broken over lines where it is wider than the page.
FILTERS = {"pyrepr": repr, "pytext": _python_text, "tex": _tex, "md": _md, "mathml": _mathml,
           "mathml_block": lambda value: _mathml(value, "block"),
           "tex_display": _tex_display}


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
    """Render ``templates/name`` (LaTeX-safe delimiters for ``.tex`` and ``documents/``).

    Documents are laid out by many small macros; runs of blank lines they leave between
    blocks are folded into one (a blank line is all TeX, Markdown and HTML need).
    """
    latex = ".tex" in name or name.startswith("documents/")
    text = environment(latex).get_template(name).render(**context)
    return _BLANK_RUNS.sub("\n\n", text) if name.startswith("documents/") else text
