r"""What a formula in seed 001's matrix notation means for one network and a batch.

A batch is a matrix with one sample per row (design.md section 2): X = A^(0) is (n, n_0),
A^(l) and Z^(l) are (n, n_l), W^(l) is (n_l, n_{l-1}) with W^(l)[j, k] = w_jk^(l), b^(l) is a
row (1, n_l), Y is (n, n_L) and Delta^(l) = dC/dZ^(l) is (n, n_l) -- of the batch loss C, so
a mean reduction's 1/n sits in it.  \mathbf{1} is the column of n ones.

Between two matrices a product written side by side, with \cdot or @ is the matrix product;
\odot, \circ and * are entrywise and need equal shapes, as the algebra does (not NumPy's
broadcasting); a sum too, except that a row (a bias b^(l)) adds to every row of a matrix.
Functions apply entrywise: g'^{(l)}(Z^{(l)}), \sigma(Z)(1 - \sigma(Z)); a number plus a matrix
adds to every entry; \sum_i of a matrix sums its rows (the samples).

Matrices are lazy (:class:`Mat`): a shape, names for its rows and columns ("n", "n_{L-1}"),
and a function giving entry (i, j) as a SymPy expression in per-sample quantities
(``AtSample(b, a_j^(l))``).  Only the entries a check reads are ever built, so a formula about
a 784-256-256-10 network costs what its sampled entries cost.  A product or sum of matrices
whose shapes do not fit raises :class:`ShapeMismatch`, which a check reports as a finding
with both shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import sympy

from ..chain import BATCH_SIZE
from ..notation import Node
from .meaning import _NAMED, Meaning
from .scope import AtSample, FreeIndexError, Scope
from .syntax import (
    Add,
    Call,
    Deriv,
    Div,
    Expr,
    Group,
    Loss,
    MatrixRef,
    Mul,
    Neg,
    Num,
    Pow,
    Sum,
    Transpose,
    walk,
)
from .tokens import FormulaError

__all__ = ["Mat", "MatrixMeaning", "ShapeMismatch", "is_matrix_formula"]

Entry = Callable[[int, int], sympy.Expr]
#: Terms one entry of a matrix expression may write out (products of wide matrices multiply).
MAX_ENTRY_TERMS = 100_000


@dataclass(frozen=True)
class Mat:
    """A lazy matrix: ``rows`` x ``cols``, named ``names`` ("n", "n_{L-1}"), entries on demand."""

    rows: int
    cols: int
    names: tuple[str, str]
    entry: Entry
    #: Terms one entry writes out (a product of an (r, k) and a (k, c) matrix: k per entry).
    cost: int = 1

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def label(self) -> str:
        """``(n, n_{L-1})`` -- and the numbers, for this network."""
        return f"({self.names[0]}, {self.names[1]}) = ({self.rows}, {self.cols})"

    @property
    def T(self) -> Mat:
        """The transpose."""
        return Mat(self.cols, self.rows, self.names[::-1], lambda i, j: self.entry(j, i),
                   self.cost)

    def map(self, f: Callable[[sympy.Expr], sympy.Expr]) -> Mat:
        return Mat(self.rows, self.cols, self.names, lambda i, j: f(self.entry(i, j)), self.cost)

    @property
    def is_vector(self) -> bool:
        """A row or column by its nature (b^(l), column sums, ones), not by a width of 1."""
        return "1" in self.names


class ShapeMismatch(FormulaError):
    """Two matrices whose shapes do not fit the operation between them."""

    def __init__(self, what: str, operands: tuple[str, ...], shapes: tuple[Mat, ...], **kw):
        self.operands, self.shapes = operands, shapes
        super().__init__(what, **kw)


def is_matrix_formula(expr: Expr) -> bool:
    """Whether a formula names a batch matrix (W^{(l)}, A^{(l)}, X, \\Delta^{(l)}, ...)."""
    return any(isinstance(e, MatrixRef | Transpose) for e in walk(expr))


def _entrywise(a: Mat, b: Mat, f, what: str, meaning, spans, *, row: bool = False) -> Mat:
    """``f(a_ij, b_ij)`` of two matrices of equal shapes -- the algebra, not NumPy's
    broadcasting: a (n, 1) column entrywise a (1, m) row is a shape finding, even though
    NumPy would make the outer product of it.  With ``row`` (a sum), a row such as a bias
    b^(l), (1, n_l), adds to every row of an (n, n_l) matrix."""
    def spread_row(x: Mat, y: Mat) -> bool:
        return row and x.rows == 1 and x.names[0] == "1" and y.names[0] == "n" \
            and x.cols == y.cols
    if a.shape != b.shape and not (spread_row(a, b) or spread_row(b, a)):
        raise meaning.shape_error(f"{what} needs equal shapes", (a, b), spans)
    rows, cols = max(a.rows, b.rows), a.cols
    names = (a.names[0] if a.rows == rows else b.names[0],
             a.names[1] if a.cols == cols else b.names[1])
    return Mat(rows, cols, names, lambda i, j: f(a.entry(i if a.rows > 1 else 0,
                                                          j if a.cols > 1 else 0),
                                                 b.entry(i if b.rows > 1 else 0,
                                                         j if b.cols > 1 else 0)),
               meaning.within(a.cost + b.cost, spans))


def _matmul(a: Mat, b: Mat, meaning, spans) -> Mat:
    if a.cols != b.rows:
        raise meaning.shape_error(f"a matrix product needs the columns of the first "
                                  f"({a.names[1]}) to match the rows of the second "
                                  f"({b.names[0]})", (a, b), spans)
    return Mat(a.rows, b.cols, (a.names[0], b.names[1]),
               lambda i, j: sympy.Add(*[a.entry(i, k) * b.entry(k, j) for k in range(a.cols)]),
               meaning.within(a.cols * (a.cost + b.cost), spans))


def _scalar_op(value, f) -> Mat | sympy.Expr:
    return value.map(f) if isinstance(value, Mat) else f(value)


class MatrixMeaning(Meaning):
    """:class:`Meaning` with seed 001's batch matrices; scalars stay SymPy expressions."""

    def __init__(self, engine, text: str, **kwargs):
        kwargs.setdefault("batch", True)
        super().__init__(engine, text, **kwargs)
        self.scale = 1 / BATCH_SIZE if self.graph.spec.reduction == "mean" else sympy.S.One

    def within(self, cost: int, spans) -> int:
        """``cost`` if one entry's terms stay within :data:`MAX_ENTRY_TERMS`, else an error."""
        if cost > MAX_ENTRY_TERMS:
            raise FormulaError(f"one entry of this product writes out {cost:,} terms; the limit "
                               f"is {MAX_ENTRY_TERMS:,}", text=self.text, position=spans[0][0],
                               where=self.source,
                               hint="Check the formula on a smaller network")
        return cost

    def shape_error(self, what: str, mats: tuple[Mat, ...], spans) -> ShapeMismatch:
        texts = tuple(self.text[s[0]:s[1]].strip() for s in spans)
        detail = "; ".join(f"{t} is {m.label}" for t, m in zip(texts, mats))
        return ShapeMismatch(f"{what}: {detail}", texts, mats, text=self.text,
                             position=spans[0][0], where=self.source)

    # --------------------------------------------------------------- names
    def width_name(self, layer: int) -> str:
        """n_L, n_{L-1}, ..., n_0: the name of a layer's width, as seed 001 writes it."""
        L = self.graph.L
        if layer == 0:
            return "n_0"
        return "n_L" if layer == L else f"n_{{L-{L - layer}}}"

    def _per_sample(self, layer: int, symbols, scale=sympy.S.One) -> Mat:
        return Mat(self.batch_size, len(symbols), ("n", self.width_name(layer)),
                   lambda b, j: scale * AtSample(sympy.Integer(b), symbols[j]))

    def _dense(self, ref: MatrixRef, scope: Scope) -> int:
        layer = self.layer(ref.layer, ref, scope)
        lay = self.graph.layers.get(layer)
        if lay is None or lay.kind != "dense":
            raise self.error(f"{ref.kind}^({layer}) names layer {layer}, which is not a dense "
                             "layer", ref,
                             hint=f"The dense layers are 1..{self.graph.L}")
        return layer

    def _matrix_ref(self, ref: MatrixRef, scope: Scope) -> Mat:
        g = self.graph
        if ref.kind in ("X", "Y", "ones"):
            value = {"X": lambda: self._per_sample(0, g.x),
                     "Y": lambda: self._per_sample(g.L, g.y),
                     "ones": lambda: Mat(self.batch_size, 1, ("n", "1"),
                                         lambda i, j: sympy.S.One)}[ref.kind]()
        elif ref.kind == "A":
            layer = self.layer(ref.layer, ref, scope)
            if not 0 <= layer <= g.L:
                raise self.error(f"A^({layer}) names layer {layer}; A exists in layers "
                                 f"0..{g.L}", ref)
            value = self._per_sample(layer, g.x if layer == 0 else g.layers[layer].outputs)
        else:
            layer = self._dense(ref, scope)
            n_out, n_in = g.widths[layer], g.widths[layer - 1]
            if ref.kind == "W":
                value = Mat(n_out, n_in, (self.width_name(layer), self.width_name(layer - 1)),
                            lambda j, k: g.w[layer][j][k])
            elif ref.kind == "b":
                if g.b[layer] is None:
                    raise self.error(f"layer {layer} has no biases", ref,
                                     hint="Set bias = true in the spec")
                value = Mat(1, n_out, ("1", self.width_name(layer)),
                            lambda i, j: g.b[layer][j])
            elif ref.kind == "Z":
                value = self._per_sample(layer, g.z[layer])
            else:  # Delta^(l) = dC/dZ^(l) of the batch loss
                value = self._per_sample(layer, g.delta[layer], self.scale)
        return value.T if ref.transposed else value

    def _matrix_gradient(self, d: Deriv, scope: Scope) -> Mat:
        """dC/dW^(l), dC/db^(l), dC/dA^(l), dC/dZ^(l), dC/dX of the batch loss C."""
        if not isinstance(d.of, Loss) or d.of.sample is not None:
            raise self.error("a derivative by a matrix is of the batch loss C", d,
                             hint="Write \\frac{\\partial C}{\\partial W^{(l)}}")
        ref, e = d.wrt, self.engine
        shape = self._matrix_ref(ref, scope)
        if ref.kind in ("Y", "ones", "Delta"):
            raise self.error(f"C is differentiated by W, b, A, Z or X, not by {ref.kind}", ref)
        layer = None if ref.kind == "X" else self.layer(ref.layer, ref, scope)

        def batch_total(node: Node) -> sympy.Expr:
            gradient = e.gradient(node)
            return self.scale * sympy.Add(*[AtSample(sympy.Integer(b), gradient)
                                            for b in range(self.batch_size)])

        kinds = {
            "W": lambda i, j: batch_total(Node("w", layer, i, j)),
            "b": lambda i, j: batch_total(Node("b", layer, j)),
            "A": lambda i, j: self.scale * AtSample(sympy.Integer(i), e.gradient(
                Node("x", None, j) if layer == 0 else Node("a", layer, j))),
            "Z": lambda i, j: self.scale * AtSample(sympy.Integer(i),
                                                    e.gradient(Node("z", layer, j))),
            "X": lambda i, j: self.scale * AtSample(sympy.Integer(i),
                                                    e.gradient(Node("x", None, j))),
        }
        plain = shape.T if ref.transposed else shape
        value = Mat(plain.rows, plain.cols, plain.names, kinds[ref.kind])
        return value.T if ref.transposed else value

    def missing(self, expr: Expr, scope: Scope) -> str | None:
        """As :meth:`Meaning.missing`, for the matrices too (W^{(l+1)} past the output)."""
        for e in walk(expr):
            if isinstance(e, MatrixRef) and e.layer is not None:
                try:
                    self._matrix_ref(e, scope)
                except FreeIndexError:
                    raise
                except FormulaError as exc:
                    return f"{self.text[e.span[0]:e.span[1]].strip()}: {exc.what}"
        return super().missing(expr, scope)

    # --------------------------------------------------------- operations
    def _deriv(self, d: Deriv, scope: Scope):
        if isinstance(d.wrt, MatrixRef):
            return self._matrix_gradient(d, scope)
        return super()._deriv(d, scope)

    def _mul(self, m: Mul, scope: Scope):
        value, span = self.lower(m.factors[0], scope), m.factors[0].span
        for i, factor in enumerate(m.factors[1:]):
            right = self.lower(factor, scope)
            spans = ((m.factors[0].span[0], span[1]), factor.span)
            if isinstance(value, Mat) and isinstance(right, Mat):
                if m.op(i) in ("*", "odot"):
                    value = _entrywise(value, right, sympy.Mul, "an entrywise product", self,
                                       spans)
                else:
                    value = _matmul(value, right, self, spans)
            elif isinstance(value, Mat) or isinstance(right, Mat):
                scalar, mat = (value, right) if isinstance(right, Mat) else (right, value)
                value = mat.map(lambda e, s=scalar: s * e)
            else:
                value = value * right
            span = factor.span
        return value

    def _add(self, a: Add, scope: Scope):
        value = self.lower(a.terms[0], scope)
        for term in a.terms[1:]:
            right = self.lower(term, scope)
            if isinstance(value, Mat) and isinstance(right, Mat):
                value = _entrywise(value, right, sympy.Add, "a sum of matrices", self,
                                   (a.terms[0].span, term.span), row=True)
            elif isinstance(value, Mat):
                value = value.map(lambda e, r=right: e + r)
            elif isinstance(right, Mat):
                value = right.map(lambda e, v=value: v + e)
            else:
                value = value + right
        return value

    def _div(self, d: Div, scope: Scope):
        num, den = self.lower(d.num, scope), self.lower(d.den, scope)
        if isinstance(den, Mat):
            if isinstance(num, Mat):
                return _entrywise(num, den, lambda u, v: u / v, "an entrywise quotient", self,
                                  (d.num.span, d.den.span))
            return den.map(lambda e: num / e)
        if den == 0:
            raise self.error("division by zero", d.den)
        return _scalar_op(num, lambda e: e / den)

    def _pow(self, p: Pow, scope: Scope):
        base = self.lower(p.base, scope)
        if not isinstance(base, Mat):
            return super()._pow(p, scope)
        exponent = self.lower(p.exp, scope)
        if isinstance(exponent, Mat) or not exponent.is_Number or abs(exponent) > 1000:
            raise self.error("a matrix is raised to a small number only (entrywise)", p.exp)
        return base.map(lambda e: e ** exponent)

    def _transpose(self, t: Transpose, scope: Scope):
        value = self.lower(t.arg, scope)
        if isinstance(value, Mat):
            return value.T
        if isinstance(t.arg, Num) and value == 1:  # 1^T: the row of n ones
            return Mat(1, self.batch_size, ("1", "n"), lambda i, j: sympy.S.One)
        return value

    def _call(self, call: Call, scope: Scope):
        arg = self.lower(call.arg, scope)
        if not isinstance(arg, Mat):
            return super()._call(call, scope)
        cls = self._activation(call, scope) if call.name == "g" else _NAMED[call.name]
        f = cls.prime if call.primes else cls
        return arg.map(f)

    def _activation(self, call: Call, scope: Scope) -> type:
        arg = call.arg.arg if isinstance(call.arg, Group) else call.arg
        if call.layer is None and isinstance(arg, MatrixRef) and arg.layer is not None:
            call = replace(call, layer=arg.layer)
        return super()._activation(call, scope)

    def _sum(self, s: Sum, scope: Scope):
        if not is_matrix_formula(s.body):
            return super()._sum(s, scope)
        body = self.lower(s.body, scope)
        n = self.batch_size
        bounds = [None if b is None else self.lower(b, scope) for b in (s.lower, s.upper)]
        ok = bounds in ([None, None], [0, BATCH_SIZE - 1], [1, BATCH_SIZE], [0, n - 1], [1, n])
        if not isinstance(body, Mat) or body.names[0] != "n" or not ok:
            raise self.error(f"\\sum_{s.index} of a matrix sums its rows, the samples: write "
                             f"\\sum_{{{s.index}=1}}^{{n}} of a matrix with one row per sample",
                             s)
        return Mat(1, body.cols, ("1", body.names[1]),
                   lambda i, j: sympy.Add(*[body.entry(b, j) for b in range(n)]),
                   self.within(n * body.cost, (s.span,)))

    def _neg(self, e: Neg, scope: Scope):
        return _scalar_op(self.lower(e.arg, scope), lambda v: -v)


MatrixMeaning.TABLE = {**Meaning.TABLE, MatrixRef: MatrixMeaning._matrix_ref,
                       Transpose: MatrixMeaning._transpose, Mul: MatrixMeaning._mul,
                       Add: MatrixMeaning._add, Div: MatrixMeaning._div,
                       Pow: MatrixMeaning._pow, Call: MatrixMeaning._call,
                       Sum: MatrixMeaning._sum, Deriv: MatrixMeaning._deriv,
                       Neg: MatrixMeaning._neg}
