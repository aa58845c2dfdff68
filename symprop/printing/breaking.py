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
document's font), a little on the generous side, so a line that is kept fits: reading the
source into atoms with their widths is :mod:`.latex_atoms`.  The printers give the
mathematics; this module only lays it out.  Markdown and HTML are not broken (a browser
scrolls a formula; MathML has no page).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .latex_atoms import (
    BINARY,
    RELATION,
    SCRIPT,
    Atom,
    atoms_width,
    estimate_width,
    glyph_width,
    parse_atoms,
)

__all__ = ["PAGE_EM", "display_lines", "estimate_width", "tex_display"]

#: The line of the standalone article (A4, 2 cm margins: 483.7 pt) in em of its 11 pt font,
#: less a margin for the estimate's error.
PAGE_EM = 39.0
#: The most quads a continuation line is indented by for the brackets it is inside of.
_MAX_INDENT = 2


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


def _flatten(atoms: list[Atom], flat: _Flat, depth: int, limit: float) -> None:
    for n, atom in enumerate(atoms):
        if atom.kind == "group" and atom.total > .4 * limit:  # a narrow bracket stays whole
            flat.groups.append((atom.left, atom.right))
            index = len(flat.groups) - 1
            flat.pieces.append(_Piece(atom.left, glyph_width(atom.left[5:]) if
                                      not atom.left.endswith(".") else .11, "open", index))
            _flatten(atom.inner, flat, depth + 1, limit)
            close = (.11 if atom.right.startswith(r"\right.") else .39) + atom.script * SCRIPT
            flat.pieces.append(_Piece(atom.right, close, "close", index))
            continue
        if atom.numerator is not None and atoms_width(atom.numerator) > .6 * limit:
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
    atoms = parse_atoms(latex)
    if atoms_width(atoms) <= width:
        return [latex]
    flat = _Flat()
    _flatten(atoms, flat, 0, width)
    pieces = flat.pieces
    # the alignment point: the first relation at the outermost level, if its left is short
    align, before = None, 0.0
    for n, p in enumerate(pieces):
        if p.kind == "break" and p.depth == 0 and p.rank == 0 and \
                pieces[n + 1].text in RELATION:
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
        if opened and pieces[start].kind == "break" and pieces[start + 1].text in BINARY:
            text += "{}"  # a + after \left. is still a binary operator
        text += content.strip() + r"\right." * len(_open_groups(flat, end))
        if number == 0:
            out.append(text if align is not None else "& " + text)
        elif pieces[start].kind == "break" and pieces[start + 1].text in RELATION:
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
