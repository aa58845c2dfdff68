r"""``symprop check SPEC --formula TEXT`` in a network whose layer derives in letters: a
batchnorm's gradients over the batch (samples i and m, n of them), an rnn's through time.

The left side (or ``--wrt``) names what the formula differentiates; the layer's own
derivation of it is built and proven first (a difference is exit 3), and each side after it
is read in that derivation's names (:mod:`.letter_meaning`) and held against the proofs that
decide any result so written (``LetterDerivation.judges``): SymPy's diff of the layer composed
for symbolic batches of 2 and 3 samples (or through the unrolled layer), and the spec's own
layer under JAX or PyTorch autodiff, or 30-digit differences without either.  Letters of the
left side that stand for nodes (``\gamma_j``, ``u_{jk}``) make a general formula, checked at
the first, a middle and the last of their values.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import sympy

from ..errors import InputError, NameLookupError
from ..formula import FormulaError, parse_formula
from ..formula.matrices import is_matrix_formula
from ..formula.syntax import Deriv, Expr, Loss, NodeRef, Sum
from ..graph import build_graph
from ..letters_derivation import Autodiff, not_derived, prove
from ..notation import Node
from ..self_check import autodiff_backend
from .letter_meaning import Free, LetterMeaning, Unread, layer_of
from .result import CheckResult

__all__ = ["LetterFormulaCheck", "check_letter_formula", "letter_layers"]

#: Values of a general formula's letters that are checked: the first, a middle, the last.
CASES = 3


@dataclass
class LetterFormulaCheck(CheckResult):
    """The verdict on a formula over a batch or through time."""

    template: ClassVar[str] = "letter_formula"

    formula: str
    target: str
    right: bool
    #: each side after the first: its text, right, and why not
    sides: list[dict] = field(default_factory=list)
    #: what every side was held against
    held: list[str] = field(default_factory=list)
    coverage: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    #: the proven derivation's result (of the first case), in the formula's style
    truth: str = ""
    seconds: float = 0.0


def letter_layers(spec) -> list:
    """The layers of ``spec`` that derive in letters (a batchnorm, an rnn)."""
    return [c for c in spec.stack if hasattr(c, "letter_derivation")]


def check_letter_formula(spec, formula: str, wrt: str | None = None, *,
                         source: str | None = None) -> LetterFormulaCheck:
    start = time.perf_counter()
    equation = parse_formula(formula, source=source)
    layers = letter_layers(spec)
    if is_matrix_formula(equation):
        raise InputError(
            f"with {_layer_words(layers)} a formula is checked per entry, not in matrices",
            hint=f"Write one entry, as symprop derive prints it (derive {_names(spec)})")
    autodiff = Autodiff(autodiff_backend())
    if len(equation.sides) == 1:
        if not wrt:
            raise InputError("the formula has no left side, so it is unclear what it "
                             "differentiates", hint=f"Pass --wrt NAME ({_names(spec)}) or "
                             "write the left side")
        cases, coverage, claims = _named_case(spec, wrt, layers, autodiff), [], equation.sides
    else:
        cases, coverage = _cases(spec, equation.sides[0], formula, source, layers, autodiff)
        claims = equation.sides[1:]
        if wrt and [build_graph(spec).resolve(wrt)] != [node for _, node, _ in cases]:
            raise InputError(f"--wrt names {wrt}, but the formula's left side differentiates "
                             "by another name (or by a general one)",
                             hint="Drop --wrt or make the two agree")
    sides = [{"text": formula[c.span[0]:c.span[1]].strip(), "right": True, "why": ""}
             for c in claims]
    result = LetterFormulaCheck(formula, "", True, sides, coverage=coverage)
    for config, node, letters in cases:
        d = config.letter_derivation(node, spec, autodiff, str)
        held = prove(d)
        result.target = result.target or (formula[:equation.sides[0].span[1]].strip()
                                          if len(equation.sides) > 1 else d.text(d.lhs))
        judges = d.judges if d.judges is not None else d.proofs
        result.held = result.held or [what for what, _ in judges if what in held]
        if len(equation.sides) == 1:  # a bare formula: the derivation's letters (i)
            letters = {s.name: s.name for s in d.result.free_symbols
                       if s.is_integer and s.name != "n"}
        meaning = LetterMeaning(d, spec.L, formula, source, letters)
        at = ", ".join(f"{k} = {v}" for k, v in letters.items() if isinstance(v, sympy.Integer))
        for side, claim in zip(result.sides, claims):
            if not side["right"]:
                continue
            side["right"], side["why"], found = _judge(meaning, claim, d, judges)
            if not side["right"]:
                side["why"] = f"at {at}: {side['why']}" if at else side["why"]
                show = d.latex if "\\" in formula else d.text
                result.truth = result.truth or f"{show(d.lhs)} = {show(d.result)}"
                mine = [f"{side['text']}: {f}" if len(claims) > 1 else f for f in found]
                result.findings += [f for f in mine if f not in result.findings]
    result.right = all(side["right"] for side in result.sides)
    result.seconds = time.perf_counter() - start
    return result


# ------------------------------------------------------------------ what is differentiated
def _named_case(spec, wrt: str, layers, autodiff) -> list:
    node = build_graph(spec).resolve(wrt)
    for config in layers:
        if config.letter_derivation(node, spec, autodiff, str) is not None:
            return [(config, node, {})]
    raise not_derived(spec, wrt, "Check a derivative of")


def _cases(spec, lhs: Expr, text: str, source, layers, autodiff) -> tuple[list, list]:
    """(layer, node, the user's letters) for each derivation the left side names, and which
    values of its general letters are checked."""
    if not (isinstance(lhs, Deriv) and isinstance(lhs.of, Loss) and
            isinstance(lhs.wrt, NodeRef)):
        raise FormulaError("the left side is no derivative of the loss", text=text,
                           position=lhs.span[0], where=source,
                           hint="Write e.g. \\frac{\\partial C}{\\partial \\gamma_1^{(2)}} = ...")
    wrt, L = lhs.wrt, spec.L
    for config in layers:
        for target in config.letter_targets():
            d = config.letter_derivation(target, spec, autodiff, str)
            (pattern,) = parse_formula(d.latex(d.lhs)).sides
            if pattern.wrt.kind != wrt.kind or layer_of(pattern.wrt.layer, L) != \
                    layer_of(wrt.layer, L):
                continue
            if len(pattern.wrt.indices) != len(wrt.indices):
                count = len(pattern.wrt.indices)
                raise FormulaError(
                    f"{text[wrt.span[0]:wrt.span[1]].strip()} needs {count} "
                    f"ind{'ex' if count == 1 else 'ices'} here", text=text,
                    position=wrt.span[0], where=source,
                    hint=f"Write it as symprop derive prints it, e.g. {d.text(d.lhs)}: a "
                         "letter for the sample (or step) where it has one")
            if pattern.of != lhs.of:
                want, got = (_loss(x) for x in (pattern.of, lhs.of))
                raise FormulaError(f"in this network the derivative is of {want}, not {got}",
                                   text=text, position=lhs.of.span[0], where=source,
                                   hint=f"Write {want} for {got}, as symprop derive prints it: "
                                        f"{d.text(d.lhs)}")
            return _values(spec, config, target, pattern.wrt, lhs, text, source)
    raise not_derived(spec, text[lhs.wrt.span[0]:lhs.wrt.span[1]].strip(),
                      "Check a derivative of")


def _values(spec, config, target: Node, pattern: NodeRef, lhs: Deriv, text, source
            ) -> tuple[list, list]:
    """The nodes the left side names at the derivation's node positions (a letter there: a
    general formula), and the user's letters for the derivation's own (the sample i)."""
    mine = lhs.wrt.indices
    slots = [k for k, p in enumerate(pattern.indices) if isinstance(p, int)]
    renames = {}
    for k, p in enumerate(pattern.indices):
        if isinstance(p, str):
            if not isinstance(mine[k], str):
                raise FormulaError(f"write {p}, a letter, where derive prints it: the "
                                   "derivation holds for every sample (or step)", text=text,
                                   position=lhs.wrt.span[0], where=source)
            renames[mine[k]] = p  # the derivation's own letter, by name
    if target.is_parameter:
        every = [tuple(p.indices) for p in build_graph(spec).parameters()
                 if p.kind == target.kind and p.layer == target.layer]
    else:
        every = list(np.ndindex(*config.in_shape))
    heads = list(dict.fromkeys(idx[:len(slots)] for idx in every))
    fits = [h for h in heads if _fits(h, [mine[k] for k in slots])]
    if not fits:
        first, last = (",".join(map(str, h)) for h in (heads[0], heads[-1]))
        raise NameLookupError(f"{text[lhs.wrt.span[0]:lhs.wrt.span[1]].strip()} is not in "
                              f"layer {target.layer}: its indices there run from {first} to "
                              f"{last}", hint="Number nodes from 0, as symprop derive does")
    written = [mine[k] for k in slots]
    general = list(dict.fromkeys(w for w in written if isinstance(w, str)))
    chosen = _chosen(fits, written, general)
    cases = []
    for head in chosen:
        node = Node(target.kind, target.layer, *head, *target.indices[len(head):])
        letters = {m: sympy.Integer(v) for m, v in zip(written, head) if isinstance(m, str)}
        cases.append((config, node, {**letters, **renames}))
    values = [[next(v for w, v in zip(written, h) if w == g) for g in general] for h in chosen]
    coverage = [] if not general else [
        f"checked for {', '.join(general)} = " + "; ".join(
            ", ".join(map(str, v)) for v in values) + f" ({len(chosen)} of {len(fits)})"]
    return cases, coverage


def _chosen(fits: list, written: list, general: list) -> list:
    """The first values, the last, and one where the letters differ (j = 0, k = 1, so that
    a formula with j and k swapped is found), and the middle one, at most CASES + 1."""
    def differ(head):
        values = {w: v for w, v in zip(written, head) if isinstance(w, str)}
        return len(set(values.values())) == len(general)

    mixed = next((h for h in fits if differ(h)), fits[0])
    return list(dict.fromkeys([fits[0], mixed, fits[len(fits) // 2], fits[-1]]))[:CASES + 1]


def _loss(loss: Loss) -> str:
    return "C" if loss.sample is None else f"C_{loss.sample}"


def _fits(head: tuple, written: list) -> bool:
    bound: dict = {}
    for value, w in zip(head, written):
        if isinstance(w, int) and w != value:
            return False
        if isinstance(w, str) and bound.setdefault(w, value) != value:
            return False
    return True


# ------------------------------------------------------------------ the verdict
def _judge(meaning: LetterMeaning, claim: Expr, d, judges) -> tuple[bool, str, list[str]]:
    """(right, why not, findings) for one side; the numbers judge first (the last judge):
    they decide a wrong side fastest, and say where it reads past the batch or the steps."""
    judges = judges[::-1]
    try:
        lowered = _expanded(meaning.lower(claim))
    except Unread as unread:
        return False, (f"it names {unread.text}, which the derivation of {d.text(d.lhs)} "
                       "does not read"), []
    except Free as free:
        why = (f"the letter {free.letter} is free: no sum runs over it and the left side "
               "does not name it")
        try:  # a sum left out, as in delta_{t,j} h_{t-1,k} for sum_t ...
            summed = _expanded(meaning.lower(Sum(free.letter, claim, span=claim.span)))
        except (Free, Unread, FormulaError):
            return False, why, []
        found = [f"a sum over {free.letter} is missing"] if _holds(summed, judges)[0] else []
        return False, why, found
    ok, why = _holds(lowered, judges)
    if ok:
        return True, "", []
    for words, wrong in d.mistakes:
        if _holds(lowered - wrong + d.result, judges)[0]:
            return False, why, [words]
    return False, why, _factor(lowered, judges, meaning)


def _expanded(expr: sympy.Expr) -> sympy.Expr:
    """Sums with whole-number bounds written out (an rnn's over its T steps)."""
    return expr.replace(lambda e: isinstance(e, sympy.Sum) and all(
        b.is_number for _, lo, hi in e.limits for b in (lo, hi)), lambda e: e.doit())


def _holds(expr: sympy.Expr, judges) -> tuple[bool, str]:
    for what, check in judges:
        try:
            if not check(expr):
                return False, f"it differs from {what}"
        except IndexError as outside:
            return False, str(outside)
        except (ValueError, TypeError, KeyError) as unknown:
            raise InputError(f"the formula cannot be evaluated on numbers ({unknown}): it "
                             "names a quantity that derive writes out before its result",
                             hint="Write it in the names of derive's result (for an rnn: "
                                  "delta, h, x; for a batchnorm: dC/da, xhat, sigma, gamma)"
                             ) from None
    return True, ""


def _factor(expr: sympy.Expr, judges, meaning: LetterMeaning) -> list[str]:
    """A constant factor that makes the side right, in words (empty when none does)."""
    n = meaning.symbols.get("n")
    factors = [(sympy.Integer(-1), "the sign is wrong: multiply by -1"),
               (sympy.Integer(2), "the formula is half the true value: multiply by 2"),
               (sympy.Rational(1, 2), "the formula is twice the true value: divide by 2")]
    if n is not None:
        factors += [(1 / n, ("the formula is n times too large (n is the batch size): "
                            "divide by n")),
                    (n, "the formula is n times too small: multiply by n")]
    for c, words in factors:
        if _holds(c * expr, judges)[0]:
            return [words]
    return []


def _layer_words(layers) -> str:
    from ..layers import with_article

    return " and ".join(f"{with_article(c.kind)} layer" for c in layers)


def _names(spec) -> str:
    return "; ".join(c.letter_names(spec) for c in letter_layers(spec))

