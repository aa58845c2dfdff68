r"""What a formula means in the names of a derivation in letters (a batchnorm's over the batch,
an rnn's through time): the formula's syntax (:mod:`symprop.formula`) lowered to the SymPy
symbols the derivation prints and proves.

The names are not listed here: each symbol of the derivation's :class:`Names` is read back
from its own LaTeX with the formula parser (``\hat{x}_{@,1}^{(2)}`` with ``@`` standing for
its indices), so a user's ``\hat{x}_{m,1}^{(2)}`` or ``xhat_{m,1}^(2)`` is the derivation's
xhat[m], and a name the derivation does not read is an :class:`Unread`.  A sum without
bounds runs where the derivation's own sums over the same index run (the batch's 0..n-1,
the steps 1..T, a layer's nodes).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import sympy

from ..activations import X
from ..formula import FormulaError, parse_formula
from ..formula.syntax import (
    Add,
    Call,
    Deriv,
    Div,
    Epsilon,
    Euler,
    Expr,
    Group,
    IndexBracket,
    Kronecker,
    Layer,
    Loss,
    Mul,
    Neg,
    NodeRef,
    Num,
    Pi,
    Pow,
    Shifted,
    Size,
    Steps,
    Sum,
)
from ..layers.letter_steps import LetterDerivation, _activation

__all__ = ["Free", "LetterMeaning", "Unread", "layer_of", "match"]

#: Letters that stand for a name's indices while its printed form is read back.
HOLES = "PQRS"


class Unread(Exception):
    """A name the derivation does not read (``text``: as the user wrote it)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


class Free(Exception):
    """A letter no sum binds and the left side does not name (a sum left out?)."""

    def __init__(self, letter: str):
        super().__init__(letter)
        self.letter = letter


def layer_of(layer: Layer | None, L: int) -> int | None:
    """A layer as written, as its number (None: no layer; a letter l: FormulaError)."""
    if layer is None:
        return None
    if layer.base is None:
        return layer.offset
    if layer.base == "L":
        return L + layer.offset
    raise FormulaError(f"the layer {layer.text()} is a letter", hint="In a formula over a "
                       "batch or through time write the layer's number, or L, L-1, ...")


@dataclass(frozen=True)
class _Pattern:
    syntax: Expr
    #: the derivation's symbol, or the IndexedBase whose indices the holes are
    value: sympy.Basic
    holes: tuple[str, ...] = ()


def match(user: Expr, pattern: Expr, L: int, index) -> dict | None:
    """The values of ``pattern``'s holes (and its letters) that make it ``user``, or None;
    ``index(i)`` lowers one of the user's indices.  A hole takes any index; a number or a
    letter of the pattern must be the user's, lowered."""
    if isinstance(user, Loss) and isinstance(pattern, Loss):
        return {} if user.sample == pattern.sample else None
    if isinstance(user, Epsilon) and isinstance(pattern, Epsilon):
        return {}
    if isinstance(user, Deriv) and isinstance(pattern, Deriv):
        if user.of is None or pattern.of is None:
            return None
        of, by = match(user.of, pattern.of, L, index), match(user.wrt, pattern.wrt, L, index)
        return None if of is None or by is None else {**of, **by}
    if not (isinstance(user, NodeRef) and isinstance(pattern, NodeRef)):
        return None
    if user.kind != pattern.kind or len(user.indices) != len(pattern.indices) or \
            layer_of(user.layer, L) != layer_of(pattern.layer, L):
        return None
    found: dict = {}
    for mine, theirs in zip(user.indices, pattern.indices):
        value = index(mine)
        if isinstance(theirs, str) and theirs in HOLES:
            found[theirs] = value
        elif isinstance(theirs, int):
            if value != theirs:
                return None
        elif value != index(theirs):
            return None
    return found


class LetterMeaning:
    """Lowers a formula to the symbols of ``derivation`` (layers numbered up to ``L``);
    ``letters`` binds the user's letters: a general formula's to numbers, the left side's
    sample letter to the name of the derivation's own."""

    def __init__(self, derivation: LetterDerivation, L: int, text: str,
                 source: str | None = None, letters: dict | None = None):
        self.d, self.L, self.text, self.source = derivation, L, text, source
        names = derivation.names
        self.symbols = {names.text[s]: s for s in names.text if isinstance(s, sympy.Symbol)}
        #: a letter's value: a number, or (by name) one of the derivation's own letters
        self.letters = {k: self.symbols[v] if isinstance(v, str) else v
                        for k, v in (letters or {}).items()}
        exprs = [derivation.lhs, derivation.result] + [
            side for step in derivation.steps for chain in step.equations for side in chain]
        indexed = {e for x in exprs for e in sympy.sympify(x).atoms(sympy.Indexed)}
        rank = {e.base.label: len(e.indices) for e in indexed}
        self.patterns = [p for label, latex in names.latex.items()
                         if (p := _pattern(label, latex, names, rank)) is not None]
        #: (base, position) -> (lower, upper) of the derivation's own sums over that index
        self.bounds: dict = {}
        for x in exprs:
            for s in sympy.sympify(x).atoms(sympy.Sum):
                (var, lo, hi), = s.limits[-1:]
                self.bounds.setdefault(var.name, (lo, hi))  # by the letter, failing the index
                for e in s.function.atoms(sympy.Indexed):
                    for k, i in enumerate(e.indices):
                        if i == var:
                            self.bounds.setdefault((e.base, k), (lo, hi))
        #: (base, position) -> the letter the derivation writes there (t for a step)
        self.letter_at = {(e.base, k): i.name for e in indexed
                          for k, i in enumerate(e.indices) if isinstance(i, sympy.Symbol)}
        self.activations = {_activation(f)[0] for x in exprs for f in sympy.sympify(x).atoms(
            sympy.Function) if _activation(f) is not None}

    def error(self, what: str, expr: Expr, hint: str | None = None) -> FormulaError:
        return FormulaError(what, text=self.text, position=expr.span[0], where=self.source,
                            hint=hint)

    def written(self, expr: Expr) -> str:
        return self.text[expr.span[0]:expr.span[1]].strip()

    # ------------------------------------------------------------------ letters
    def letter(self, name: str, expr: Expr) -> sympy.Expr:
        if name in self.letters:
            return self.letters[name]
        raise Free(name)

    def index(self, value, expr: Expr) -> sympy.Expr:
        if isinstance(value, int):
            return sympy.Integer(value)
        if isinstance(value, Shifted):
            return sympy.Add(*[c * self.letter(x, expr) for x, c in value.terms],
                             value.constant)
        return self.letter(value, expr)

    # ------------------------------------------------------------------ lowering
    def lower(self, expr: Expr) -> sympy.Expr:
        rule = _LOWER.get(type(expr))
        if rule is None:
            raise self.error(f"{self.written(expr)!r} has no meaning in a formula over a batch "
                             "or through time", expr,
                             hint="Write it in the names symprop derive prints")
        return rule(self, expr)

    def name(self, expr: Expr) -> sympy.Expr:
        for p in self.patterns:
            found = match(expr, p.syntax, self.L, lambda i: self.index(i, expr))
            if found is not None:
                if not p.holes:
                    return p.value
                return p.value[tuple(found[h] for h in p.holes)]
        raise Unread(self.written(expr))

    def size(self, expr: Expr) -> sympy.Expr:
        if "n" not in self.symbols:
            raise self.error("n has no meaning here: no sum of this derivation runs over a "
                             "batch of n", expr, hint="Write the bounds as numbers")
        return self.symbols["n"]

    def steps(self, expr: Expr) -> sympy.Expr:
        if "t" not in self.bounds:
            raise self.error("T has no meaning here: it is an rnn's number of steps", expr)
        return self.bounds["t"][1]

    def sum(self, expr: Sum) -> sympy.Expr:
        var = sympy.Symbol(expr.index, integer=True)
        inner = copy.copy(self)
        inner.letters = {**self.letters, expr.index: var}
        body = inner.lower(expr.body)
        if expr.lower is not None and expr.upper is not None:
            return sympy.Sum(body, (var, self.lower(expr.lower), self.lower(expr.upper)))
        for e in body.atoms(sympy.Indexed):
            for k, i in enumerate(e.indices):
                if i == var and (e.base, k) in self.bounds:
                    return sympy.Sum(body, (var, *self.bounds[(e.base, k)]))
                if i == var and self.letter_at.get((e.base, k)) in self.bounds:
                    return sympy.Sum(body, (var, *self.bounds[self.letter_at[(e.base, k)]]))
        if expr.index in self.bounds and body.has(var):
            return sympy.Sum(body, (var, *self.bounds[expr.index]))
        letter, (lo, hi) = next(((k, v) for k, v in self.bounds.items() if isinstance(k, str)
                                 and k in ("m", "t")), ("m", (0, "n-1")))
        raise self.error(f"cannot tell where the sum over {expr.index} runs", expr,
                         hint=f"Write its bounds as derive does, e.g. \\sum_{{{letter}={lo}}}"
                              f"^{{{hi}}}")

    def call(self, expr: Call) -> sympy.Expr:
        arg = self.lower(expr.arg)
        named = next((cls for cls in self.activations
                      if expr.name in ("g", cls.text_name)), None)
        if named is None and expr.name in _ELEMENTARY and not expr.primes:
            return _ELEMENTARY[expr.name](arg)
        if named is None:
            raise self.error(f"{self.written(expr)} is no function of this derivation", expr,
                             hint="Write the layer's activation as derive prints it")
        return sympy.diff(named(X), X).subs(X, arg) if expr.primes else named(arg)


#: Functions a formula may apply besides the layer's activation (its g' written out).
_ELEMENTARY = {"exp": sympy.exp, "log": sympy.log, "sqrt": sympy.sqrt, "tanh": sympy.tanh,
               "sinh": sympy.sinh, "cosh": sympy.cosh, "sin": sympy.sin, "cos": sympy.cos,
               "atan": sympy.atan}


def _pattern(label, latex: str, names, rank: dict) -> _Pattern | None:
    """A name of the derivation read back from its LaTeX, or None when it is no name a
    formula writes (a letter, n)."""
    holes = HOLES[:rank.get(label, 0)] if label in names.bases else ""
    try:
        (syntax,) = parse_formula(latex.replace("@", ",".join(holes))).sides
    except (FormulaError, ValueError):
        return None
    if not isinstance(syntax, (NodeRef, Deriv, Epsilon)):
        return None
    return _Pattern(syntax, names.bases[label] if holes else label, tuple(holes))


def _number(m: LetterMeaning, e: Num) -> sympy.Expr:
    return sympy.Rational(e.text)


def _div(m: LetterMeaning, e: Div) -> sympy.Expr:
    return m.lower(e.num) / m.lower(e.den)


def _alone(m: LetterMeaning, e: Loss):
    raise m.error("the loss stands alone only inside a derivative", e)


_LOWER = {
    Num: _number,
    Size: LetterMeaning.size,
    Steps: LetterMeaning.steps,
    Euler: lambda m, e: sympy.E,
    Pi: lambda m, e: sympy.pi,
    Epsilon: LetterMeaning.name,
    Kronecker: lambda m, e: sympy.KroneckerDelta(m.letter(e.left, e), m.letter(e.right, e)),
    IndexBracket: lambda m, e: sympy.KroneckerDelta(m.index(e.left, e), m.index(e.right, e)),
    NodeRef: LetterMeaning.name,
    Deriv: lambda m, e: m.name(e),
    Group: lambda m, e: m.lower(e.arg),
    Neg: lambda m, e: -m.lower(e.arg),
    Add: lambda m, e: sympy.Add(*[m.lower(t) for t in e.terms]),
    Mul: lambda m, e: sympy.Mul(*[m.lower(f) for f in e.factors]),
    Div: _div,
    Pow: lambda m, e: m.lower(e.base) ** m.lower(e.exp),
    Call: LetterMeaning.call,
    Sum: LetterMeaning.sum,
    Loss: _alone,
}
