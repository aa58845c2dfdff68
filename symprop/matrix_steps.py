"""The steps of seed 001's batch form: the step itself, which entries are checked, and the
steps of every layer without a z, read off its derived letter forms.

A dense layer's steps are matrix products (:mod:`symprop.matrix`).  The other kinds' are
stated entry by entry over the batch, as the letter forms say them -- a layernorm passes back

    (dC/dA^(l-1))_{b,m} = (G_{b,m} gamma_m - (sum_j G_{b,j} gamma_j
                          + Xhat_{b,m} sum_j G_{b,j} gamma_j Xhat_{b,j})/n)/sigma_b,

G = dC/dA^(l) -- and each is checked, for a batch of two samples, against the per-sample
scalar results of the chain-rule engine.  A layer that several layers read (a skip
connection's earlier one) gets a step of its own: the sum of what each passes back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy

from .chain import BATCH_SIZE
from .layers.letters import LETTERS, N, SumJ, SumK, concrete, slot, slot_of
from .layers.symbolic import general
from .matrix_notation import matrix_symbol

__all__ = ["CHECK_BATCH", "MAX_CHECKED", "ROW", "MatrixStep", "formula_steps",
           "gradient_sum_step", "spread", "unravel"]

#: Sample index of matrix entries, and the batch size of the exact check.
ROW = sympy.Symbol("b", integer=True, nonnegative=True)
CHECK_BATCH = 2
#: At most this many entries of one step are checked (all of them when there are fewer).
MAX_CHECKED = 12
_BATCH_LOSS = sympy.Symbol("C", real=True)


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
    #: The layer whose gradient an "inputs" step gives (None for other steps).
    layer_read: int | None = None




def spread(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """All index tuples of a small shape, else corners plus an even spread (deterministic).

    Positions are picked in row-major order without listing every entry of a big shape.
    """
    total = math.prod(shape)
    if total <= MAX_CHECKED:
        flat = range(total)
    else:
        step = total / MAX_CHECKED
        flat = sorted({0, total - 1, *(int(i * step) for i in range(MAX_CHECKED))})
    return [unravel(f, shape) for f in flat]


def unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major index tuple of position ``flat``."""
    out = []
    for size in reversed(shape):
        flat, i = divmod(flat, size)
        out.append(i)
    return tuple(reversed(out))


def _matrix_entry(layer, form: sympy.Expr) -> sympy.Expr:
    """A letter form as the entry (b, letter) of matrices over the batch: G = dC/dA^(l), the
    layers' A, Xhat^(l) and the per-sample mu, sigma; parameters as general nodes."""
    n, l = BATCH_SIZE, layer.index

    def walk(e):
        if isinstance(e, SumK):
            return sympy.Sum(walk(e.args[0]), (LETTERS[e.bound], 0, layer.n_in - 1))
        if isinstance(e, SumJ):
            return sympy.Sum(walk(e.args[0]), (LETTERS[e.bound], 0, layer.width - 1))
        info = slot_of(e)
        if info is not None:
            index = LETTERS[info.letters[0]] if info.letters else 0
            if info.role in layer.roles:
                source = layer.roles[info.role]
                kind = "X" if source == 0 else "A"
                return matrix_symbol(kind, source or None, n, layer.sources_width(source))[
                    ROW, index]
            if info.role in ("out", "grad"):
                kind = "A" if info.role == "out" else "dA"
                return matrix_symbol(kind, l, n, layer.width)[ROW, index]
            if info.role == "named":
                columns = layer.width if info.letters else 1
                return matrix_symbol(info.name, l, n, columns)[ROW, index]
            return general(info.name, l, *info.letters)
        if e == N:
            return sympy.Integer(layer.n_in)
        return e.func(*[walk(a) for a in e.args]) if e.args else e
    return walk(form)


def _value(check, layer, form: sympy.Expr, b: int, binding: dict[str, int]) -> sympy.Expr:
    """A letter form for sample b of the check's batch: G^(l) is the reduction's factor
    times the per-sample accumulated gradient dC_0/da^(l)."""
    def symbol_of(info, indices):
        if info.role == "grad":
            return check.scale * layer.adjoints[indices[0]]
        return layer.symbol_of(info, indices)
    value = concrete(form, binding, symbol_of, layer.n_in, layer.width)
    return check.copy(value, b)


def _passed_back(engine, l: int, source: int) -> sympy.Expr:
    """The matrix that layer l's part of dC/dA^(source) is written to: dC/dA^(source) itself
    when l is its only reader, else l's part of it."""
    g = engine.graph
    width = g.layers[l].sources_width(source)
    alone = g.consumers[source] == (l,)
    return matrix_symbol("dA" if alone else "dApart", source, BATCH_SIZE, width,
                         via=None if alone else l)


def copy_steps(engine, check, l: int) -> list[MatrixStep]:
    """A layer whose nodes copy nodes of the layers it reads (concat): each passes back the
    columns of G^(l) that copy it, checked entry by entry."""
    layer, steps = engine.graph.layers[l], []
    G = matrix_symbol("dA", l, BATCH_SIZE, layer.width)
    m = LETTERS["m"]
    for source, offsets in layer.offsets.items():
        if source == 0:
            continue
        width = layer.sources_width(source)
        rhs = sympy.Add(*[G[ROW, m + offset] for offset in offsets])
        indices = spread((CHECK_BATCH, width))
        for b, i in indices:
            got = sympy.Add(*[check.copy(check.scale * layer.adjoints[i + o], b) for o in offsets])
            if not check.equal(got, check.copy(check.scale * engine.contribution(l, source, i),
                                               b)):
                raise AssertionError(f"matrix form, what layer {l} passes back to layer "
                                     f"{source} differs at entry {(b, i)}")
        steps.append(MatrixStep("inputs", l, _passed_back(engine, l, source)[ROW, m], rhs,
                                ("n", width), (ROW, m), rhs, engine.contribution(l, source, 0),
                                False, len(indices), CHECK_BATCH * width, entrywise=True,
                                layer_read=source))
    return steps


def formula_steps(engine, check, l: int) -> list[MatrixStep]:
    """The batch form of a layer without a z: its parameters' gradients (summed over the
    batch) and what it passes back to each layer it reads, each checked entry by entry."""
    g = engine.graph
    layer = g.layers[l]
    if not hasattr(layer, "forms"):
        return copy_steps(engine, check, l)
    forms = layer.forms
    steps = []
    for kind, gradient in forms.param_gradients.items():
        spec = layer.param_specs[kind]
        params = [p for p in layer.parameters if p.kind == kind]
        summand = _matrix_entry(layer, gradient)
        if "j" not in spec.letters:
            summand = sympy.Sum(summand, (LETTERS["j"], 0, layer.width - 1))
        rhs = sympy.Sum(summand, (ROW, 0, BATCH_SIZE - 1))
        picked = [params[int(i)] for (i,) in spread((len(params),))]
        for p in picked:
            binding = dict(zip(spec.letters, p.indices))
            entries = range(layer.width) if "j" not in binding else [binding["j"]]
            got = sympy.Add(*[_value(check, layer, gradient, b, {**binding, "j": j})
                              for b in range(CHECK_BATCH) for j in entries])
            truth = sympy.Add(*[check.copy(check.scale * layer.adjoints[i]
                                           * engine.local(l, i, p.symbol), b)
                                for b in range(CHECK_BATCH) for i in layer.param_entries(p)])
            if not check.equal(got, truth):
                raise AssertionError(f"matrix form, the gradient of {p} differs")
        lhs = sympy.Derivative(_BATCH_LOSS, _matrix_entry(layer, slot_param(kind, spec.letters)))
        first = params[0]
        steps.append(MatrixStep("parameters", l, lhs, rhs, spec.shape, first.indices, rhs,
                                engine.gradient(first), True, len(picked), len(params),
                                entrywise=True))
    for role, vjp in forms.vjp.items():
        source = layer.roles[role]
        if source == 0:
            continue
        width = layer.sources_width(source)
        lhs_matrix = _passed_back(engine, l, source)
        indices = spread((CHECK_BATCH, width))
        for b, m in indices:
            got = _value(check, layer, vjp, b, {"m": m})
            truth = check.copy(check.scale * engine.contribution(l, source, m), b)
            if not check.equal(got, truth):
                raise AssertionError(f"matrix form, what layer {l} passes back to layer "
                                     f"{source} differs at entry {(b, m)}")
        rhs = _matrix_entry(layer, vjp)
        steps.append(MatrixStep("inputs", l, lhs_matrix[ROW, LETTERS["m"]], rhs,
                                ("n", width), (ROW, LETTERS["m"]), rhs,
                                engine.contribution(l, source, 0), False, len(indices),
                                CHECK_BATCH * width, entrywise=True, layer_read=source))
    return steps


def slot_param(kind: str, letters: str) -> sympy.Symbol:
    return slot("param", kind, letters)


def gradient_sum_step(engine, check, l: int) -> MatrixStep:
    """dC/dA^(l) of a layer several layers read: the sum of what each passes back."""
    g = engine.graph
    width, n = g.widths[l], BATCH_SIZE
    parts = [matrix_symbol("dApart", l, n, width, via=c)[ROW, LETTERS["m"]]
             for c in g.consumers[l]]
    indices = spread((CHECK_BATCH, width))
    for b, m in indices:
        got = sympy.Add(*[check.copy(check.scale * engine.contribution(c, l, m), b)
                          for c in g.consumers[l]])
        if not check.equal(got, check.copy(check.scale * engine.dC_da(l, m), b)):
            raise AssertionError(f"matrix form, the gradient of layer {l} differs at {(b, m)}")
    lhs = matrix_symbol("dA", l, n, width)[ROW, LETTERS["m"]]
    return MatrixStep("gradient", l, lhs, sympy.Add(*parts), ("n", width),
                      (ROW, LETTERS["m"]), sympy.Add(*parts), engine.dC_da(l, 0), False,
                      len(indices), CHECK_BATCH * width, entrywise=True)
