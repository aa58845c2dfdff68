"""The usual mistakes in a matrix-form formula, a table tried in order (see
:mod:`.matrix_formula`): each row makes edited copies of the formula -- its syntax tree and
the text edits that write the correction in the user's own notation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from ..formula.matrices import Mat, MatrixMeaning
from ..formula.scope import Scope
from ..formula.syntax import Add, Call, Expr, Group, Layer, MatrixRef, Mul, Transpose, rebuild, walk
from ..formula.tokens import FormulaError
from .index_mistakes import Mistake

__all__ = ["MATRIX_MISTAKES", "MistakeContext", "matrix_text", "wrapped"]


def _latex(text: str) -> bool:
    return "\\" in text or "{" in text


def matrix_text(ref: MatrixRef, latex: bool) -> str:
    """A matrix in the style the user typed: W^{(L)\\top}, Delta^(2)^T, \\mathbf{1}."""
    name = {"Delta": "\\Delta" if latex else "Delta",
            "ones": "\\mathbf{1}" if latex else "ones"}.get(ref.kind, ref.kind)
    if ref.layer is None:
        return name + (("^\\top" if latex else "^T") if ref.transposed else "")
    if latex:
        return f"{name}^{{({ref.layer.text()}){chr(92) + 'top' if ref.transposed else ''}}}"
    return f"{name}^({ref.layer.text()})" + ("^T" if ref.transposed else "")


def wrapped(text: str, latex: bool) -> str:
    return f"\\left({text}\\right)" if latex else f"({text})"


def _transposed_text(ctx, e: Expr) -> str:
    """The text of ``e`` transposed: W^{(l)\\top} for a matrix, the inside of M^\\top, else
    (..)^\\top."""
    if isinstance(e, MatrixRef):
        return matrix_text(replace(e, transposed=not e.transposed), ctx.latex)
    if isinstance(e, Transpose):
        return ctx.text_of(e.arg)
    inner = ctx.text_of(e.arg) if isinstance(e, Group) else ctx.text_of(e)
    return wrapped(inner, ctx.latex) + ("^\\top" if ctx.latex else "^T")


def _flip(e: Expr) -> Expr:
    if isinstance(e, MatrixRef):
        return replace(e, transposed=not e.transposed)
    return e.arg if isinstance(e, Transpose) else Transpose(e, span=e.span)


class MistakeContext:
    def __init__(self, meaning: MatrixMeaning, claim: Expr, scope: Scope | None = None):
        self.meaning, self.text, self.claim = meaning, meaning.text, claim
        #: The letters' values of the case that failed (l = 2 in a general formula).
        self.scope = scope or Scope()
        self.latex = _latex(meaning.text)
        self.L = meaning.graph.L

    def value(self, e: Expr):
        """What ``e`` is at the failing case (a :class:`Mat`, a number), or None."""
        try:
            return self.meaning.lower(e, self.scope)
        except FormulaError:
            return None

    def layer_of(self, layer: int) -> Layer:
        """Layer ``layer`` as the formula writes layers: as one of its own matrices does
        (A^{(l-1)}, W^{(L)}, Z^{(2)}), else relative to its letter, to L, or as a number."""
        refs = [e for e in walk(self.claim) if isinstance(e, MatrixRef) and e.layer is not None]
        for ref in refs:
            try:
                if self.meaning.layer(ref.layer, ref, self.scope) == layer:
                    return ref.layer
            except FormulaError:
                continue
        bases = [r.layer.base for r in refs]
        letter = next((b for b in bases if b in self.scope.bound), None)
        if letter is not None:
            return Layer(letter, layer - self.scope.bound[letter])
        return _layer_like(Layer("L", 0) if "L" in bases or not refs else None, layer, self.L)

    def text_of(self, e: Expr) -> str:
        return self.text[e.span[0]:e.span[1]].strip()

    def swap(self, tree: Expr, old: Expr, new: Expr) -> Expr:
        return rebuild(tree, lambda e: new if e is old else None)


def _is_matrix(e: Expr) -> bool:
    return any(isinstance(x, MatrixRef) for x in walk(e))


def _matrix_products(tree: Expr) -> Iterator[tuple[Mul, int]]:
    """(product, i) for each pair of neighbouring matrix factors i, i + 1."""
    for m in (e for e in walk(tree) if isinstance(e, Mul)):
        for i in range(len(m.factors) - 1):
            if _is_matrix(m.factors[i]) and _is_matrix(m.factors[i + 1]):
                yield m, i


# ------------------------------------------------------------------ mistakes
def _transposes(ctx: MistakeContext, tree: Expr) -> Iterator[Mistake]:
    """(B^T A^T for A B), the result transposed, or one operand transposed."""
    for m, i in _matrix_products(tree):
        if len(m.factors) == 2 and m.op(0) not in ("*", "odot"):
            a, b = m.factors
            new = replace(m, factors=(_flip(b), _flip(a)))
            texts = (_transposed_text(ctx, b), _transposed_text(ctx, a))
            yield Mistake("transpose", f"the result is transposed: {ctx.text_of(m)} is the "
                          f"transpose of {texts[0]} {texts[1]}", ctx.swap(tree, m, new),
                          ((a.span, texts[0]), (b.span, texts[1])))
    yield Mistake("transpose", "the result is transposed", Transpose(Group(tree)),
                  ((tree.span, _transposed_text(ctx, Group(tree, span=tree.span))
                    if not isinstance(tree, Group) else _transposed_text(ctx, tree)),))
    for e in (x for x in walk(tree) if isinstance(x, MatrixRef | Transpose | Group)
              and _is_matrix(x)):
        if isinstance(e, Group) and not isinstance(e.arg, Mul | Add):
            continue
        yield Mistake("transpose", f"transpose {ctx.text_of(e)}", ctx.swap(tree, e, _flip(e)),
                      ((e.span, _transposed_text(ctx, e)),))


def _layers(ctx: MistakeContext, tree: Expr) -> Iterator[Mistake]:
    """A matrix of the layer next to the right one (A^{(l)} for A^{(l-1)})."""
    for ref in (e for e in walk(tree) if isinstance(e, MatrixRef) and e.layer is not None):
        for step in (-1, 1):
            new = replace(ref, layer=replace(ref.layer, offset=ref.layer.offset + step))
            yield Mistake("layer", f"{matrix_text(new, ctx.latex)}, not {ctx.text_of(ref)}",
                          ctx.swap(tree, ref, new), ((ref.span, matrix_text(new, ctx.latex)),))


def _orders(ctx: MistakeContext, tree: Expr) -> Iterator[Mistake]:
    for m, i in _matrix_products(tree):
        a, b = m.factors[i], m.factors[i + 1]
        factors = list(m.factors)
        factors[i], factors[i + 1] = b, a
        yield Mistake("order", f"the product's order: {ctx.text_of(b)} comes first",
                      ctx.swap(tree, m, replace(m, factors=tuple(factors))),
                      ((a.span, ctx.text_of(b)), (b.span, ctx.text_of(a))))


def _products(ctx: MistakeContext, tree: Expr) -> Iterator[Mistake]:
    """A matrix product where an entrywise one belongs, or the reverse."""
    odot = " \\odot " if ctx.latex else " * "
    for m, i in _matrix_products(tree):
        entrywise = m.op(i) in ("*", "odot")
        ops = tuple(m.op(k) for k in range(len(m.factors) - 1))
        ops = ops[:i] + ("" if entrywise else "odot",) + ops[i + 1:]
        gap = (m.factors[i].span[1], m.factors[i + 1].span[0])
        what = "a matrix product" if entrywise else "an entrywise product"
        yield Mistake("product", f"{ctx.text_of(m.factors[i])} and "
                                 f"{ctx.text_of(m.factors[i + 1])} meet in {what}",
                      ctx.swap(tree, m, replace(m, ops=ops)),
                      ((gap, " " if entrywise else odot),))


def _prime_call(layer: Layer, kind: str, latex: bool) -> str:
    z = matrix_text(MatrixRef(kind, layer), latex)
    return f"g^{{\\prime ({layer.text()})}}\\left({z}\\right)" if latex else \
        f"g'^({layer.text()})({z})"


def _layer_like(original: Layer | None, layer: int, L: int) -> Layer:
    if original is not None and original.base == "L":
        return Layer("L", layer - L)
    return Layer(None, layer)


def _missing_g_primes(ctx: MistakeContext, tree: Expr) -> Iterator[Mistake]:
    """dC/dA^{(l)} without its entrywise g'^{(l)}(Z^{(l)}) wherever it stands: the whole side,
    inside parentheses ((\\Delta^{(3)} W^{(3)})^\\top A^{(1)}), or the first factors of a
    product -- each place whose value is an (n, n_l) matrix of a layer with an elementwise g."""
    g = ctx.meaning.graph
    hidden = {l for l in range(1, g.L + 1) if l in g.activation and g.is_elementwise(l)}
    widths = {ctx.meaning.width_name(l): l for l in range(g.L + 1)}
    odot = " \\odot " if ctx.latex else " * "

    def layers(e: Expr) -> list[int]:
        value = ctx.value(e)
        if not isinstance(value, Mat) or value.names[0] != "n":
            return []
        named = widths.get(value.names[1])
        same = [l for l in sorted(hidden) if g.widths[l] == value.cols and l != named]
        return ([named] if named in hidden else []) + same

    def factor(l: int) -> tuple[Call, str]:
        layer = ctx.layer_of(l)
        return (Call("g", MatrixRef("Z", layer), 1, layer),
                _prime_call(layer, "Z", ctx.latex))

    # the whole side
    for l in layers(tree):
        call, text = factor(l)
        inner = Group(tree, span=tree.span) if isinstance(tree, Add) else tree
        body = ctx.text_of(tree)
        new_text = (wrapped(body, ctx.latex) if isinstance(tree, Add) else body) + odot + text
        yield Mistake("g_prime", f"multiply entrywise by {text}",
                      Mul((inner, call), ("odot",), span=tree.span), ((tree.span, new_text),))
    # inside parentheses
    for group in (e for e in walk(tree) if isinstance(e, Group) and e is not tree):
        for l in layers(group.arg):
            call, text = factor(l)
            arg = group.arg
            inner = Group(arg, span=arg.span) if isinstance(arg, Add) else arg
            body = ctx.text_of(arg)
            new_text = (wrapped(body, ctx.latex) if isinstance(arg, Add) else body) + odot + text
            new = replace(group, arg=Mul((inner, call), ("odot",), span=arg.span))
            yield Mistake("g_prime", f"multiply {ctx.text_of(group)} entrywise by {text}",
                          ctx.swap(tree, group, new), ((arg.span, new_text),))
    # after the first factors of a product: (A B) C read left to right
    for m in (e for e in walk(tree) if isinstance(e, Mul)):
        for i in range(len(m.factors) - 1):
            first = Mul(m.factors[:i + 1], tuple(m.op(k) for k in range(i)),
                        span=(m.factors[0].span[0], m.factors[i].span[1])) if i else m.factors[0]
            for l in layers(first):
                call, text = factor(l)
                ops = tuple(m.op(k) for k in range(len(m.factors) - 1))
                new = replace(m, factors=m.factors[:i + 1] + (call,) + m.factors[i + 1:],
                              ops=ops[:i] + ("odot",) + ops[i:])
                end = m.factors[i].span[1]
                yield Mistake("g_prime", f"multiply {ctx.text_of(first)} entrywise by {text}",
                              ctx.swap(tree, m, new), (((end, end), odot.rstrip() + " " + text),))


def _g_primes(ctx: MistakeContext, tree: Expr) -> Iterator[Mistake]:
    g = ctx.meaning.graph
    hidden = [l for l in range(1, g.L + 1) if l in g.activation and g.is_elementwise(l)]
    calls = [c for c in walk(tree) if isinstance(c, Call) and _is_matrix(c)]
    yield from _missing_g_primes(ctx, tree)
    for call in calls:
        arg = call.arg.arg if isinstance(call.arg, Group) else call.arg
        if not isinstance(arg, MatrixRef) or arg.layer is None:
            continue
        try:
            current = ctx.meaning.layer(arg.layer, arg, ctx.scope)
        except FormulaError:
            continue
        for l in hidden:  # g' of the wrong layer, written as the argument writes its layer
            if l == current:
                continue
            layer = replace(arg.layer, offset=arg.layer.offset + l - current)
            new = replace(call, arg=replace(arg, layer=layer), layer=layer if call.layer else None)
            yield Mistake("g_prime", f"g' of layer {layer.text()}, not {arg.layer.text()}",
                          ctx.swap(tree, call, new),
                          ((call.span, _prime_call(layer, arg.kind, ctx.latex)),))
        if arg.kind in ("A", "Z") and call.primes:  # g'(A) for g'(Z)
            other = {"A": "Z", "Z": "A"}[arg.kind]
            new_arg = replace(arg, kind=other)
            yield Mistake("a_z", f"g' reads {matrix_text(new_arg, ctx.latex)}, not "
                                 f"{ctx.text_of(arg)}",
                          ctx.swap(tree, arg, new_arg),
                          ((arg.span, matrix_text(new_arg, ctx.latex)),))


def _axes(ctx: MistakeContext, tree: Expr) -> Iterator[Mistake]:
    """The column of ones on the wrong side: M 1 (row sums) for 1^T M (column sums)."""
    for m in (e for e in walk(tree) if isinstance(e, Mul) and len(e.factors) == 2):
        a, b = m.factors
        ones = [f for f in (a, b) if isinstance(f, MatrixRef | Transpose)
                and any(isinstance(x, MatrixRef) and x.kind == "ones" for x in walk(f))]
        if not ones:
            continue
        other = b if ones[0] is a else a
        row = MatrixRef("ones", transposed=True)
        new = Mul((row, other), span=m.span)
        text = matrix_text(row, ctx.latex) + " " + ctx.text_of(other)
        yield Mistake("axis", "sum the columns over the samples: "
                              f"{matrix_text(row, ctx.latex)} on the left",
                      ctx.swap(tree, m, new), ((m.span, text),))


#: Matrix mistakes, most likely first.
MATRIX_MISTAKES: tuple[Callable[[MistakeContext, Expr], Iterator[Mistake]], ...] = (
    _transposes, _g_primes, _products, _orders, _layers, _axes)


