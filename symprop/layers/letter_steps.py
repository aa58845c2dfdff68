"""A derivation in letters as data: its steps (words and SymPy equations), how its symbols
print (:class:`Names`, and the SymPy printer subclasses that use them) and the proofs it is
held against.  A kind whose samples are not independent (batchnorm) builds one of these for
:mod:`symprop.letters_derivation`, which proves and prints it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sympy
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.str import StrPrinter

from ..activations import ActivationPrime, ElementwiseActivation

__all__ = ["Differs", "LetterDerivation", "Names", "Step", "product"]

#: Products built in the order they print in (see :func:`product`).
_KEPT: set = set()


def product(*factors) -> sympy.Expr:
    """A product that prints in the order given (dC_0/dh g'(z), as seed 000 writes the
    chain rule), where SymPy would sort its factors."""
    out = sympy.Mul(*factors, evaluate=False)
    _KEPT.add(out)
    return out


class Differs(RuntimeError):
    """A derivation's result differs from what it is held against."""


class Names:
    """The printed forms of a derivation's symbols: ``symbol(latex, text)`` for one quantity,
    ``indexed(latex, text)`` for one with a sample index (``@`` in both forms is where the
    index goes), e.g. ``indexed(r"\\hat{x}_{@,1}^{(2)}", "xhat_{@,1}^(2)")``."""

    def __init__(self):
        self.latex: dict[sympy.Basic, str] = {}
        self.text: dict[sympy.Basic, str] = {}
        self.compact: set[sympy.Basic] = set()
        #: label -> its IndexedBase, for a formula that names one (symprop check)
        self.bases: dict[sympy.Basic, sympy.IndexedBase] = {}

    def symbol(self, latex: str, text: str, **assumptions) -> sympy.Symbol:
        """A quantity (a matrix: ``commutative=False``)."""
        s = sympy.Symbol(text, **({"real": True} if assumptions.get("commutative", True)
                                  else {}), **assumptions)
        self.latex[s], self.text[s] = latex, text
        return s

    def indexed(self, latex: str, text: str, compact: bool = False, matrix: bool = False
                ) -> sympy.IndexedBase:
        """``compact``: single-character indices run together (w_{12}, u_{jk}) as seed 000
        writes a weight's; ``matrix``: one matrix per index (products keep their order)."""
        base = sympy.IndexedBase(text, **({"commutative": False} if matrix else
                                          {"real": True}))
        self.latex[base.label], self.text[base.label] = latex, text
        self.bases[base.label] = base
        if compact:
            self.compact.add(base.label)
        return base

    def derivative(self, of: sympy.Basic, by: sympy.Basic) -> sympy.Symbol:
        """The symbol d of / d by, printed as a fraction of partials."""
        latex, text = _LetterLatex(self).doprint, _LetterText(self).doprint
        return self.symbol(rf"\frac{{\partial {latex(of)}}}{{\partial {latex(by)}}}",
                           f"d{text(of)}/d{text(by)}")

    def index(self, label, printed: list[str]) -> str:
        """The indices of an Indexed as printed: run together or separated by commas."""
        together = label in self.compact and all(len(p) == 1 for p in printed)
        return ("" if together else ",").join(printed)


def _activation(expr) -> tuple[type, bool] | None:
    """(g's class, is it g') for an activation g(z) or its derivative g'(z), else None."""
    if isinstance(expr, ActivationPrime):
        return type(expr).base, True
    return (type(expr), False) if isinstance(expr, ElementwiseActivation) else None


class _BuiltOrder:
    """Terms and factors that SymPy sorted print in the usual order (n - 1, a - mu); an
    expression built unevaluated (the compact form in the issue's order) prints as built.
    Symbols print by their :class:`Names`."""

    def __init__(self, names: Names):
        super().__init__()
        self._settings["usual_order"] = self._settings["order"]
        self.names = names

    def _as_built(self, expr, print_):
        usual = self._settings["usual_order"]
        built = expr in _KEPT or (expr.is_Add and type(expr)(*expr.args).args != expr.args)
        order, self._settings["order"] = self._settings["order"], "none" if built else usual
        try:
            return print_(expr)
        finally:
            self._settings["order"] = order

    def _print_Add(self, expr, order=None):
        return self._as_built(expr, super()._print_Add)

    def _print_Mul(self, expr):
        return self._as_built(expr, super()._print_Mul)


class _LetterLatex(_BuiltOrder, LatexPrinter):
    def _print_Symbol(self, expr, style="plain"):
        return self.names.latex.get(expr) or super()._print_Symbol(expr, style)

    def _print_Indexed(self, expr):
        label = expr.base.label
        return self.names.latex[label].replace(
            "@", self.names.index(label, [self._print(i) for i in expr.indices]))

    def _print_KroneckerDelta(self, expr, exp=None):
        return rf"\delta_{{{self._print(expr.args[0])}{self._print(expr.args[1])}}}"

    def _print_Function(self, expr, exp=None):
        """An activation g(z) and its derivative g'(z) as seed 000 writes them."""
        if (found := _activation(expr)) is not None:
            base, prime = found
            text = (base.latex_name + (r"^{\prime}" if prime else "")
                    + rf"\left({self._print(expr.args[0])}\right)")
            return text if exp is None else rf"\left({text}\right)^{{{exp}}}"
        return super()._print_Function(expr, exp)


class _LetterText(_BuiltOrder, StrPrinter):
    printmethod = "_letter_str"  # not Indexed's own _sympystr

    def _print_Symbol(self, expr):
        return self.names.text.get(expr, expr.name)

    def _print_Indexed(self, expr):
        label = expr.base.label
        return self.names.text[label].replace(
            "@", self.names.index(label, [self._print(i) for i in expr.indices]))

    def parenthesize(self, item, level, strict=False):
        """A sum over an index inside a sum or a product in parentheses, so that it cannot
        be read as running over the rest: (sum_i delta_i u_ij) g'(z), n g - (sum_m g_m)."""
        if isinstance(item, sympy.Sum) and level >= PRECEDENCE["Add"]:
            return f"({self._print(item)})"
        return super().parenthesize(item, level, strict)

    def _print_Add(self, expr, order=None):
        return self._as_built(expr, self._terms)

    def _terms(self, expr) -> str:
        """StrPrinter's sum of terms, with a term that is a sum over an index in
        parentheses."""
        parts = []
        for term in self._as_ordered_terms(expr):
            text = f"({self._print(term)})" if isinstance(term, sympy.Sum) else \
                self._print(term)
            sign, text = ("-", text[1:]) if text.startswith("-") and not term.is_Add else \
                ("+", text)
            if precedence(term) < PRECEDENCE["Add"] or term.is_Add:
                text = f"({text})"
            parts += [sign, text]
        sign = parts.pop(0)
        return ("" if sign == "+" else sign) + " ".join(parts)

    def _print_Sum(self, expr):
        body = self._print(expr.function)
        bounds = "".join(f"sum_({v}={self._print(lo)})^({self._print(hi)}) "
                         for v, lo, hi in expr.limits)  # as the per-sample text: it reads back
        return f"{bounds}({body})" if expr.function.is_Add else f"{bounds}{body}"

    def _print_KroneckerDelta(self, expr):
        return f"delta_{self._print(expr.args[0])}{self._print(expr.args[1])}"

    def _print_Function(self, expr):
        if (found := _activation(expr)) is not None:
            base, prime = found
            return f"{base.text_name}{chr(39) if prime else ''}({self._print(expr.args[0])})"
        return super()._print_Function(expr)

    def _print_HadamardProduct(self, expr):
        return " o ".join(self.parenthesize(a, 60) for a in expr.args)

    def _print_Transpose(self, expr):
        return f"{self._print(expr.arg)}^T"


@dataclass(frozen=True)
class Step:
    """One step: ``words`` (prose, where ``{name}`` prints ``refs[name]``: inline LaTeX in
    a document, text in text) and equations, each a chain of equal forms
    ``(lhs, rhs1, rhs2, ...)``."""

    words: str
    equations: tuple[tuple[sympy.Expr, ...], ...] = ()
    refs: dict = field(default_factory=dict)


@dataclass
class LetterDerivation:
    """The derivation of one quantity in letters: ``lhs`` = ``result``, reached by ``steps``.

    ``proofs`` are (what the result is held against, a check of a result returning True
    when they agree); :meth:`prove` runs every one on ``result`` and raises :class:`Differs`
    on a difference (:func:`symprop.letters_derivation.prove` makes it exit 3), so a
    derivation that differs is never printed."""

    #: words, with ``{name}`` printing ``refs[name]`` as in a :class:`Step`
    title: str
    lhs: sympy.Expr
    result: sympy.Expr
    steps: list[Step]
    names: Names
    proofs: list[tuple[str, Callable[[sympy.Expr], bool]]] = field(default_factory=list)
    refs: dict = field(default_factory=dict)
    #: the spec's name, for a standalone document's title
    network: str = ""
    #: The proofs that decide any result written in these names (a user's formula, in
    #: symprop check): None for every proof.  A proof of the derivation's own algebra (an
    #: identity SymPy may not simplify for another spelling) or one run on a smaller copy
    #: of the layer holds this result only.
    judges: list[tuple[str, Callable[[sympy.Expr], bool]]] | None = None
    #: The usual wrong results, each with what is wrong in words: symprop check names the
    #: one a wrong formula equals.
    mistakes: list[tuple[str, sympy.Expr]] = field(default_factory=list)

    def latex(self, expr: sympy.Expr) -> str:
        return _LetterLatex(self.names).doprint(expr)

    def text(self, expr: sympy.Expr) -> str:
        return _LetterText(self.names).doprint(expr)

    def prove(self) -> list[str]:
        """Run every proof; the list of what the derivation was held against, or
        :class:`Differs` naming the first that disagrees."""
        for what, check in self.proofs:
            if not check(self.result):
                raise Differs(f"the derivation of {self.text(self.lhs)} differs from {what}")
        return [what for what, _ in self.proofs]

    def context(self, fmt: str) -> dict:
        """The steps printed for a template: LaTeX (``fmt == "latex"``) or text."""
        show = self.latex if fmt == "latex" else self.text
        inline = (lambda e: f"${self.latex(e)}$") if fmt == "latex" else self.text
        def words(text: str, refs: dict) -> str:
            return text.format(**{k: inline(v) for k, v in refs.items()})

        return {"title": words(self.title, self.refs), "lhs": show(self.lhs),
                "result": show(self.result),
                "steps": [{"words": words(s.words, s.refs),
                           "equations": [" = ".join(show(e) for e in chain)
                                         for chain in s.equations]}
                          for s in self.steps]}


