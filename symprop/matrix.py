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
derivatives (identical, or equal in 50 digits at two random points: :meth:`_Check.equal`).  Every entry is checked for small layers, a
spread sample of entries for large ones.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass

import mpmath
import sympy
from sympy.matrices.expressions.matexpr import MatrixElement

from .chain import BATCH_SIZE
from .derivation import Backprop
from .matrix_maps import map_steps, reads_or_makes_maps
from .matrix_notation import MatrixName, entrywise_symbol, matrix_of, matrix_symbol
from .matrix_steps import (
    CHECK_BATCH,
    ROW,
    MatrixStep,
    formula_steps,
    gradient_sum_step,
    spread,
)
from .notation import node_of
from .numeric import MPMATH, Evaluator, random_smooth_functions
from .progress import progress

__all__ = ["MatrixForm", "MatrixStep", "matrix_form"]



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


#: Digits of the entry check's evaluation.
_DIGITS = 50


class _Check:
    """Replaces matrix elements by per-sample scalars and compares with the engine."""

    def __init__(self, engine: Backprop):
        self.engine = engine
        self.graph = engine.graph
        self.n = sympy.Integer(CHECK_BATCH)
        self.scale = 1 / self.n if self.graph.spec.reduction == "mean" else sympy.S.One

    @functools.cache  # noqa: B019 - one checker per matrix form, dropped with it
    def _copies(self, b: int) -> dict:
        """Symbol -> its copy for sample b (x, y, a, z, the accumulated gradients and the
        named quantities differ per sample; parameters do not)."""
        g = self.graph
        per_sample = [*g.x, *g.y]
        for layer in g.layers.values():
            per_sample += [*layer.outputs, *layer.entries, *layer.adjoints, *layer.named]
        return {s: sympy.Symbol(f"{s.name}@{b}", real=True) for s in per_sample}

    def copy(self, expr: sympy.Expr, b: int) -> sympy.Expr:
        return expr.xreplace(self._copies(b))

    def one_level(self, expr: sympy.Expr, layers: int | tuple[int, ...]) -> sympy.Expr:
        """Replace the accumulated-gradient symbols of ``layers`` (delta, dC_0/da) by their
        compact definitions."""
        e, g = self.engine, self.graph
        layers = (layers,) if isinstance(layers, int) else layers
        found = (node_of(s) for s in expr.free_symbols)  # only those present: layers are wide
        return expr.xreplace({d.symbol: e.adjoint_of(d) for d in found
                              if d is not None and d.kind in ("delta", "adj")
                              and d.layer in layers and d.layer <= g.L})

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
                                        else self.one_level(e.dC_da(l, i), g.consumers[l])),
            "dApart": lambda: self.scale * self.one_level(e.contribution(name.via, l, i),
                                                          name.via),
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
        """Equal as functions of their symbols: identical, or equal in 50 digits at two
        random points (every per-sample symbol, parameter and accumulated gradient taken as
        independent).  ``expand(a - b) == 0`` missed identities of logs and quotients and
        took minutes on a custom formula's nested sums."""
        difference = a - b
        if difference == 0:
            return True
        symbols = sorted(difference.free_symbols, key=str)
        generic = random_smooth_functions(self.graph.L)
        with mpmath.workdps(_DIGITS):
            for seed in (1, 2):
                rng = random.Random(seed)
                point = {s: rng.uniform(0.2, 0.9) for s in symbols}
                at = Evaluator(point, backend=MPMATH, generic=generic)
                x, y = at(a), at(b)
                if abs(x - y) > mpmath.mpf(10) ** (20 - _DIGITS) * max(1, abs(x), abs(y)):
                    return False
        return True


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
                   total=1 + L + sum(map(spec.has_bias, range(1, L + 1))) + 2 * (L - 1)
                   if spec.is_dense else None)

    def add(step, layer, lhs, rhs, shape, index, scalar, summed, indices, entrywise=False,
            shows=None):
        """Check ``indices`` of ``rhs`` (batch of two) against ``scalar``; record the step
        (``shows``: the per-sample result its representative entry equals, if not the
        default of its kind)."""
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
                                scalar_display(step, layer, index) if shows is None
                                else shows(index[1]), summed, len(indices), total, entrywise))

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
    loss_indices = spread((CHECK_BATCH, widths[L]))
    for b, j in loss_indices:
        entry = loss_rhs.subs(n, CHECK_BATCH).xreplace(
            {stand_in[g.a[L][j0]]: check.copy(g.a[L][j], b),
             stand_in[g.y[j0]]: check.copy(g.y[j], b)})
        if not check.equal(entry, check.copy(check.scale * engine.loss_derivative(j), b)):
            raise AssertionError(f"matrix form, loss gradient: entry {(b, j)} differs")
    steps.append(MatrixStep("loss", L, dA_out, loss_rhs, ("n", widths[L]), (ROW, j0),
                            loss_rhs, engine.loss_derivative(j0), False, len(loss_indices),
                            CHECK_BATCH * widths[L], entrywise=True))
    if g.layers[L].kind == "dense":
        delta = matrix_symbol("Delta", L, n, widths[L])
        if g.is_elementwise(L):
            rhs = sympy.HadamardProduct(dA_out, matrix_symbol("gprime", L, n, widths[L],
                                                              g.activation[L]))
            add("output delta", L, delta, rhs, ("n", widths[L]), (ROW, j0),
                per_sample(lambda j: check.one_level(engine.dC_dz(L, j), L + 1)), False,
                spread((CHECK_BATCH, widths[L])))
        else:
            # softmax: row b of Delta^(L) is row b of dC/dA^(L) times that sample's Jacobian.
            row = matrix_symbol("dA", L, 1, widths[L])
            rhs = row * matrix_symbol("J", L, widths[L], widths[L])
            indices = [(0, m) for m in range(widths[L])]
            add("output delta", L, delta, rhs, ("n", widths[L]), (0, j0),
                lambda idx: check.copy(check.scale * engine.dC_dz(L, idx[1]), 0), False,
                indices)

    def delta_step(s: int, via: int) -> None:
        """Delta^(s) = dC/dA^(s) o g'(Z^(s)) of a dense layer s, filed under layer ``via``."""
        dA = matrix_symbol("dA", s, n, widths[s])
        G = matrix_symbol("gprime", s, n, widths[s], g.activation[s])
        add("delta", via, matrix_symbol("Delta", s, n, widths[s]), sympy.HadamardProduct(dA, G),
            ("n", widths[s]), (ROW, min(2, widths[s] - 1)),
            per_sample(lambda i: check.one_level(engine.dC_dz(s, i), g.consumers[s])), False,
            spread((CHECK_BATCH, widths[s])), shows=lambda i: engine.dC_dz(s, i))

    for l in range(L, 0, -1):
        if reads_or_makes_maps(g, l):  # conv, pooling, flatten: the correlation form
            for step in map_steps(engine, check, l):
                steps.append(step)
                bar.update()
            continue
        if l < L and len(g.consumers[l]) > 1:  # a skip connection's earlier layer
            steps.append(gradient_sum_step(engine, check, l))
            bar.update()
            if g.layers[l].kind == "dense":
                delta_step(l, l)
        if g.layers[l].kind != "dense":
            for step in formula_steps(engine, check, l):
                steps.append(step)
                bar.update()
                source = step.layer_read
                if source and g.consumers[source] == (l,) and g.layers[source].kind == "dense" \
                        and step.step == "inputs":
                    delta_step(source, l)
            continue
        n_out, n_in = widths[l], widths[l - 1]
        D = matrix_symbol("Delta", l, n, n_out)
        j, k = min(1, n_out - 1), min(2, n_in - 1)
        add("weights", l, matrix_symbol("dW", l, n_out, n_in), D.T * A[l - 1], (n_out, n_in),
            (j, k), batch_sum(lambda idx, l=l: engine.gradient(node_of(g.w[l][idx[0]][idx[1]]))),
            True, spread((n_out, n_in)))
        if g.b[l] is not None:
            add("biases", l, matrix_symbol("db", l, 1, n_out), sympy.OneMatrix(1, n) * D, (n_out,),
                (0, j), batch_sum(lambda idx, l=l: engine.gradient(node_of(g.b[l][idx[1]]))),
                True, [(0, i) for (i,) in spread((n_out,))])
        if l == 1:
            continue
        alone = g.consumers[l - 1] == (l,)
        dA = matrix_symbol("dA" if alone else "dApart", l - 1, n, n_in, via=None if alone else l)
        W = matrix_symbol("W", l, n_out, n_in)
        passed = (lambda i, l=l: engine.dC_da(l - 1, i)) if alone else (
            lambda i, l=l: engine.contribution(l, l - 1, i))
        add("inputs", l, dA, D * W, ("n", n_in), (ROW, k),
            per_sample(lambda i, l=l, passed=passed: check.one_level(passed(i), l)), False,
            spread((CHECK_BATCH, n_in)), shows=passed)
        if alone and g.layers[l - 1].kind == "dense":
            delta_step(l - 1, l)
    bar.close()
    return MatrixForm(tuple(steps), L, spec.reduction)
