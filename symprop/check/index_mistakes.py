"""The usual mistakes in a formula in index notation, a table tried in order (see
:mod:`.diagnosis`): each row of :data:`MISTAKES` makes edited copies of the formula's syntax
tree ("replace a_{2}^{(L)} with a_{2}^{(L-1)}"), each a :class:`Mistake` with the text edits
that write the correction in the user's own notation.  The matrix form has its own table
(:mod:`.matrix_mistakes`), of the same :class:`Mistake`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from ..formula.meaning import Meaning, Scope
from ..formula.parser import FormulaError
from ..formula.syntax import (
    Add,
    Call,
    Deriv,
    Expr,
    Group,
    Layer,
    Mul,
    Neg,
    NodeRef,
    Shifted,
    Sum,
    rebuild,
    walk,
)
from .wording import node_text, prime_text

__all__ = ["MISTAKES", "Mistake", "MistakeContext"]


@dataclass(frozen=True)
class Mistake:
    """One candidate correction: the edited tree, what to tell the user, and the text edits."""

    category: str
    fix: str
    tree: Expr
    edits: tuple[tuple[tuple[int, int], str], ...]
    #: Variants of one correction (the same g' over j or over k): the first confirmed counts.
    group: str = ""
    #: Ranked after the other findings of an exact fix (a restatement of a definition).
    later: bool = False


@dataclass
class MistakeContext:
    """What the rows read: the formula's meaning and text, the case that failed, and the g'
    factors the true derivative has that the formula lacks (layer, node)."""

    meaning: Meaning
    text: str
    latex: bool
    scope: Scope
    max_width: int
    missing_primes: list[tuple[int, int]]
    #: Whether the formula spells its nodes as Nielsen does (a^{l-1}_k).
    nielsen: bool = False
    #: The nodes of the true result (kind, layer, indices), for a node swapped for one of
    #: them that differs in more than one index.
    truth_nodes: tuple = ()


def _groups(tree: Expr) -> dict[NodeRef, list[NodeRef]]:
    """Node references grouped by what they name."""
    groups: dict[NodeRef, list[NodeRef]] = {}
    for e in walk(tree):
        if isinstance(e, NodeRef):
            groups.setdefault(e, []).append(e)
    return groups


def _targets(tree: Expr) -> Iterator[tuple[NodeRef, tuple[NodeRef, ...]]]:
    """What an edit may change: every occurrence of a node together, then each one alone."""
    for ref, occurrences in _groups(tree).items():
        yield ref, tuple(occurrences)
        if len(occurrences) > 1:
            for occurrence in occurrences:
                yield ref, (occurrence,)


def _node_edits(ctx: MistakeContext, tree, occurrences: tuple[NodeRef, ...], new: NodeRef,
                category: str, what: str) -> Mistake:
    spans = {o.span for o in occurrences}
    new_text = node_text(new, ctx.latex)
    old_text = ctx.text[occurrences[0].span[0]:occurrences[0].span[1]].strip()
    fix = f"replace {old_text} with {new_text}" + (f" ({what})" if what else "")
    edits = tuple((o.span, new_text) for o in occurrences)
    changed = rebuild(tree, lambda e: replace(new, span=e.span)
                      if isinstance(e, NodeRef) and e.span in spans and e == occurrences[0]
                      else None)
    return Mistake(category, fix, changed, edits)


def _zero(ctx: MistakeContext, base: str | None) -> int:
    """The layer a layer spelling counts from: 0 for a number, L for L-1, a bound letter's
    value for l+1."""
    return {None: 0, "L": ctx.meaning.graph.L}.get(base, ctx.scope.bound.get(base, 0))


def _wrong_layers(ctx: MistakeContext, tree: Expr) -> Iterator[Mistake]:
    """A node of another layer, written as the formula writes its layer (2, L-1, l+1)."""
    L = ctx.meaning.graph.L
    primed = {id(c.arg) for c in walk(tree) if isinstance(c, Call) and c.primes}
    for ref, where in _targets(tree):
        if ref.layer is None or ref.layer.base not in (None, "L", *ctx.scope.bound):
            continue
        base = ref.layer.base
        zero = _zero(ctx, base)
        current = zero + ref.layer.offset
        lowest = 0 if ref.kind == "a" else 1
        for layer in sorted(range(lowest, L + 1), key=lambda m: abs(m - current)):
            if layer == current:
                continue
            new_layer = Layer(base, layer - zero)
            what = (f"g' of layer {new_layer.text()}, not {ref.layer.text()}"
                    if ref.kind == "z" and all(id(o) in primed for o in where) else "")
            yield _node_edits(ctx, tree, where, replace(ref, layer=new_layer), "layer", what)


def _wrong_indices(ctx: MistakeContext, tree: Expr) -> Iterator[Mistake]:
    for ref, where in _targets(tree):
        if len(ref.indices) == 2 and ref.indices[0] != ref.indices[1]:
            swapped = replace(ref, indices=ref.indices[::-1])
            letters = [i for i in ref.indices if isinstance(i, str)]
            if letters:
                yield _node_edits(ctx, tree, where, swapped, "sum",
                                  f"the sum over {letters[0]} runs over the other index of w")
            else:
                yield _node_edits(ctx, tree, where, swapped, "index", "the indices are swapped")
    for ref, where in _targets(tree):
        for position, index in enumerate(ref.indices):
            if not isinstance(index, int):
                continue
            for other in range(ctx.max_width):
                if other != index:
                    indices = ref.indices[:position] + (other,) + ref.indices[position + 1:]
                    yield _node_edits(ctx, tree, where, replace(ref, indices=indices), "index",
                                      "")


def _swapped_letters(ctx: MistakeContext, tree: Expr) -> Iterator[Mistake]:
    """Two index letters swapped throughout, delta_k a_j for delta_j a_k: the entry of a
    transposed matrix."""
    letters = sorted({i for e in walk(tree) if isinstance(e, NodeRef) for i in e.indices
                      if isinstance(i, str) and i in ctx.scope.bound})
    for x, y in itertools.combinations(letters, 2):
        swap = {x: y, y: x}
        new = {e.span: replace(e, indices=tuple(swap.get(i, i) for i in e.indices))
               for e in walk(tree) if isinstance(e, NodeRef) and {x, y} & set(e.indices)}
        changed = rebuild(tree, lambda e, new=new: new[e.span]
                          if isinstance(e, NodeRef) and e.span in new else None)
        yield Mistake("index", f"swap the letters {x} and {y} throughout (as written it is "
                               "the entry of the transposed matrix)", changed,
                      tuple((span, node_text(ref, ctx.latex)) for span, ref in new.items()))


def _a_vs_z(ctx: MistakeContext, tree: Expr) -> Iterator[Mistake]:
    swap = {"a": "z", "z": "a"}
    # dC/da for dC/dz is as often a missing g' (Nielsen's BP1 without sigma'): g' comes first
    by = {id(e.wrt) for e in walk(tree) if isinstance(e, Deriv)}
    for ref, where in _targets(tree):
        if ref.kind in swap and ref.layer is not None:
            mistake = _node_edits(ctx, tree, where, replace(ref, kind=swap[ref.kind]), "a_z", "")
            yield replace(mistake, later=any(id(o) in by for o in where))


def _g_primes(ctx: MistakeContext, tree: Expr) -> Iterator[Mistake]:
    # g where g' belongs, or the other way round
    calls = (e for e in walk(tree) if isinstance(e, Call) and e.name in ("g", "sigma", "tanh"))
    for call in dict.fromkeys(calls):  # each distinct call once, in reading order
        toggled = replace(call, primes=1 - call.primes)
        head_end = call.arg.span[0]
        head = ctx.text[call.span[0]:head_end]
        new_head = _toggle_prime(head, call)
        what = "g'" if call.primes == 0 else "g"
        yield Mistake("g_prime", f"write {what} instead: {head.strip()}.. -> "
                                 f"{new_head.strip()}..",
                      rebuild(tree, lambda e, c=call, t=toggled: t if e == c else None),
                      (((call.span[0], head_end), new_head),))
    # a factor g' too many
    for mul in (e for e in walk(tree) if isinstance(e, Mul)):
        for factor in mul.factors:
            inner = factor.arg if isinstance(factor, Group) else factor
            if isinstance(inner, Call) and inner.primes:
                rest = tuple(f for f in mul.factors if f is not factor)
                smaller = rest[0] if len(rest) == 1 else replace(mul, factors=rest)
                text = ctx.text[factor.span[0]:factor.span[1]].strip()
                yield Mistake("g_prime", f"remove the factor {text}",
                              rebuild(tree, lambda e, m=mul, s=smaller: s if e is m else None),
                              ((factor.span, ""),))
    # a missing g' inside a sum over the nodes of a layer
    for s in (e for e in walk(tree) if isinstance(e, Sum)):
        layers = {}  # in reading order, so the same formula always gets the same diagnosis
        for r in walk(s.body):
            if not isinstance(r, NodeRef) or r.layer is None:
                continue
            if (r.kind in ("a", "z", "delta") and r.indices == (s.index,)) or (
                    r.kind == "w" and r.indices[0] == s.index):
                layers[r.layer] = None
        for layer in layers:
            z = NodeRef("z", (s.index,), layer, nielsen=ctx.nielsen)
            factor = Call("g", z, 1, layer)
            body = replace(s, body=Mul((s.body, factor)))
            insert = prime_text(layer.text(), z, ctx.latex)
            yield Mistake("g_prime", f"multiply the sum's terms by {insert}",
                          rebuild(tree, lambda e, old=s, new=body: new if e is old else None),
                          (((s.span[1], s.span[1]), " " + insert),))
    # a missing g' of one node, at the end, over the formula's own letters: g'(z_j^(L)) in a
    # formula for every j, not the node of the case that failed
    for layer, j in ctx.missing_primes:
        for index in _own_indices(ctx, j):
            for written in _own_layers(ctx, tree, layer):
                ref = NodeRef("z", (index,), written, nielsen=ctx.nielsen)
                insert = prime_text(written.text(), ref, ctx.latex)
                yield Mistake("g_prime", f"multiply by {insert}",
                              Mul((tree, Call("g", ref, 1, written))),
                              _times_edits(ctx, tree, insert),
                              group=f"g' of z_{j}^({layer})")


def _times_edits(ctx: MistakeContext, tree: Expr, factor: str):
    """The text edits that multiply the whole of ``tree`` by ``factor``: appended to a
    product, around a sum (whose terms the factor would otherwise join)."""
    last = tree.factors[-1] if isinstance(tree, Mul) else tree
    if isinstance(tree, Add | Neg | Sum) or isinstance(last, Sum) or (
            isinstance(last, Deriv) and last.operand is not None):
        opening, closing = ("\\left(", "\\right)") if ctx.latex else ("(", ")")
        return (((tree.span[0], tree.span[0]), opening),
                ((tree.span[1], tree.span[1]), f"{closing} {factor}"))
    return (((tree.span[1], tree.span[1]), " " + factor),)


def _own_indices(ctx: MistakeContext, j: int) -> list[int | str]:
    """Node index j as the formula may write it: each free letter that has the value j here,
    then the number."""
    return [x for x, v in ctx.scope.bound.items() if v == j] + [j]


def _own_layers(ctx: MistakeContext, tree: Expr, layer: int) -> list[Layer]:
    """Layer ``layer`` as the formula writes it (l+1, L-1 or 2, from its own nodes), then
    relative to L."""
    out = []
    for e in walk(tree):
        if isinstance(e, NodeRef) and e.layer is not None and e.layer not in out:
            try:
                if ctx.meaning.layer(e.layer, e, ctx.scope) == layer:
                    out.append(e.layer)
            except FormulaError:
                continue
    letters = [e.layer.base for e in walk(tree) if isinstance(e, NodeRef) and e.layer
               is not None and e.layer.base in ctx.scope.bound]
    for letter in dict.fromkeys(letters):
        out.append(Layer(letter, layer - ctx.scope.bound[letter]))
    out.append(Layer("L", layer - ctx.meaning.graph.L))
    return list(dict.fromkeys(out))


def _sum_indices(ctx: MistakeContext, tree: Expr) -> Iterator[Mistake]:
    """A sum over an index its terms never use, while another letter is left free."""
    bound = {e.index for e in walk(tree) if isinstance(e, Sum)} | set(ctx.scope.bound)
    free = {i for e in walk(tree) if isinstance(e, NodeRef) for i in e.indices
            if isinstance(i, str) and i not in bound}
    for s in (e for e in walk(tree) if isinstance(e, Sum)):
        if any(isinstance(e, NodeRef) and s.index in e.indices for e in walk(s.body)):
            continue
        for letter in sorted(free):
            head = ctx.text[s.span[0]:s.body.span[0]]
            new_head = re.sub(r"(_\s*[{(]?\s*)" + s.index, r"\g<1>" + letter, head, count=1)
            yield Mistake("sum", f"the sum runs over {s.index}, which its terms do not use, "
                                 f"while {letter} is left free: sum over {letter}",
                          rebuild(tree, lambda e, s=s, letter=letter:
                                  replace(s, index=letter) if e is s else None),
                          (((s.span[0], s.body.span[0]), new_head),))


def _shift(index: int | str | Shifted, letter: str | None, coefficient: int | None,
           constant: int) -> Shifted | str:
    """``index`` with ``letter``'s coefficient set (None: kept) and ``constant`` added."""
    terms = (((index, 1),) if isinstance(index, str) else
             index.terms if isinstance(index, Shifted) else ())
    terms = tuple((x, coefficient if x == letter and coefficient is not None else c)
                  for x, c in terms)
    new = Shifted(terms, (index.constant if isinstance(index, Shifted) else 0) + constant)
    return terms[0][0] if new.constant == 0 and terms == ((terms[0][0], 1),) else new


def _flipped(index: int | str | Shifted, size: int) -> Shifted | str | None:
    """A kernel offset flipped (u <-> size-1-u), or None when ``index`` is not one."""
    if isinstance(index, str):
        return Shifted(((index, -1),), size - 1)
    if isinstance(index, Shifted) and len(index.terms) == 1 and index.terms[0][1] == -1 \
            and index.constant == size - 1:
        return index.terms[0][0]
    return None


def _truth_siblings(ctx: MistakeContext, tree: Expr) -> Iterator[Mistake]:
    """A node written as another of its kind and layer that the true result has, however
    many of its indices differ (w_{1,0,1} for w_{0,0,0}: a copying slip)."""
    edits = []
    for ref, where in _targets(tree):
        if ref.layer is not None and ref.layer.base not in (None, "L"):
            continue
        layer = None if ref.layer is None else _zero(ctx, ref.layer.base) + ref.layer.offset
        edits += [(where, replace(ref, indices=indices))
                  for kind, other_layer, indices in ctx.truth_nodes
                  if (kind, other_layer) == (ref.kind, layer)
                  and len(indices) == len(ref.indices)
                  and sum(a != b for a, b in zip(indices, ref.indices)) > 1]
    if len(edits) > _SIBLING_EDITS:  # a long sum over a map: each edit costs an evaluation
        return
    for where, new in edits:
        yield _node_edits(ctx, tree, where, new, "index", "")


#: The most edits :func:`_truth_siblings` tries (a wrong formula's diagnosis stays quick).
_SIBLING_EDITS = 300


def _window_arithmetic(ctx: MistakeContext, tree: Expr) -> Iterator[Mistake]:
    """A conv layer's index arithmetic, along every spatial axis at once, then along one:
    the kernel flipped where it should not be (or not where it should), the padding not
    subtracted (or twice), the stride missing."""
    def changed(ref: NodeRef, positions, edit) -> NodeRef | None:
        """``ref`` with ``edit(index, position)`` at each of ``positions`` (None: no edit)."""
        indices = list(ref.indices)
        for position in positions:
            indices[position] = edit(ref.indices[position], position)
        return None if any(i is None for i in indices) else replace(ref, indices=tuple(indices))

    for ref, where in _targets(tree):
        if ref.kind == "w" and len(ref.indices) > 2:  # a conv weight: its offsets flipped
            try:
                shape = ctx.meaning.map_shape("w", ctx.meaning.layer(ref.layer, ref,
                                                                      ctx.scope))
            except FormulaError:
                continue
            axes = range(2, len(ref.indices))
            for positions in (axes, *([a] for a in axes)) if shape else ():
                new = changed(ref, positions, lambda i, at, shape=shape: _flipped(i, shape[at]))
                if new is not None:
                    flips = isinstance(new.indices[positions[0]], Shifted)
                    yield _node_edits(ctx, tree, where, new, "index", "the kernel " + (
                        "flipped: an input's gradient is the full correlation of the deltas "
                        "with the flipped kernel" if flips else "not flipped: a conv layer "
                        "correlates (as PyTorch's does), so its weight's gradient reads the "
                        "kernel as it is"))
            continue
        shifted = [p for p, i in enumerate(ref.indices) if isinstance(i, Shifted)]
        for positions in (shifted, *([p] for p in shifted)) if len(shifted) > 1 else \
                ([shifted] if shifted else []):
            for change in (-1, 1, -2, 2):
                yield _node_edits(ctx, tree, where, changed(
                    ref, positions, lambda i, _, c=change: _shift(i, None, None, c)), "index",
                    "the window's offset: the padding is subtracted once, index = stride p "
                    "+ u - padding")
            for stride in (1, 2, 3):  # the first letter of each index steps by the stride
                new = changed(ref, positions, lambda i, _, s=stride: _shift(
                    i, i.terms[0][0], s, 0) if i.terms and i.terms[0][1] > 0 else i)
                if new != ref:
                    yield _node_edits(ctx, tree, where, new, "index",
                                      f"the stride: the window moves by {stride}")


_FUNCTION_HEAD = re.compile(r"\s*(?:\\?(?:g|sigma|tanh)|σ)")


def _toggle_prime(head: str, call: Call) -> str:
    """``g^{(L)}(`` <-> ``g'^{(L)}(``: the function's head with a prime added or removed."""
    if call.primes:
        out = re.sub(r"\\prime\s*|'|′", "", head)
        return out.replace("^{}", "").replace("^{^{}", "^{")
    name = _FUNCTION_HEAD.match(head)
    return head[:name.end()] + "'" + head[name.end():]


#: The mistakes tried, in order of likelihood.
MISTAKES: tuple[Callable[[MistakeContext, Expr], Iterator[Mistake]], ...] = (
    _wrong_layers, _swapped_letters, _wrong_indices, _window_arithmetic, _a_vs_z, _g_primes,
    _sum_indices, _truth_siblings)
