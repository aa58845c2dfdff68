r"""Layer formulas written once, in index letters, and derived from there.

A layer without weights (a normalisation, a residual sum, a gate, a custom layer) is defined
by the formula of its node j in letters, as a textbook writes it::

    a_j = gamma_j xhat_j + beta_j,   xhat_j = (a_j' - mu)/sigma,   mu = 1/n sum_k a_k', ...

Here the letters are **slots**: placeholder symbols that stand for a node of the input layer
at index j or k (``in_j``, ``in_k``), of the ``from`` layer (``from_j``), of this layer's
output (``out_j``), a parameter with its letters (``c_jk``) or a named quantity of the layer
(``mu``, ``xhat_j``).  :class:`SumK` is the sum over k of the input layer's n nodes.

Everything else is derived from the letter form with SymPy (:func:`total_derivative`):

* the Jacobian entry d a_j / d a_m of the input (the chain rule through the named quantities,
  each path's term dropped when it vanishes identically, e.g. sum_k (a_k - mu) = 0), written
  back in the layer's own names (sigma, xhat, a_j): ``gamma_j/sigma (delta_jm - 1/n - xhat_j
  xhat_m/n)`` for a layernorm;
* the derivative of a_j by each parameter (d a_j/d gamma_j = xhat_j);
* the same formulas for one concrete node (:func:`concrete`), for the chain-rule engine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sympy

__all__ = [
    "LETTERS",
    "N",
    "Slot",
    "SumJ",
    "SumK",
    "concrete",
    "distinct_sums",
    "expand_sums",
    "free_letters",
    "rename",
    "slot",
    "slot_of",
    "total_derivative",
    "vanishes",
]

#: The number of nodes k runs over (the input layer's width), and the letters of node indices:
#: j, k, m as the formulas write them, q a spare one a sum is renamed to when a free letter
#: would otherwise be captured by it (see :func:`rename`).
N = sympy.Symbol("n", integer=True, positive=True)
LETTERS = {letter: sympy.Symbol(letter, integer=True, nonnegative=True) for letter in "jkmq"}
_SPARE = "q"


@dataclass(frozen=True)
class Slot:
    """What a placeholder stands for: its role, a name (params and named quantities) and its
    index letters (``""`` for a quantity of the whole layer)."""

    role: str  # "in", "from", "out", "param", "named"
    name: str
    letters: str

    @property
    def label(self) -> str:
        base = {"in": "in", "from": "from", "out": "out"}.get(self.role, self.name)
        return f"{base}_{self.letters}" if self.letters else base


_SLOTS: dict[sympy.Symbol, Slot] = {}


@functools.cache
def slot(role: str, name: str = "", letters: str = "") -> sympy.Symbol:
    """The placeholder symbol of a slot (the same object for the same slot)."""
    info = Slot(role, name, letters)
    symbol = sympy.Symbol(f"<{role}:{info.label}>", real=True)
    _SLOTS[symbol] = info
    return symbol


def slot_of(symbol: sympy.Basic) -> Slot | None:
    return _SLOTS.get(symbol) if isinstance(symbol, sympy.Symbol) else None


class _BoundSum(sympy.Function):
    """A sum that binds one index letter: ``Sum(body)`` binds the class's letter, and
    ``Sum(body, q)`` the letter q (a sum renamed so that a free letter is not captured)."""

    nargs = (1, 2)
    letter = ""

    @property
    def bound(self) -> str:
        """The letter this sum binds."""
        return str(self.args[1]) if len(self.args) > 1 else self.letter

    def with_body(self, body: sympy.Expr) -> sympy.Expr:
        """The same sum (same bound letter) over another body."""
        return self.func(body, *self.args[1:])


class SumK(_BoundSum):
    """sum_k(expr): the sum over the nodes k of the input layer.

    Its derivative by a slot carrying the bound letter (a_k, c_jk) is the derivative of the
    one term that holds it -- the summand's derivative, the letter left free; by anything
    else it is the sum of the derivatives.
    """

    letter = "k"

    def _eval_derivative(self, s):
        inner = sympy.diff(self.args[0], s)
        info = slot_of(s)
        if info is not None and self.bound in info.letters:
            return inner
        return self.with_body(inner) if inner != 0 else sympy.S.Zero


class SumJ(_BoundSum):
    """sum_j(expr): the sum over the nodes j of the layer itself (a vector-Jacobian product's
    sum over the nodes a gradient comes from)."""

    letter = "j"


def free_letters(expr: sympy.Expr) -> set[str]:
    """The index letters of the slots in ``expr`` outside any sum (k is bound in sum_k, j in
    sum_j)."""
    if isinstance(expr, _BoundSum):
        return free_letters(expr.args[0]) - {expr.bound}
    info = slot_of(expr)
    if info is not None:
        return set(info.letters)
    out: set[str] = set()
    for arg in expr.args:
        out |= free_letters(arg)
    if isinstance(expr, sympy.KroneckerDelta):
        out |= {str(a) for a in expr.args}
    return out


def rename(expr: sympy.Expr, old: str, new: str) -> sympy.Expr:
    """Every free letter ``old`` becomes ``new`` (k -> m: the k-th term, named m).

    Letters bound by a sum are left alone (in ``a_k sum_k a_k**2`` renaming k to m gives
    ``a_m sum_k a_k**2``), and a sum whose bound letter is ``new`` while ``old`` is free in
    its terms is first renamed to a spare letter, so the free letter is not captured
    (``sum_k c_jk`` with j -> k is ``sum_q c_kq``, not ``sum_k c_kk``)."""
    if old == new:
        return expr

    def walk(e):
        if isinstance(e, _BoundSum):
            if e.bound == old:
                return e
            body = e.args[0]
            if e.bound == new and old in free_letters(body):
                spare = _spare_letter(body, (old, new))
                return e.func(walk(rename(body, new, spare)), LETTERS[spare])
            return e.with_body(walk(body))
        info = slot_of(e)
        if info is not None:
            return slot(info.role, info.name, info.letters.replace(old, new)) \
                if old in info.letters else e
        if old in LETTERS and new in LETTERS and e == LETTERS[old]:
            return LETTERS[new]
        if not e.args:
            return e
        args = [walk(a) for a in e.args]
        return e.func(*args) if args != list(e.args) else e
    return walk(expr)


def distinct_sums(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with every sum whose bound letter is also free outside it renamed to a spare
    letter, for a reader: ``a_k sum_k a_k**2`` reads ``a_k sum_q a_q**2`` (the same value)."""
    free = free_letters(expr)

    def walk(e):
        if isinstance(e, _BoundSum) and e.bound in free:
            spare = _spare_letter(e.args[0], tuple(free))
            return e.func(rename(e.args[0], e.bound, spare), LETTERS[spare])
        return e.func(*[walk(a) for a in e.args]) if e.args else e
    return walk(expr)


def _letters_in(expr: sympy.Expr) -> set[str]:
    """Every index letter in ``expr``, free or bound."""
    out = set()
    for s in expr.free_symbols:
        info = slot_of(s)
        out |= set(info.letters) if info is not None else {str(s)} & set(LETTERS)
    return out


def _spare_letter(body: sympy.Expr, taken: tuple[str, ...]) -> str:
    if _SPARE in _letters_in(body) or _SPARE in taken:
        raise ValueError(f"no spare letter to rename a sum over {body} to")
    return _SPARE


def expand_sums(expr: sympy.Expr) -> sympy.Expr:
    """sum_k is linear: sum_k(u + v) = sum_k u + sum_k v, sum_k(c u) = c sum_k u and
    sum_k c = n c for c free of k (applied inside out)."""
    if not expr.args:
        return expr
    args = [expand_sums(a) for a in expr.args]
    if not isinstance(expr, SumK):
        return expr.func(*args) if args != list(expr.args) else expr
    inner = sympy.expand(args[0])
    total = []
    for term in sympy.Add.make_args(inner):
        free, bound = [], []
        for factor in sympy.Mul.make_args(term):
            (bound if expr.bound in free_letters(factor) else free).append(factor)
        rest = sympy.Mul(*bound)
        total.append(sympy.Mul(*free) * (expr.with_body(rest) if bound else N))
    return sympy.Add(*total)


def compose(expr: sympy.Expr, named: Mapping[sympy.Symbol, sympy.Expr]) -> sympy.Expr:
    """``expr`` with every named quantity replaced by its formula (repeatedly)."""
    for _ in range(len(named) + 1):
        found = {s: named[s] for s in expr.free_symbols if s in named}
        if not found:
            return expr
        expr = expr.xreplace(found)
    return expr


def vanishes(expr: sympy.Expr, named: Mapping[sympy.Symbol, sympy.Expr]) -> bool:
    """Is ``expr`` identically zero once the named quantities are written out?"""
    return expand_sums(sympy.expand(compose(expr, named))) == 0


def total_derivative(form: sympy.Expr, wrt: sympy.Symbol,
                     named: Mapping[sympy.Symbol, sympy.Expr], memo: dict | None = None
                     ) -> sympy.Expr:
    """d form / d wrt through the named quantities the form uses (the chain rule inside the
    layer); a path's term that vanishes identically is dropped."""
    memo = {} if memo is None else memo
    terms = [sympy.diff(form, wrt)]
    for q in sorted(form.free_symbols & set(named), key=str):
        key = (q, wrt)
        if key not in memo:
            memo[key] = total_derivative(named[q], wrt, named, memo)
        inner = memo[key]
        if inner == 0:
            continue
        path = sympy.diff(form, q) * inner
        if path != 0 and not vanishes(path, named):
            terms.append(path)
    return sympy.Add(*terms)


def concrete(expr: sympy.Expr, binding: Mapping[str, int], symbol_of: Callable,
             width: int, own_width: int | None = None) -> sympy.Expr:
    """``expr`` for one node: letters bound to numbers, sum_k written out over the ``width``
    nodes of the input layer (sum_j over the layer's ``own_width``), slots replaced by the
    network's symbols (``symbol_of(slot, indices)``), n by ``width``."""
    def bind(e, binding):
        if isinstance(e, _BoundSum):
            size = width if isinstance(e, SumK) else own_width
            return sympy.Add(*[bind(e.args[0], {**binding, e.bound: i}) for i in range(size)])
        info = slot_of(e)
        if info is not None:
            return symbol_of(info, tuple(binding[c] for c in info.letters))
        if e in _LETTER_SYMBOLS:
            return sympy.Integer(binding[str(e)])
        if e == N:
            return sympy.Integer(width)
        if not e.args:
            return e
        return e.func(*[bind(a, binding) for a in e.args])
    return bind(expr, binding)


_LETTER_SYMBOLS = frozenset(LETTERS.values())
