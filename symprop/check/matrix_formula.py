r"""``symprop check`` on a formula in seed 001's matrix notation.

Shapes first: each side's shape for this network (a product whose sizes do not fit is a
finding with both shapes, and a right side that is the left side's transpose says so); then
entry by entry against the engine's scalar results for a batch of three samples, in 30-digit
arithmetic at random points.  A wrong formula goes through :data:`MATRIX_MISTAKES`, a table
of the usual mistakes tried in order, each confirmed by checking the corrected formula over
every case before it is reported in the user's own notation.
"""

from __future__ import annotations

import itertools
import time

from ..derivation import Backprop
from ..errors import InputError
from ..formula.matrices import Mat, MatrixMeaning, ShapeMismatch
from ..formula.scope import Scope
from ..formula.syntax import (
    Add,
    Equation,
    Expr,
    Mul,
    walk,
)
from ..formula.tokens import FormulaError
from ..matrix_steps import spread
from .cases import cases_of as _cases
from .diagnosis import Finding
from .identity import agree, make_probes, ratio
from .matrix_mistakes import MATRIX_MISTAKES, MistakeContext, wrapped
from .result import PROBES, FormulaCheck
from .wording import apply_edits, factor_fix, name_factor

__all__ = ["check_matrix_formula", "compare"]



# ------------------------------------------------------------------ comparing
def compare(meaning: MatrixMeaning, claim: Expr, scope: Scope, truth, probes, *,
            strict: bool = True) -> tuple[bool, str, object]:
    """(right, what is wrong in words, the claim's value) at one case.  A formula that names
    what the network lacks raises, unless ``strict`` is off (a candidate correction)."""
    try:
        value = meaning.lower(claim, scope)
    except ShapeMismatch as exc:
        return False, exc.what, None
    except FormulaError as exc:
        if strict:
            raise
        return False, exc.what, None
    text = meaning.text[claim.span[0]:claim.span[1]].strip()
    if isinstance(truth, Mat) != isinstance(value, Mat):
        kind = "a matrix" if isinstance(value, Mat) else "a number"
        return False, f"{text} is {kind}, the left side is not", value
    if not isinstance(truth, Mat):
        return all(agree(p(truth), p(value), p.backend) for p in probes), "", value
    pick = _entries(truth, value)
    if pick is None:
        if value.T.shape == truth.shape and not truth.is_vector:
            return False, (f"{text} is {value.label}, the left side {truth.label}: "
                           "transposed"), value
        return False, f"{text} is {value.label}, the left side {truth.label}", value
    for (i, j), (r, c) in pick:
        if not all(agree(p(truth.entry(i, j)), p(value.entry(r, c)), p.backend)
                   for p in probes):
            return False, "", value
    return True, "", value


def _entries(truth: Mat, value: Mat):
    """Pairs of entries to compare: the same positions, or a vector against its other
    orientation (a row of column sums is the same gradient as a column); None if the shapes
    do not match."""
    if value.shape == truth.shape and value.names == truth.names or (
            value.shape == truth.shape and not (truth.is_vector or value.is_vector)
            and _same_sizes(value, truth)):
        return [(ij, ij) for ij in spread(truth.shape)]
    if truth.is_vector and value.is_vector and truth.rows * truth.cols == value.rows * value.cols:
        return [((i, j), (j, i)) for i, j in spread(truth.shape)]
    return None


def _same_sizes(value: Mat, truth: Mat) -> bool:
    """Rows and columns of the same kinds of sizes (a width is not the batch size, even
    when both are 3)."""
    return all((a == "n") == (b == "n") for a, b in zip(value.names, truth.names))


def _ratio(meaning: MatrixMeaning, claim: Expr, scope: Scope, truth, value, probes):
    """The constant c with truth = c * claim at every checked entry and point, or None."""
    if not isinstance(truth, Mat) or not isinstance(value, Mat):
        return None
    pick = _entries(truth, value)
    if pick is None:
        return None
    ratios = [ratio(p(truth.entry(*a)), p(value.entry(*b))) for a, b in pick[:6] for p in probes]
    if not ratios or any(r is None for r in ratios):
        return None
    first = float(ratios[0])
    if abs(first - 1) <= 1e-9 or any(abs(float(r) - first) > 1e-9 * max(1, abs(first))
                                     for r in ratios):
        return None
    return name_factor(first, meaning)


# ------------------------------------------------------------------ the check
def check_matrix_formula(engine: Backprop, equation: Equation, formula: str, *,
                         seed: int = 0, source: str | None = None):
    """Check a matrix-form formula; returns a :class:`~.formula.FormulaCheck`."""
    start = time.perf_counter()
    if len(equation.sides) < 2:
        raise InputError("a formula in matrix form needs its left side",
                         hint="Write e.g. \\frac{\\partial C}{\\partial W^{(L)}} = "
                              "\\Delta^{(L)\\top} A^{(L-1)}")
    # a batch size no layer has, so that a width never passes for the batch
    batch = next(b for b in itertools.count(2) if b not in engine.graph.widths)
    meaning = MatrixMeaning(engine, formula, source=source, batch_size=batch)
    reference, claims = equation.sides[0], equation.sides[1:]
    cases, coverage = _cases(meaning, reference, claims)
    probes = make_probes(engine, PROBES, seed=seed, batch=meaning.batch_size)
    target = formula[reference.span[0]:reference.span[1]].strip()
    result = FormulaCheck(formula, engine.graph.spec, target, True, cases=len(cases),
                          coverage=coverage)
    truth0 = cases[0][1]
    result.shapes.append(f"{target}: {_shape(truth0)}")
    for claim in claims:
        text = formula[claim.span[0]:claim.span[1]].strip()
        side = {"text": text, "right": True, "symbolic": None}
        result.sides.append(side)
        for scope, truth in cases:
            ok, problem, value = compare(meaning, claim, scope, truth, probes)
            if scope is cases[0][0]:
                shape = _shape(value) if value is not None else "the shapes inside do not fit"
                result.shapes.append(f"{text}: {shape}")
            if ok:
                continue
            side["right"] = result.right = False
            result.problem = result.problem or problem
            if not result.findings:
                result.findings = _diagnose(meaning, claim, cases, truth, value, scope, probes)
            break
    result.seconds = time.perf_counter() - start
    return result


def _shape(value) -> str:
    return value.label if isinstance(value, Mat) else "a number"


def _diagnose(meaning, claim, cases, truth, value, scope, probes) -> list[Finding]:
    ctx = MistakeContext(meaning, claim, scope)
    text, before = meaning.text, meaning.text[:claim.span[0]]
    after = meaning.text[claim.span[1]:]
    factor = _ratio(meaning, claim, scope, truth, value, probes) if value is not None else None
    if factor is not None and factor == meaning.batch_size:
        extra = _one_over_n(claim)
        if extra is not None:  # an extra 1/n: take it out rather than multiply by n
            end = extra.span[1]
            while end < len(text) and text[end] == " ":
                end += 1
            corrected = apply_edits(text, (((extra.span[0], end), ""),)).strip()
            if _confirmed(meaning, corrected, claim, cases, probes):
                return [Finding("factor", "the 1/n of the batch is already in Delta (the "
                                "spec's reduction is the mean): remove "
                                f"{ctx.text_of(extra)}", corrected, True, factor)]
    if factor is not None:
        body = ctx.text_of(claim)
        if isinstance(claim, Add):
            body = wrapped(body, ctx.latex)
        corrected = (before + f"{_factor_text(factor, meaning, ctx.latex)} {body}" + after).strip()
        if _confirmed(meaning, corrected, claim, cases, probes):
            return [Finding("factor", factor_fix(factor, meaning), corrected, True, factor)]
    seen, found = set(), []
    for mistakes in MATRIX_MISTAKES:
        for m in itertools.islice(mistakes(ctx, claim), 60):
            corrected = apply_edits(text, m.edits).strip()
            if corrected in seen:
                continue
            seen.add(corrected)
            # quick: the edited tree at the failing case; then the corrected text, re-read
            # and checked over every case, decides
            if compare(meaning, m.tree, scope, truth, probes, strict=False)[0] and \
                    _confirmed(meaning, corrected, claim, cases, probes):
                found.append(Finding(m.category, m.fix, corrected))
                break  # one finding per row of the table
        if len(found) >= 2:
            break
    return found


def _one_over_n(claim: Expr) -> Expr | None:
    """A factor 1/n of a product (\\frac{1}{n}, 1/n), or None."""
    from ..formula.syntax import Div, Num, Size

    for m in (e for e in walk(claim) if isinstance(e, Mul)):
        for f in m.factors:
            if isinstance(f, Div) and isinstance(f.num, Num) and f.num.text == "1" \
                    and isinstance(f.den, Size):
                return f
    return None


def _confirmed(meaning, corrected: str, claim: Expr, cases, probes) -> bool:
    """Whether the corrected formula, parsed from its text, is right at every case."""
    from ..formula import parse_formula

    try:
        equation = parse_formula(corrected)
    except FormulaError:
        return False
    # the claim's side: the sides before it are untouched, so it is the one starting first
    # at or after the end of the side before it
    before = [s for s in equation.sides if s.span[1] <= claim.span[0]]
    index = len(before)
    if index >= len(equation.sides):
        return False
    fresh = MatrixMeaning(meaning.engine, corrected, source=meaning.source,
                          batch_size=meaning.batch_size)
    return all(compare(fresh, equation.sides[index], s, t, probes, strict=False)[0]
               for s, t in cases)


def _factor_text(c, meaning, latex: bool) -> str:
    """2, -1, \\frac{1}{n} (n the batch size), n."""
    n = meaning.batch_size
    if c == n:
        return "n"
    if c.is_Rational and c.q != 1:
        num = str(c.p)
        den = "n" if c.q == n else str(c.q)
        return f"\\frac{{{num}}}{{{den}}}" if latex else f"{num}/{den}"
    return str(c)
