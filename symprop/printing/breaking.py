r"""Long display equations broken over lines, for LaTeX pages.

A derivation's equations grow with the network: the sum of every path, a result with its
deltas substituted back, a layer's whole backward step.  On a page TeX does not break a
display, so :func:`display_lines` does, as seed 000 sets its long steps: lines of amsmath's
``align*`` (which may break across pages), each continuation aligned after the first ``=`` and
indented by a quad, and a quad more for each bracket it is inside of,

* before a ``+`` or ``-`` (or ``=``, or a ``\cdot`` between chain-rule factors) at the
  outermost level that fills a line well,
* inside ``\left( ... \right)`` when a bracket is wider than the line (the halves closed with
  ``\right.`` and reopened with ``\left.``), after a comma between a function's arguments,
* and a fraction whose numerator alone is too wide written as ``\frac{1}{den} (num)``.

Widths are estimated from the LaTeX source with Computer Modern's glyph widths (in em of the
document's font), a little on the generous side, so a line that is kept fits.  The printers
give the mathematics; this module only lays it out.  Markdown and HTML are not broken (a
browser scrolls a formula; MathML has no page).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["PAGE_EM", "display_lines", "estimate_width", "tex_display"]

#: The line of the standalone article (A4, 2 cm margins: 483.7 pt) in em of its 11 pt font,
#: less a margin for the estimate's error.
PAGE_EM = 39.0

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
_BINARY = {"+": 1.22, "-": 1.22, r"\cdot": .72, r"\odot": 1.22, r"\times": 1.22,
           r"\circ": .94, r"\pm": 1.22}
_RELATION = {"=": 1.33, r"\approx": 1.33, r"\leq": 1.33, r"\geq": 1.33, r"\neq": 1.33}
#: Commands whose one argument is set as it is (an accent, a font, a box).
_ONE_ARG = {r"\hat", r"\bar", r"\tilde", r"\vec", r"\dot", r"\mathbf", r"\mathrm", r"\mathit",
            r"\operatorname", r"\text", r"\mathsf", r"\boldsymbol", r"\mathcal"}
_LARGE_OPS = {r"\sum", r"\prod"}
#: How much smaller a sub- or superscript (or a fraction inside a fraction) is set.
_SCRIPT = .72
#: The most quads a continuation line is indented by for the brackets it is inside of.
_MAX_INDENT = 2


@dataclass
class _Atom:
    """A piece of math as TeX sees it: a symbol with its scripts, a braced group, a fraction,
    a ``\\left ... \\right`` group (``inner``), a binary operator, a relation or a space."""

    text: str
    width: float
    kind: str = "ord"  # ord, bin, rel, punct, space, group
    inner: list[_Atom] | None = None
    left: str = ""
    right: str = ""
    script: float = 0.0
    large: bool = False
    #: a fraction: its numerator's atoms and its denominator's text
    numerator: list[_Atom] | None = None
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

    def argument(self, scale: float, display: bool) -> tuple[str, float, list[_Atom]]:
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
                _width(atoms), atoms
        atoms = self.sequence(scale, display, single=True)
        return space + "".join(a.source() for a in atoms), _width(atoms), atoms

    def sequence(self, scale: float = 1.0, display: bool = True, stop: str | None = None,
                 single: bool = False) -> list[_Atom]:
        atoms: list[_Atom] = []
        while (token := self.peek()) is not None and token != stop:
            if stop is None and token in ("}", r"\right"):
                break
            if single and atoms:
                break
            self.take()
            if token.isspace():
                atoms.append(_Atom(token, 0.0, "space"))
                continue
            if token in ("^", "_"):
                text, width, _ = self.argument(scale * _SCRIPT, False)
                host = next((a for a in reversed(atoms) if a.kind != "space"), None)
                if host is None:
                    atoms.append(_Atom(token + text, width, "ord"))
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
                atoms.append(_Atom("{" + "".join(a.source() for a in inner) + "}",
                                   _width(inner), "ord"))
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
                atoms.append(_Atom("", _width(inner) + edges + spacing, "group",
                                   inner=inner, left=r"\left" + delim, right=right))
                continue
            if token in (r"\frac", r"\dfrac", r"\tfrac"):
                inner_scale = scale if display else scale * _SCRIPT
                num, w_num, num_atoms = self.argument(inner_scale, False)
                den, w_den, _ = self.argument(inner_scale, False)
                atoms.append(_Atom(token + num + den, max(w_num, w_den) + .4 * scale,
                                   numerator=num_atoms, denominator=den))
                continue
            if token == r"\sqrt":
                text, width, _ = self.argument(scale, display)
                atoms.append(_Atom(token + text, width + .83 * scale))
                continue
            if token in _ONE_ARG:
                text, width, _ = self.argument(scale, display)
                if token in (r"\operatorname", r"\text", r"\mathrm"):
                    width *= .95  # upright letters are a little narrower than italic ones
                    width += .17 * scale if token == r"\operatorname" else 0
                atoms.append(_Atom(token + text, width))
                continue
            if token in _BINARY:
                previous = next((a for a in reversed(atoms) if a.kind != "space"), None)
                binary = previous is not None and previous.kind not in ("bin", "rel", "punct")
                width = _BINARY[token] if binary else _BINARY[token] - .44
                atoms.append(_Atom(token, width * scale, "bin" if binary else "ord"))
                continue
            if token in _RELATION:
                atoms.append(_Atom(token, _RELATION[token] * scale, "rel"))
                continue
            if token == ",":
                atoms.append(_Atom(token, .45 * scale, "punct"))
                continue
            atoms.append(_Atom(token, _glyph(token) * scale, large=token in _LARGE_OPS
                               and display))
        return atoms


def _glyph(token: str) -> float:
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


def _width(atoms: list[_Atom]) -> float:
    return sum(a.total for a in atoms)


def _walk(atoms: list[_Atom]):
    for a in atoms:
        yield a
        if a.inner:
            yield from _walk(a.inner)


def _parse(latex: str) -> list[_Atom]:
    parser = _Parser(_tokens(latex))
    atoms = parser.sequence()
    while parser.peek() is not None:  # an unbalanced } or \right: keep it as text
        atoms.append(_Atom(parser.take(), .5))
        atoms += parser.sequence()
    return atoms


def estimate_width(latex: str) -> float:
    """The estimated width of display math ``latex``, in em of the font it is set in."""
    return _width(_parse(latex))


# ------------------------------------------------------------------ breaking
@dataclass
class _Piece:
    """One element of an equation laid out flat: text with its width, a bracket opening or
    closing (``group``: which one), or a place to break (``depth``: inside how many open
    brackets; ``rank``: 0 before + - =, 1 before a cdot, 2 after a comma)."""

    text: str = ""
    width: float = 0.0
    kind: str = "text"  # text, open, close, break
    group: int = -1
    depth: int = 0
    rank: int = 0


@dataclass
class _Flat:
    pieces: list[_Piece] = field(default_factory=list)
    groups: list[tuple[str, str]] = field(default_factory=list)  # (left, right) per group


def _flatten(atoms: list[_Atom], flat: _Flat, depth: int, limit: float) -> None:
    for n, atom in enumerate(atoms):
        if atom.kind == "group" and atom.total > .4 * limit:  # a narrow bracket stays whole
            flat.groups.append((atom.left, atom.right))
            index = len(flat.groups) - 1
            flat.pieces.append(_Piece(atom.left, _glyph(atom.left[5:]) if
                                      not atom.left.endswith(".") else .11, "open", index))
            _flatten(atom.inner, flat, depth + 1, limit)
            close = (.11 if atom.right.startswith(r"\right.") else .39) + atom.script * _SCRIPT
            flat.pieces.append(_Piece(atom.right, close, "close", index))
            continue
        if atom.numerator is not None and _width(atom.numerator) > .6 * limit:
            # a numerator wider than the line: 1/den times the numerator in brackets
            flat.pieces.append(_Piece(r"\frac{1}" + atom.denominator + " ", 1.0))
            flat.groups.append((r"\left(", r"\right)"))
            index = len(flat.groups) - 1
            flat.pieces.append(_Piece(r"\left(", .39, "open", index))
            _flatten(atom.numerator, flat, depth + 1, limit)
            flat.pieces.append(_Piece(r"\right)", .39, "close", index))
            continue
        if atom.kind in ("bin", "rel"):
            rank = 1 if atom.text in (r"\cdot", r"\odot", r"\times", r"\circ") else 0
            flat.pieces.append(_Piece(kind="break", depth=depth, rank=rank))
        flat.pieces.append(_Piece(atom.source(), atom.total))
        if atom.kind == "punct" and depth > 0 and n + 1 < len(atoms):
            flat.pieces.append(_Piece(kind="break", depth=depth, rank=2))


def _lines(flat: _Flat, room_at, keep: int | None = None) -> list[tuple[int, int]]:
    """Where each line starts and ends in ``flat.pieces`` (``room_at(start)``: the width a
    line starting there has): greedy, each line broken at the place that fills it at least
    half with the fewest open brackets (then the best rank, then the fullest), else at the
    fullest place that fits; never at ``keep`` (the alignment point)."""
    pieces = flat.pieces
    lines, start = [], 0
    while True:
        room = room_at(start)
        width, candidates, open_ = 0.0, [], 0
        for n in range(start, len(pieces)):
            p = pieces[n]
            if p.kind == "break" and n > start and n != keep:
                candidates.append((n, p.depth, p.rank, width))
            width += p.width
            open_ += p.kind == "open"
        reopen = .11 * _depth_at(flat, start)
        fitting = [c for c in candidates if c[3] + reopen + .11 * c[1] <= room]
        if width + reopen <= room or not candidates:
            lines.append((start, len(pieces)))
            return lines
        full = [c for c in fitting if c[3] >= .5 * room]
        if full:
            chosen = min(full, key=lambda c: (c[1], c[2], -c[3]))
        elif fitting:
            chosen = max(fitting, key=lambda c: c[3])
        else:
            chosen = candidates[0]
        lines.append((start, chosen[0]))
        start = chosen[0]


def _depth_at(flat: _Flat, end: int) -> int:
    """How many brackets are open before piece ``end``."""
    depth = 0
    for p in flat.pieces[:end]:
        depth += (p.kind == "open") - (p.kind == "close")
    return depth


def _open_groups(flat: _Flat, end: int) -> list[int]:
    stack: list[int] = []
    for p in flat.pieces[:end]:
        if p.kind == "open":
            stack.append(p.group)
        elif p.kind == "close" and stack:
            stack.pop()
    return stack


def display_lines(latex: str, width: float = PAGE_EM) -> list[str]:
    """``latex`` (one display equation) as the lines of an ``align*``: one line, as it is,
    if it fits ``width`` em; else broken before + - = (or a cdot, or after a comma in
    brackets), continuation lines aligned after the first top-level ``=`` (``lhs &= ...``,
    then ``&\\quad + ...``) when what stands before it is short, else indented by a quad.
    """
    if "&" in latex or r"\\" in latex or r"\begin" in latex:
        return [latex]  # laid out already
    atoms = _parse(latex)
    if _width(atoms) <= width:
        return [latex]
    flat = _Flat()
    _flatten(atoms, flat, 0, width)
    pieces = flat.pieces
    # the alignment point: the first relation at the outermost level, if its left is short
    align, before = None, 0.0
    for n, p in enumerate(pieces):
        if p.kind == "break" and p.depth == 0 and p.rank == 0 and \
                pieces[n + 1].text in _RELATION:
            align = n
            break
        before += p.width
    if align is not None and before > .4 * width:
        align = None
    def room_at(start: int) -> float:  # a continuation line is indented by 1 to 3 quads
        if start == 0:
            return width
        quads = 1 + min(len(_open_groups(flat, start)), _MAX_INDENT)
        return width - quads - (before if align is not None else 0.0)

    spans = _lines(flat, room_at, align)
    if len(spans) == 1:  # nowhere to break, or it fits after all
        return [latex]
    out = []
    for number, (start, end) in enumerate(spans):
        opened = _open_groups(flat, start)
        content = ""
        for n in range(start, end):
            if n == align:
                content = content.rstrip() + " &"
            content += pieces[n].text
        text = r"\left." * len(opened)
        if opened and pieces[start].kind == "break" and pieces[start + 1].text in _BINARY:
            text += "{}"  # a + after \left. is still a binary operator
        text += content.strip() + r"\right." * len(_open_groups(flat, end))
        if number == 0:
            out.append(text if align is not None else "& " + text)
        elif pieces[start].kind == "break" and pieces[start + 1].text in _RELATION:
            out.append("& " + text)
        else:  # a quad, and one more for each bracket the line is inside of
            out.append("&" + r"\quad" * (1 + min(len(opened), _MAX_INDENT)) + " " + text)
    return out


def tex_display(latex: str, width: float = PAGE_EM) -> str:
    """The LaTeX of a display: ``equation*`` if it fits a line, else ``align*`` of its lines
    (``\\allowdisplaybreaks`` lets those break across pages)."""
    lines = display_lines(latex, width)
    if len(lines) == 1:
        return f"\\begin{{equation*}}\n{lines[0]}\n\\end{{equation*}}"
    return "\\begin{align*}\n" + " \\\\\n".join(lines) + "\n\\end{align*}"
