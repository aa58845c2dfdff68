r"""LaTeX display math read as TeX sets it, to estimate how wide it is on a page.

The source is split into tokens and read into atoms (:class:`Atom`): a symbol with its
scripts, a braced group, a fraction, a ``\left ... \right`` group, a binary operator, a
relation or a space.  Each atom's width is estimated from Computer Modern's glyph widths (in em
of the document's font), a little on the generous side, so a line that is kept fits.
:mod:`.breaking` lays a long display out over lines from these atoms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["BINARY", "RELATION", "SCRIPT", "Atom", "atoms_width", "estimate_width", "glyph_width",
           "parse_atoms"]

_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|\s+|.", re.DOTALL)

#: Widths in em (Computer Modern, math italic for letters), from the fonts' metrics, rounded.
_LOWER = dict(zip("abcdefghijklmnopqrstuvwxyz",
                  (.53, .43, .43, .52, .47, .49, .48, .58, .35, .41, .52, .30, .88, .60, .49,
                   .50, .45, .45, .47, .36, .57, .49, .72, .57, .49, .47)))
_CHARS = {**_LOWER, "(": .39, ")": .39, "[": .28, "]": .28, "|": .28, "/": .5, ".": .28,
          "'": .3, ";": .28, ":": .28, "!": .28, "?": .47, "*": .5, "<": 1.33, ">": 1.33}
_COMMANDS = {
    r"\delta": .45, r"\gamma": .52, r"\beta": .57, r"\mu": .6, r"\sigma": .57, r"\alpha": .64,
    r"\partial": .57, r"\Delta": .83, r"\top": .78, r"\prime": .3, r"\epsilon": .41,
    r"\eta": .5, r"\lambda": .58, r"\pi": .57, r"\tau": .44, r"\theta": .47, r"\phi": .6,
    r"\log": 1.47, r"\exp": 1.6, r"\tanh": 1.95, r"\sinh": 1.85, r"\cosh": 1.85, r"\max": 1.95,
    r"\min": 1.75, r"\cdots": 1.5, r"\ldots": 1.5, r"\dots": 1.5, r"\vdots": .3,
    r"\infty": 1.0, r"\mathsf": 0, r"\quad": 1.0, r"\qquad": 2.0, r"\,": .17, r"\;": .28,
    r"\:": .22, r"\!": -.17, r"\ ": .33, r"\{": .5, r"\}": .5, r"\|": .5, r"\backslash": .5,
    r"\left.": .11, r"\right.": .11, r"\nabla": .83, r"\sum": 1.44, r"\prod": 1.28,
}
BINARY = {"+": 1.22, "-": 1.22, r"\cdot": .72, r"\odot": 1.22, r"\times": 1.22,
          r"\circ": .94, r"\pm": 1.22}
RELATION = {"=": 1.33, r"\approx": 1.33, r"\leq": 1.33, r"\geq": 1.33, r"\neq": 1.33}
#: Commands whose one argument is set as it is (an accent, a font, a box).
_ONE_ARG = {r"\hat", r"\bar", r"\tilde", r"\vec", r"\dot", r"\mathbf", r"\mathrm", r"\mathit",
            r"\operatorname", r"\text", r"\mathsf", r"\boldsymbol", r"\mathcal"}
_LARGE_OPS = {r"\sum", r"\prod"}
#: How much smaller a sub- or superscript (or a fraction inside a fraction) is set.
SCRIPT = .72


@dataclass
class Atom:
    """A piece of math as TeX sees it: a symbol with its scripts, a braced group, a fraction,
    a ``\\left ... \\right`` group (``inner``), a binary operator, a relation or a space."""

    text: str
    width: float
    kind: str = "ord"  # ord, bin, rel, punct, space, group
    inner: list[Atom] | None = None
    left: str = ""
    right: str = ""
    script: float = 0.0
    large: bool = False
    #: a fraction: its numerator's atoms and its denominator's text
    numerator: list[Atom] | None = None
    denominator: str = ""

    @property
    def total(self) -> float:
        if self.large:  # limits under and over a display sum
            return max(self.width, self.script)
        return self.width + self.script

    def source(self) -> str:
        if self.kind == "group":
            return self.left + "".join(a.source() for a in self.inner) + self.right
        return self.text


def _tokens(latex: str) -> list[str]:
    return _TOKEN.findall(latex)


class _Parser:
    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def skip_space(self) -> str:
        out = ""
        while (t := self.peek()) is not None and t.isspace():
            out += self.take()
        return out

    def argument(self, scale: float, display: bool) -> tuple[str, float, list[Atom]]:
        """One argument: a braced group or a single token; its source, width and atoms."""
        space = self.skip_space()
        token = self.peek()
        if token is None:
            return space, 0.0, []
        if token == "{":
            self.take()
            atoms = self.sequence(scale, display, stop="}")
            if self.peek() == "}":
                self.take()
            return space + "{" + "".join(a.source() for a in atoms) + "}", \
                atoms_width(atoms), atoms
        atoms = self.sequence(scale, display, single=True)
        return space + "".join(a.source() for a in atoms), atoms_width(atoms), atoms

    def sequence(self, scale: float = 1.0, display: bool = True, stop: str | None = None,
                 single: bool = False) -> list[Atom]:
        atoms: list[Atom] = []
        while (token := self.peek()) is not None and token != stop:
            if stop is None and token in ("}", r"\right"):
                break
            if single and atoms:
                break
            self.take()
            if token.isspace():
                atoms.append(Atom(token, 0.0, "space"))
                continue
            if token in ("^", "_"):
                text, width, _ = self.argument(scale * SCRIPT, False)
                host = next((a for a in reversed(atoms) if a.kind != "space"), None)
                if host is None:
                    atoms.append(Atom(token + text, width, "ord"))
                    continue
                if host.kind == "group":
                    host.right += token + text
                else:
                    host.text += token + text
                host.script = max(host.script, width + .06 * scale)  # and \scriptspace
                continue
            if token == "{":
                inner = self.sequence(scale, display, stop="}")
                if self.peek() == "}":
                    self.take()
                atoms.append(Atom("{" + "".join(a.source() for a in inner) + "}",
                                   atoms_width(inner), "ord"))
                continue
            if token == r"\left":
                delim = self.take() if self.peek() is not None else "."
                inner = self.sequence(scale, display)
                right = ""
                if self.peek() == r"\right":
                    right = self.take() + (self.take() if self.peek() is not None else ".")
                tall = any(a.numerator is not None or a.large for a in _walk(inner))
                size = (.6 if tall else .39) * scale
                edges = sum(.11 * scale if d.endswith(".") else size for d in (delim, right))
                # TeX sets a thin space between a bracket pair (an inner atom) and a symbol
                spacing = .25 * scale if display or scale == 1.0 else 0.0
                atoms.append(Atom("", atoms_width(inner) + edges + spacing, "group",
                                   inner=inner, left=r"\left" + delim, right=right))
                continue
            if token in (r"\frac", r"\dfrac", r"\tfrac"):
                inner_scale = scale if display else scale * SCRIPT
                num, w_num, num_atoms = self.argument(inner_scale, False)
                den, w_den, _ = self.argument(inner_scale, False)
                atoms.append(Atom(token + num + den, max(w_num, w_den) + .4 * scale,
                                   numerator=num_atoms, denominator=den))
                continue
            if token == r"\sqrt":
                text, width, _ = self.argument(scale, display)
                atoms.append(Atom(token + text, width + .83 * scale))
                continue
            if token in _ONE_ARG:
                text, width, _ = self.argument(scale, display)
                if token in (r"\operatorname", r"\text", r"\mathrm"):
                    width *= .95  # upright letters are a little narrower than italic ones
                    width += .17 * scale if token == r"\operatorname" else 0
                atoms.append(Atom(token + text, width))
                continue
            if token in BINARY:
                previous = next((a for a in reversed(atoms) if a.kind != "space"), None)
                binary = previous is not None and previous.kind not in ("bin", "rel", "punct")
                width = BINARY[token] if binary else BINARY[token] - .44
                atoms.append(Atom(token, width * scale, "bin" if binary else "ord"))
                continue
            if token in RELATION:
                atoms.append(Atom(token, RELATION[token] * scale, "rel"))
                continue
            if token == ",":
                atoms.append(Atom(token, .45 * scale, "punct"))
                continue
            atoms.append(Atom(token, glyph_width(token) * scale, large=token in _LARGE_OPS
                               and display))
        return atoms


def glyph_width(token: str) -> float:
    """The width of one token set on its own: a letter, a digit, a symbol, a command."""
    if token in _CHARS:
        return _CHARS[token]
    if token.isdigit():
        return .5
    if token.isalpha() and len(token) == 1:
        return .75 if token.isupper() else .5
    if token in _COMMANDS:
        return _COMMANDS[token]
    if token.startswith("\\"):
        return .6  # a symbol we do not know: about a letter
    return .5


def atoms_width(atoms: list[Atom]) -> float:
    """The width of atoms set one after another, their scripts included."""
    return sum(a.total for a in atoms)


def _walk(atoms: list[Atom]):
    for a in atoms:
        yield a
        if a.inner:
            yield from _walk(a.inner)


def parse_atoms(latex: str) -> list[Atom]:
    """Display math ``latex`` read into its atoms, at the outermost level."""
    parser = _Parser(_tokens(latex))
    atoms = parser.sequence()
    while parser.peek() is not None:  # an unbalanced } or \right: keep it as text
        atoms.append(Atom(parser.take(), .5))
        atoms += parser.sequence()
    return atoms


def estimate_width(latex: str) -> float:
    """The estimated width of display math ``latex``, in em of the font it is set in."""
    return atoms_width(parse_atoms(latex))
