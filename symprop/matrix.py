"""The batch (matrix) form of seed 001, derived from the per-sample scalar results.

A batch is a matrix with one sample per row (design.md): X = A^(0) is (n, n_0), W^(l) is
(n_l, n_{l-1}) with W^(l)[j, k] = w_jk^(l).  With Delta^(l) = dC/dZ^(l) (the batch loss C, so
the reduction's 1/n sits in it), seed 001's five steps per layer are

1. dC/dW^(l)     = Delta^(l)T A^(l-1)                    (n_l, n_{l-1})
2. dC/db^(l)     = 1^T Delta^(l), the column sums          (n_l,)
3. dC/dA^(l-1)   = Delta^(l) W^(l)                         (n, n_{l-1})
4. Delta^(l-1)   = dC/dA^(l-1) o g'^(l-1)(Z^(l-1))          (n, n_{l-1})
5. repeat with l - 1.

Nothing here is taken on trust: for every step, SymPy computes the entry of the matrix
expression itself (``(Delta.T * A)[j, k]`` is SymPy's own sum over the batch), the matrix
elements are replaced by the per-sample scalar results of :class:`~symprop.derivation.Backprop`
for a batch of two distinct samples, and the entry must equal the reduction of the per-sample
derivatives exactly (``expand(difference) == 0``).  Every entry is checked for small layers, a
spread sample of entries for large ones.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import sympy
from sympy.matrices.expressions.matexpr import MatrixElement

from .chain import BATCH_SIZE
from .derivation import Backprop
from .matrix_notation import MatrixName, entrywise_symbol, matrix_of, matrix_symbol
from .notation import node_of
from .progress import progress

__all__ = ["MatrixForm", "MatrixStep", "matrix_form"]

#: Sample index of matrix entries, and the batch size of the exact check.
ROW = sympy.Symbol("b", integer=True, nonnegative=True)
CHECK_BATCH = 2
#: At most this many entries of one step are checked (all of them when there are fewer).
MAX_CHECKED = 12


@dataclass(frozen=True)
class MatrixStep:
    """One equation of the batch form, with the proof that it matches the scalar results."""

    #: Which of seed 001's steps: "loss", "output delta", "weights", "biases", "inputs",
    #: "delta".
    step: str
    layer: int
    lhs: sympy.Expr
    rhs: sympy.Expr
    #: Shape in words of the batch size n and the layer widths, e.g. ("n_{L}", "n_{L-1}").
    shape: tuple[int | str, ...]
    #: A representative entry: its indices, SymPy's entry of ``rhs`` there (in matrix
    #: elements), and the per-sample scalar derivative it must equal.
    entry_index: tuple
    entry: sympy.Expr
    scalar: sympy.Expr
    #: True when the scalar is summed over the batch (weights, biases), False per sample.
    summed: bool
    #: Entries checked exactly against the scalar results, and how many there are.
    checked: int
    entries: int
    #: True for an equation that holds entry by entry (the loss gradient, softmax rows).
    entrywise: bool = False


@dataclass(frozen=True)
class MatrixForm:
    """The whole network's batch backward pass, output layer first."""

    steps: tuple[MatrixStep, ...]
    L: int
    reduction: str

    @property
    def layers(self) -> dict[int, list[MatrixStep]]:
        out: dict[int, list[MatrixStep]] = {}
        for s in self.steps:
            out.setdefault(s.layer, []).append(s)
        return out

    def _repr_latex_(self) -> str:
        from .printing.latex import latex

        lines = [f"{latex(s.lhs, self.L)} &= {latex(s.rhs, self.L)}" for s in self.steps]
        return r"$\begin{aligned}" + r"\\".join(lines) + r"\end{aligned}$"


class _Check:
    """Replaces matrix elements by per-sample scalars and compares with the engine."""

    def __init__(self, engine: Backprop):
        self.engine = engine
        self.graph = engine.graph
        self.n = sympy.Integer(CHECK_BATCH)
        self.scale = 1 / self.n if self.graph.spec.reduction == "mean" else sympy.S.One

    @functools.cache  # noqa: B019 - one checker per matrix form, dropped with it
    def _copies(self, b: int) -> dict:
        """Symbol -> its copy for sample b (x, y, a, z and delta differ per sample)."""
        g = self.graph
        per_sample = [*g.x, *g.y]
        for l in range(1, g.L + 1):
            per_sample += [*g.a[l], *g.z[l], *g.delta[l]]
        return {s: sympy.Symbol(f"{s.name}@{b}", real=True) for s in per_sample}

    def copy(self, expr: sympy.Expr, b: int) -> sympy.Expr:
        return expr.xreplace(self._copies(b))

    def one_level(self, expr: sympy.Expr, layer: int) -> sympy.Expr:
        """Replace the delta symbols of ``layer`` by their compact definitions."""
        e, g = self.engine, self.graph
        if layer > g.L:
            return expr
        deltas = (node_of(s) for s in expr.free_symbols)  # only those present: layers are wide
        return expr.xreplace({d.symbol: e.dC_dz(layer, d.j) for d in deltas
                              if d is not None and d.kind == "delta" and d.layer == layer})

    def element(self, name: MatrixName, b: int, i: int) -> sympy.Expr:
        """Per-sample value of entry (b, i) of a batch matrix."""
        e, g, l = self.engine, self.graph, name.layer
        value = {
            "A": lambda: g.a[l][i],
            "X": lambda: g.x[i],
            "Z": lambda: g.z[l][i],
            "Y": lambda: g.y[i],
            "Delta": lambda: self.scale * self.one_level(g.delta[l][i], l),
            "dA": lambda: self.scale * (e.loss_derivative(i) if l == g.L
                                        else self.one_level(e.dC_da(l, i), l + 1)),
            "gprime": lambda: e.activation_derivative(l, i, i),
        }[name.kind]()
        return self.copy(value, b)

    def substitute(self, entry: sympy.Expr) -> sympy.Expr:
        """Matrix elements -> per-sample scalars (W^(l)[j, k] -> w_jk^(l))."""
        g = self.graph

        def value(el):
            name = matrix_of(el.parent)
            r, c = int(el.i), int(el.j)
            if name.kind == "W":
                return g.w[name.layer][r][c]
            if name.kind == "J":
                return self.copy(self.engine.activation_derivative(name.layer, r, c), 0)
            return self.element(name, r, c)
        return entry.replace(lambda e: isinstance(e, MatrixElement),
                             value)

    def equal(self, a: sympy.Expr, b: sympy.Expr) -> bool:
        return sympy.expand(a - b) == 0


def _spread(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """All index tuples of a small shape, else corners plus an even spread (deterministic).

    Positions are picked in row-major order without listing every entry of a big shape.
    """
    total = math.prod(shape)
    if total <= MAX_CHECKED:
        flat = range(total)
    else:
        step = total / MAX_CHECKED
        flat = sorted({0, total - 1, *(int(i * step) for i in range(MAX_CHECKED))})
    return [_unravel(f, shape) for f in flat]


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major index tuple of position ``flat``."""
    out = []
    for size in reversed(shape):
        flat, i = divmod(flat, size)
        out.append(i)
    return tuple(reversed(out))


def _rename_dummy(expr: sympy.Expr) -> sympy.Expr:
    """SymPy's batch summation dummy (_i_1) becomes the row letter b, as the seed writes it."""
    return expr.xreplace({s: ROW for s in expr.atoms(sympy.Dummy)})


def matrix_form(engine: Backprop) -> MatrixForm:
    """Seed 001's steps for every layer, each proven entry by entry against the engine."""
    g = engine.graph
    spec, L, widths = g.spec, g.L, g.widths
    n = BATCH_SIZE
    check = _Check(engine)
    mean = spec.reduction == "mean"
    A = {l: matrix_symbol("X" if l == 0 else "A", None if l == 0 else l, n, widths[l])
         for l in range(L + 1)}
    steps: list[MatrixStep] = []
    bar = progress(what="matrix form: checking entries",
                   total=1 + L + sum(map(spec.has_bias, range(1, L + 1))) + 2 * (L - 1))

    def add(step, layer, lhs, rhs, shape, index, scalar, summed, indices, entrywise=False):
        """Check ``indices`` of ``rhs`` (batch of two) against ``scalar``; record the step."""
        concrete = rhs.subs(n, CHECK_BATCH)
        for idx in indices:
            entry = check.substitute(concrete[idx].doit())
            if not check.equal(entry, scalar(idx)):
                raise AssertionError(f"matrix form, {step} of layer {layer}: entry {idx} "
                                     f"differs from the scalar derivation")
        total = math.prod(concrete.shape)
        bar.update()
        steps.append(MatrixStep(step, layer, lhs, rhs, shape, index,
                                rhs if entrywise else _rename_dummy(rhs[index]),
                                scalar_display(step, layer, index), summed,
                                len(indices), total, entrywise))

    def per_sample(value):
        """The scalar side for entry (b, i): the reduction's factor times sample b's value."""
        return lambda idx: check.copy(check.scale * value(idx[1]), idx[0])

    def batch_sum(value):
        return lambda idx: sympy.Add(*[check.copy(check.scale * value(idx), b)
                                       for b in range(CHECK_BATCH)])

    def scalar_display(step, layer, index):
        """The per-sample scalar result the representative entry equals."""
        if step in ("weights", "biases"):
            node = (g.w[layer][index[0]][index[1]] if step == "weights"
                    else g.b[layer][index[1]])
            return engine.gradient(node_of(node))
        i = index[1]
        return {"loss": lambda: engine.loss_derivative(i),
                "output delta": lambda: engine.dC_dz(layer, i),
                "inputs": lambda: engine.dC_da(layer - 1, i),
                "delta": lambda: engine.dC_dz(layer - 1, i)}[step]()

    # The loss: dC/dA^(L) entry by entry, from dC_0/da_j^(L).
    dA_out = matrix_symbol("dA", L, n, widths[L])
    j0 = min(1, widths[L] - 1)
    stand_in = {g.a[L][j0]: entrywise_symbol("A", L), g.y[j0]: entrywise_symbol("Y", None)}
    entrywise = sympy.factor_terms(engine.loss_derivative(j0).xreplace(stand_in))
    loss_rhs = sympy.Mul(1 / n, entrywise, evaluate=False) if mean else entrywise
    loss_indices = _spread((CHECK_BATCH, widths[L]))
    for b, j in loss_indices:
        entry = loss_rhs.subs(n, CHECK_BATCH).xreplace(
            {stand_in[g.a[L][j0]]: check.copy(g.a[L][j], b),
             stand_in[g.y[j0]]: check.copy(g.y[j], b)})
        if not check.equal(entry, check.copy(check.scale * engine.loss_derivative(j), b)):
            raise AssertionError(f"matrix form, loss gradient: entry {(b, j)} differs")
    steps.append(MatrixStep("loss", L, dA_out, loss_rhs, ("n", widths[L]), (ROW, j0),
                            loss_rhs, engine.loss_derivative(j0), False, len(loss_indices),
                            CHECK_BATCH * widths[L], entrywise=True))
    delta = matrix_symbol("Delta", L, n, widths[L])
    if g.is_elementwise(L):
        rhs = sympy.HadamardProduct(dA_out, matrix_symbol("gprime", L, n, widths[L], g.activation[L]))
        add("output delta", L, delta, rhs, ("n", widths[L]), (ROW, j0),
            per_sample(lambda j: check.one_level(engine.dC_dz(L, j), L + 1)), False,
            _spread((CHECK_BATCH, widths[L])))
    else:
        # softmax: row b of Delta^(L) is row b of dC/dA^(L) times that sample's Jacobian J.
        row = matrix_symbol("dA", L, 1, widths[L])
        rhs = row * matrix_symbol("J", L, widths[L], widths[L])
        indices = [(0, m) for m in range(widths[L])]
        add("output delta", L, delta, rhs, ("n", widths[L]), (0, j0),
            lambda idx: check.copy(check.scale * engine.dC_dz(L, idx[1]), 0), False,
            indices)
    for l in range(L, 0, -1):
        n_out, n_in = widths[l], widths[l - 1]
        D = matrix_symbol("Delta", l, n, n_out)
        j, k = min(1, n_out - 1), min(2, n_in - 1)
        add("weights", l, matrix_symbol("dW", l, n_out, n_in), D.T * A[l - 1], (n_out, n_in),
            (j, k), batch_sum(lambda idx, l=l: engine.gradient(node_of(g.w[l][idx[0]][idx[1]]))),
            True, _spread((n_out, n_in)))
        if g.b[l] is not None:
            add("biases", l, matrix_symbol("db", l, 1, n_out), sympy.OneMatrix(1, n) * D, (n_out,),
                (0, j), batch_sum(lambda idx, l=l: engine.gradient(node_of(g.b[l][idx[1]]))),
                True, [(0, i) for (i,) in _spread((n_out,))])
        if l == 1:
            break
        dA = matrix_symbol("dA", l - 1, n, n_in)
        W = matrix_symbol("W", l, n_out, n_in)
        add("inputs", l, dA, D * W, ("n", n_in), (ROW, k),
            per_sample(lambda i, l=l: check.one_level(engine.dC_da(l - 1, i), l)), False,
            _spread((CHECK_BATCH, n_in)))
        G = matrix_symbol("gprime", l - 1, n, n_in, g.activation[l - 1])
        add("delta", l, matrix_symbol("Delta", l - 1, n, n_in), sympy.HadamardProduct(dA, G),
            ("n", n_in), (ROW, k),
            per_sample(lambda i, l=l: check.one_level(engine.dC_dz(l - 1, i), l)), False,
            _spread((CHECK_BATCH, n_in)))
    bar.close()
    return MatrixForm(tuple(steps), L, spec.reduction)
