"""The second half of reading a formula: Lark's tree -> :mod:`.syntax` values.

:class:`Builder` reads each token (a node, a loss, a function, a sum, a matrix) through the
patterns of :mod:`.tokens` and each rule into a syntax value with its span in the user's
text. A summation bound is a formula of its own, read by the ``parse`` it is given (the
parser's, so this module does not import it back).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lark import Token, Transformer, v_args

from ..notation import KINDS
from . import tokens as T
from .dots import fill_dots
from .syntax import (
    Add,
    Call,
    Deriv,
    Div,
    Dots,
    Epsilon,
    Equation,
    Euler,
    Expr,
    Group,
    IndexBracket,
    Iverson,
    Kronecker,
    Loss,
    MatrixRef,
    Max,
    MaxOf,
    Mul,
    Neg,
    NodeRef,
    Num,
    Pi,
    Pow,
    Size,
    Steps,
    Sum,
    Transpose,
)
from .tokens import FormulaError, read_index

__all__ = ["Builder"]


class Builder(Transformer):
    """Lark tree -> syntax values, with spans in the user's text."""

    def __init__(self, text: str, source: str | None, offset: int,
                 parse: Callable[..., Equation]):
        super().__init__()
        self.text, self.source, self.offset = text, source, offset
        self.parse = parse

    def _span(self, start: int, end: int):
        return (start + self.offset, end + self.offset)

    def _error(self, what: str, position: int, hint: str | None = None) -> FormulaError:
        return FormulaError(what, text=self.text, position=position, where=self.source,
                            hint=hint)

    def _error_at_span(self, what: str, position: int, hint: str | None = None) -> FormulaError:
        """:meth:`_error` at a position of a span (which counts the offset)."""
        return self._error(what, position - self.offset, hint)

    # --------------------------------------------------------------- tokens
    def NODE(self, tok: Token) -> NodeRef:
        text = str(tok)
        kind_text = T.KIND_TEXT.match(text).group(0)
        kind = T.KIND.get(re.sub(r"\s+", "", kind_text), kind_text)
        sub = T.SUB.search(text)
        indices = () if sub is None else T.read_indices(
            sub["braced"] if sub["braced"] is not None else sub["plain"], kind, tok.start_pos,
            self.text)
        sup = T.LAYER.search(text)
        nielsen = sup is None and T.NIELSEN_LAYER.search(text)
        has_layer = KINDS.get(kind, (True, 0))[0]
        layer = None
        if nielsen:
            written = nielsen["layer"] or nielsen["braced"]
            layer = T.read_layer(written, tok.start_pos + nielsen.start(), self.text)
        elif sup is not None:
            if not has_layer:
                raise self._error(f"{kind}_{{..}} has no layer superscript", tok.start_pos,
                                  hint=f"{'Inputs' if kind == 'x' else 'Targets'} belong to one "
                                       "layer; write it without ^{(..)}")
            layer = T.read_layer(sup["layer"], tok.start_pos + sup.start(), self.text)
        elif has_layer:
            raise self._error(f"{text.strip()} needs a layer superscript", tok.end_pos,
                              hint="Write ^{(L)}, ^{(L-1)} or a layer number, e.g. "
                                   f"{kind}_{{1}}^{{(L)}}")
        return NodeRef(kind, indices, layer, nielsen=bool(nielsen),
                       span=self._span(tok.start_pos, tok.end_pos))

    def LOSS(self, tok: Token) -> Loss:
        sub = T.SUB.search(str(tok))
        sample = None
        if sub is not None:
            value = (sub["braced"] if sub["braced"] is not None else sub["plain"]).strip()
            sample = int(value) if value.isdigit() else value
        return Loss(sample, span=self._span(tok.start_pos, tok.end_pos))

    def FUNCTION(self, tok: Token):
        text = str(tok)
        match = T.FUNCTION_NAME.match(text)
        name = T.FUNCTION_ALIASES.get(match["name"], match["name"])
        decoration = re.sub(r"^\s*\}", "", text[match.end():])  # \operatorname{atan}
        # \tanh^{2}(x), as SymPy typesets a power of a function: a number is a power
        power = re.search(r"\^\s*(?:\{\s*([0-9]+)\s*\}|([0-9]+))", decoration)
        if power is not None and name != "g":  # g^{2}: a layer or a power? refused below
            decoration = decoration[:power.start()] + decoration[power.end():]
            power = power.group(1) or power.group(2)
        else:
            power = None
        primes = len(T.PRIME.findall(decoration))
        cleaned = re.sub(r"\\(?:left|right)(?![A-Za-z])", "", T.PRIME.sub("", decoration))
        layers = re.findall(r"\(([^()]*)\)", cleaned)
        if len(layers) > 1 or re.sub(r"\([^()]*\)|[\s{}^]", "", cleaned):
            raise self._error(f"cannot read the superscript of {text.strip()!r}", tok.start_pos,
                              hint="On a function a superscript is a layer, (L), or a "
                                   "derivative, \\prime or '; write a power of g(z) as "
                                   "\\left(g(z)\\right)^{2}")
        layer = T.read_layer(layers[0], tok.start_pos + match.end(), self.text) if layers else None
        if layer is not None and name != "g":
            raise self._error(f"{name} is the same function in every layer; it takes no layer",
                              tok.start_pos)
        if primes > 1:
            raise self._error(f"only first derivatives are supported, not {primes} primes",
                              tok.start_pos)
        if primes and name in T.ELEMENTARY:
            raise self._error(f"write the derivative of {name} out", tok.start_pos)
        return ("function", name, primes, layer, tok.start_pos, power)

    def MAX(self, tok: Token):
        """\\max_{u,v}: its letters and bounds, as a sum's."""
        if not re.search(r"_", str(tok)):
            raise self._error("a max needs the letters it runs over, e.g. \\max_{u,v}",
                              tok.start_pos)
        return ("max", *self.SUM(tok)[1:])

    def INDEX_BRACKET(self, tok: Token):
        left, right = (part.strip() for part in str(tok)[1:-1].split("="))
        sides = [read_index(part) for part in (left, right)]
        if any(side is None for side in sides):
            raise self._error(f"cannot read {str(tok)!r}: write two indices, each a number, a "
                              "letter, or letters and numbers added: [p = 2r+u-1]", tok.start_pos)
        return IndexBracket(*sides, span=self._span(tok.start_pos, tok.end_pos))

    def SUM(self, tok: Token):
        text = str(tok)
        start = tok.start_pos
        sub = re.search(r"_\s*(?:\{(?P<b>[^{}]*)\}|\((?P<p>[^()]*)\)|(?P<c>[A-Za-z]))", text)
        if sub is None:
            raise self._error("a sum needs its index, e.g. \\sum_{j=0}^{n-1}", start)
        group = next(g for g in ("b", "p", "c") if sub[g] is not None)
        body, body_at = sub[group], start + sub.start(group)
        # \sum_{p,q} (a conv's positions): one sum per letter, the bounds shared
        index_match = re.fullmatch(r"\s*(?P<index>[A-Za-z](?:\s*,\s*[A-Za-z])*)\s*"
                                   r"(?:=(?P<lower>.*))?", body, re.DOTALL)
        if index_match is None:
            raise self._error(f"cannot read the summation index {body!r}", body_at,
                              hint="Write \\sum_{j=0}^{n-1} or \\sum_{j}")
        lower = None
        if index_match["lower"] is not None:
            lower = self._bound(index_match["lower"], body_at + index_match.start("lower"))
        upper = None
        sup = re.search(r"\^\s*(?:\{(?P<b>[^{}]*)\}|\((?P<p>[^()]*)\)|(?P<c>[A-Za-z0-9]))",
                        text[sub.end():])
        if sup is not None:
            g = next(g for g in ("b", "p", "c") if sup[g] is not None)
            upper = self._bound(sup[g], start + sub.end() + sup.start(g))
        letters = tuple(re.sub(r"\s", "", index_match["index"]).split(","))
        return ("sum", letters, lower, upper, start)

    def _bound(self, text: str, at: int) -> Expr:
        equation = self.parse(text, self.source, offset=at + self.offset)
        if len(equation.sides) != 1:
            raise self._error("a summation bound cannot contain '='", at)
        return equation.sides[0]

    # ---------------------------------------------------------------- rules
    @v_args(meta=True)
    def equation(self, meta, items):
        sides = tuple(i for i in items if isinstance(i, Expr))
        return Equation(sides, span=self._span(meta.start_pos, meta.end_pos))

    @v_args(meta=True)
    def add(self, meta, items):
        left, right = items[0], items[2]
        return fill_dots(Add(_terms(left) + _terms(right),
                              span=self._span(meta.start_pos, meta.end_pos)), self._error_at_span)

    @v_args(meta=True)
    def sub(self, meta, items):
        left, right = items[0], items[2]
        neg = Neg(right, span=right.span)
        return fill_dots(Add(_terms(left) + (neg,),
                              span=self._span(meta.start_pos, meta.end_pos)), self._error_at_span)

    @v_args(meta=True)
    def neg(self, meta, items):
        return Neg(items[1], span=self._span(meta.start_pos, meta.end_pos))

    def term(self, items):
        return items[-1]

    @v_args(meta=True)
    def mul(self, meta, items):
        exprs = [i for i in items if isinstance(i, Expr)]
        ops = [_OPS.get(str(i).strip(), "cdot") for i in items if isinstance(i, Token)]
        return Mul(_factors(exprs[0]) + _factors(exprs[1]),
                   _ops(exprs[0]) + tuple(ops or [""]) + _ops(exprs[1]),
                   span=self._span(meta.start_pos, meta.end_pos))

    mul_op = mul

    def MATRIX(self, tok: Token) -> MatrixRef:
        text = str(tok)
        kind = T.MATRIX_KIND.search(text)
        name = T.MATRIX_KINDS.get(kind[0], kind[0]) if kind else "ones"
        sup = T.LAYER.search(text)
        layer = T.read_layer(sup["layer"], tok.start_pos + sup.start(), self.text) \
            if sup else None
        transposed = bool(sup) and bool(T.INNER_TRANSPOSE.search(text[sup.end():]))
        return MatrixRef(name, layer, transposed, span=self._span(tok.start_pos, tok.end_pos))

    def ONES(self, tok: Token) -> MatrixRef:
        return MatrixRef("ones", span=self._span(tok.start_pos, tok.end_pos))

    def matrix(self, items):
        return items[0]

    @v_args(meta=True)
    def transpose(self, meta, items):
        return Transpose(items[0], span=self._span(meta.start_pos, meta.end_pos))

    @v_args(meta=True)
    def derivative_plain(self, meta, items):
        tok, wrt = items
        return Deriv(wrt, of=self.LOSS(Token("LOSS", str(tok).split("/")[0][1:].strip(),
                                             start_pos=tok.start_pos, end_pos=tok.end_pos)),
                     span=self._span(meta.start_pos, meta.end_pos))

    @v_args(meta=True)
    def div(self, meta, items):
        return Div(items[0], items[2], span=self._span(meta.start_pos, meta.end_pos))

    @v_args(meta=True)
    def pow(self, meta, items):
        base, exponent = items[0], items[2]
        if isinstance(exponent, Group) and items[1] != "**":  # x**(1/2) is a power
            raise self._error("a parenthesised superscript is always a layer, and only nodes "
                              "have layers", exponent.span[0] - self.offset,
                              hint="For a power write ^{2} or ^2")
        return Pow(base, exponent, span=self._span(meta.start_pos, meta.end_pos))

    @v_args(meta=True)
    def number(self, meta, items):
        tok = items[0]
        return Num(str(tok), span=self._span(tok.start_pos, tok.end_pos))

    def kronecker(self, items):
        tok = items[0]
        left, right = re.findall(r"[A-Za-z]", re.sub(r"^\\?(?:delta|δ)", "", str(tok)))
        return Kronecker(left, right, span=self._span(tok.start_pos, tok.end_pos))

    def node(self, items):
        return items[0]

    def loss(self, items):
        return items[0]

    def brace(self, items):
        return next(i for i in items if isinstance(i, Expr))

    @v_args(meta=True)
    def group(self, meta, items):
        return Group(items[1], span=self._span(meta.start_pos, meta.end_pos))

    @v_args(meta=True)
    def frac(self, meta, items):
        num, den = [i for i in items if isinstance(i, Expr)]
        return Div(num, den, span=self._span(meta.start_pos, meta.end_pos))

    @v_args(meta=True)
    def derivative(self, meta, items):
        of, wrt = [i for i in items if isinstance(i, Expr)]
        return Deriv(wrt, of=of, span=self._span(meta.start_pos, meta.end_pos))

    @v_args(meta=True)
    def call(self, meta, items):
        (_, name, primes, layer, _, power), arg = items[0], items[1]
        if isinstance(arg, Group):
            arg = arg.arg
        elif not isinstance(arg, Expr):
            arg = next(i for i in items[1:] if isinstance(i, Expr))
        span = self._span(meta.start_pos, meta.end_pos)
        call = Call(name, arg, primes, layer, span=span)
        return call if power is None else Pow(call, Num(power, span=span), span=span)

    def sum_op(self, items):
        return items[0]

    max_op = sum_op

    @v_args(meta=True)
    def iverson(self, meta, items):
        left, right = [i for i in items if isinstance(i, Expr)]
        return Iverson(left, right, span=self._span(meta.start_pos, meta.end_pos))

    @v_args(meta=True)
    def max_of(self, meta, items):
        return MaxOf(tuple(i for i in items if isinstance(i, Expr)),
                     span=self._span(meta.start_pos, meta.end_pos))

    def index_bracket(self, items):
        return items[0]

    def diff_op(self, items):
        return ("diff", next(i for i in items if isinstance(i, NodeRef)))

    diff_op_plain = diff_op

    @v_args(meta=True)
    def prefixed(self, meta, items):
        return self._apply(items[0], items[1], meta)

    @v_args(meta=True)
    def prefixed_after(self, meta, items):
        factors, op, body = items[0], items[-2], items[-1]
        applied = self._apply(op, body, meta)
        times = [_OPS.get(str(i).strip(), "cdot") for i in items[1:-2] if isinstance(i, Token)]
        return Mul(_factors(factors) + (applied,), _ops(factors) + tuple(times or [""]),
                   span=self._span(meta.start_pos, meta.end_pos))

    prefixed_after_times = prefixed_after

    def _apply(self, op, body: Expr, meta) -> Expr:
        span = self._span(meta.start_pos, meta.end_pos)
        if op[0] == "diff":
            return Deriv(op[1], operand=body, span=span)
        if op[0] == "function":
            raise self._error(f"{op[1]} needs its argument in parentheses", op[4])
        kind, letters, lower, upper, start = op
        if kind == "max":
            return Max(letters, body, lower, upper, span=(start + self.offset, span[1]))
        for index in reversed(letters):
            body = Sum(index, body, lower, upper, span=(start + self.offset, span[1]))
        return body


def _constant(cls: type[Expr]):
    """The rule for a token that stands alone, with no parts: n, e, pi, epsilon, T, cdots."""
    def rule(self, items):
        tok = items[0]
        return cls(span=self._span(tok.start_pos, tok.end_pos))

    return rule


for _rule, _cls in {"size": Size, "euler": Euler, "pi": Pi, "epsilon": Epsilon,
                    "steps": Steps, "dots": Dots}.items():
    setattr(Builder, _rule, _constant(_cls))


def _terms(expr: Expr) -> tuple[Expr, ...]:
    """Terms of a sum, with ``\\cdots 0`` (dots followed by a term, no plus) split in two."""
    if isinstance(expr, Add):
        return expr.terms
    if isinstance(expr, Mul) and isinstance(expr.factors[0], Dots):
        rest = expr.factors[1:]
        return (expr.factors[0], rest[0] if len(rest) == 1 else Mul(rest, span=expr.span))
    return (expr,)


def _factors(expr: Expr) -> tuple[Expr, ...]:
    return expr.factors if isinstance(expr, Mul) else (expr,)


def _ops(expr: Expr) -> tuple[str, ...]:
    """How the factors of a product meet, one entry per pair ("" when side by side)."""
    return tuple(expr.op(i) for i in range(len(expr.factors) - 1)) if isinstance(expr, Mul) \
        else ()


#: The product operators as written -> their name (between matrices: "*" and "odot" are
#: entrywise, the others the matrix product).
_OPS = {"*": "*", "@": "@", "\\odot": "odot", "\\circ": "odot", "⊙": "odot", "∘": "odot"}
