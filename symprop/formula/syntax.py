"""What a formula says, before it means anything: a small syntax tree in seed notation.

The parser (:mod:`.parser`) builds these values from LaTeX or plain text; :mod:`.meaning`
turns them into SymPy for one network.  Every value keeps its ``span`` in the user's text, so
an error or a suggested fix can point at the exact characters.  Values are frozen
dataclasses: a diagnosis builds a variant with :func:`dataclasses.replace` and never touches
the original.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace

__all__ = [
    "Add",
    "Call",
    "Deriv",
    "Div",
    "Dots",
    "Epsilon",
    "Equation",
    "Euler",
    "Expr",
    "Group",
    "IndexBracket",
    "Iverson",
    "Kronecker",
    "Layer",
    "Loss",
    "MatrixRef",
    "Max",
    "MaxOf",
    "Mul",
    "Neg",
    "NodeRef",
    "Num",
    "Pi",
    "Pow",
    "Shifted",
    "Size",
    "Span",
    "Steps",
    "Sum",
    "Transpose",
    "bound_letters",
    "walk",
]

Span = tuple[int, int]


@dataclass(frozen=True)
class Layer:
    """A layer as written: ``L-1`` is (``"L"``, -1), ``2`` is (None, 2), ``l+1`` is ("l", 1)."""

    base: str | None
    offset: int = 0

    def text(self) -> str:
        if self.base is None:
            return str(self.offset)
        if self.offset == 0:
            return self.base
        return f"{self.base}{self.offset:+d}"


@dataclass(frozen=True)
class Shifted:
    """A node index written as whole-number arithmetic of letters, as a conv layer's window
    reads its input: ``2p+u-1`` is ((("p", 2), ("u", 1)), -1).  A node it places outside its
    map is zero (the zero padding), as in the derivation's own sums."""

    terms: tuple[tuple[str, int], ...]
    constant: int = 0

    @property
    def letters(self) -> tuple[str, ...]:
        return tuple(letter for letter, _ in self.terms)

    def value(self, bound: dict[str, int]) -> int:
        return sum(coefficient * bound[letter] for letter, coefficient in self.terms) \
            + self.constant

    def __str__(self) -> str:
        text = ""
        for letter, coefficient in self.terms:
            sign = "-" if coefficient < 0 else "+"
            size = abs(coefficient)
            text += f"{sign}{size if size != 1 else ''}{letter}"
        if self.constant and text.startswith("-"):  # a flipped kernel offset: 2-u
            return f"{self.constant}{text}"
        if self.constant:
            text += f"{self.constant:+d}"
        return text.removeprefix("+")


@dataclass(frozen=True)
class Expr:
    span: Span = field(default=(0, 0), compare=False, kw_only=True)


@dataclass(frozen=True)
class Num(Expr):
    text: str


@dataclass(frozen=True)
class Size(Expr):
    """``n``: the width a sum runs over, the batch size, or the output width (see meaning)."""


@dataclass(frozen=True)
class Euler(Expr):
    """``e``."""


@dataclass(frozen=True)
class Pi(Expr):
    r"""``\pi`` (derive writes the derivative of erf with sqrt(pi))."""


@dataclass(frozen=True)
class Epsilon(Expr):
    r"""``\epsilon``: a batchnorm's eps, under the square root of its variance."""


@dataclass(frozen=True)
class Steps(Expr):
    r"""``T``: an rnn's number of steps, as a sum's bound (``\sum_{t=1}^{T}``)."""


@dataclass(frozen=True)
class Kronecker(Expr):
    r"""``\delta_{im}``: 1 where two sample letters agree, else 0 (a batchnorm's Jacobian)."""

    left: str
    right: str


@dataclass(frozen=True)
class Dots(Expr):
    r"""``\cdots`` inside a sum written out: the terms the neighbours' pattern implies."""


@dataclass(frozen=True)
class NodeRef(Expr):
    """w_jk^(l), b_j^(l), z_j^(l), a_j^(l), delta_j^(l), x_k, y_j; indices int or letter
    (also in Nielsen's spelling, w^l_{jk}, a^{l-1}_k)."""

    kind: str
    indices: tuple[int | str, ...]
    layer: Layer | None = None
    #: Written superscript first, unparenthesised, as Nielsen does (a^{l-1}_k): corrections
    #: print in the same spelling.
    nielsen: bool = field(default=False, compare=False, kw_only=True)


@dataclass(frozen=True)
class MatrixRef(Expr):
    """A batch matrix of seed 001 (one sample per row): W^(l), b^(l), A^(l), Z^(l), X, Y,
    Delta^(l) = dC/dZ^(l), or the column of ones; ``transposed`` when written W^{(l)\top}."""

    kind: str
    layer: Layer | None = None
    transposed: bool = False


@dataclass(frozen=True)
class Transpose(Expr):
    """``M^\top``, ``M^T``, ``M'``."""

    arg: Expr


@dataclass(frozen=True)
class Loss(Expr):
    """C (the batch loss), C_0, C_1 or C_i (one sample's loss)."""

    sample: int | str | None = None


@dataclass(frozen=True)
class Add(Expr):
    terms: tuple[Expr, ...]


@dataclass(frozen=True)
class Neg(Expr):
    arg: Expr


@dataclass(frozen=True)
class Mul(Expr):
    """A product; ``ops`` says how each factor meets the next ("" side by side, "*", "cdot",
    "@", "odot"), which matters only between two matrices (empty: all side by side)."""

    factors: tuple[Expr, ...]
    ops: tuple[str, ...] = ()

    def op(self, i: int) -> str:
        """How factor i meets factor i + 1."""
        return self.ops[i] if i < len(self.ops) else ""


@dataclass(frozen=True)
class Div(Expr):
    num: Expr
    den: Expr


@dataclass(frozen=True)
class Pow(Expr):
    base: Expr
    exp: Expr


@dataclass(frozen=True)
class Group(Expr):
    """Parentheses (kept: ``(x)^{(2)}`` is an error, and fixes print inside them)."""

    arg: Expr


@dataclass(frozen=True)
class Call(Expr):
    """g^(l), g'^(l), sigma, sigma', tanh, exp, log, sqrt applied to ``arg``."""

    name: str
    arg: Expr
    primes: int = 0
    layer: Layer | None = None


@dataclass(frozen=True)
class Deriv(Expr):
    r"""``\frac{\partial C_0}{\partial w}`` (``of`` set) or ``\frac{\partial}{\partial w}(..)``;
    ``\frac{\partial C}{\partial W^{(l)}}`` by a whole matrix."""

    wrt: NodeRef | MatrixRef
    of: NodeRef | Loss | None = None
    operand: Expr | None = None


@dataclass(frozen=True)
class Sum(Expr):
    r"""``\sum_{j=0}^{n-1} body``; ``lower``/``upper`` None when not written."""

    index: str
    body: Expr
    lower: Expr | None = None
    upper: Expr | None = None


@dataclass(frozen=True)
class Max(Expr):
    r"""``\max_{u,v} body``: the largest value of ``body`` over the letters' values (a max
    pool's window); ``lower``/``upper`` None when not written (the window's extent)."""

    indices: tuple[str, ...]
    body: Expr
    lower: Expr | None = None
    upper: Expr | None = None


@dataclass(frozen=True)
class MaxOf(Expr):
    r"""``\max(a, b, ...)``: the largest of the values listed (a window written out)."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Iverson(Expr):
    r"""``[left = right]``: 1 where the two sides are equal, else 0 (a max pool's derivative,
    [a_{c,p,q} = \max_{u,v} a_{c,2r+u,2t+v}])."""

    left: Expr
    right: Expr


@dataclass(frozen=True)
class IndexBracket(Expr):
    """``[p = 2r+u-1]``: 1 where two whole-number indices agree (which window offset reads
    a position), else 0."""

    left: int | str | Shifted
    right: int | str | Shifted


@dataclass(frozen=True)
class Equation(Expr):
    """``lhs = rhs (= ...)``: one side for a bare formula."""

    sides: tuple[Expr, ...]


def children(expr: Expr) -> Iterator[Expr]:
    """The direct sub-expressions of ``expr``."""
    for f in fields(expr):
        value = getattr(expr, f.name)
        if isinstance(value, Expr):
            yield value
        elif isinstance(value, tuple):
            yield from (v for v in value if isinstance(v, Expr))


def walk(expr: Expr) -> Iterator[Expr]:
    """``expr`` and everything below it, parents first."""
    yield expr
    for child in children(expr):
        yield from walk(child)


def bound_letters(expr: Expr) -> list[str]:
    """The letters sums and window maxima inside ``expr`` run over."""
    out: list[str] = []
    for e in walk(expr):
        letters = (e.index,) if isinstance(e, Sum) else e.indices if isinstance(e, Max) else ()
        out += [letter for letter in letters if letter not in out]
    return out


def rebuild(expr: Expr, change) -> Expr:
    """A copy of ``expr`` where ``change(sub)`` replaces each sub-expression it returns for.

    ``change`` returns None to keep a sub-expression (and look inside it).
    """
    new = change(expr)
    if new is not None:
        return new
    updates = {}
    for f in fields(expr):
        value = getattr(expr, f.name)
        if isinstance(value, Expr):
            updated = rebuild(value, change)
            if updated is not value:
                updates[f.name] = updated
        elif isinstance(value, tuple) and any(isinstance(v, Expr) for v in value):
            items = tuple(rebuild(v, change) if isinstance(v, Expr) else v for v in value)
            if any(a is not b for a, b in zip(items, value)):
                updates[f.name] = items
    return replace(expr, **updates) if updates else expr
