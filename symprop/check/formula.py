r"""``symprop check SPEC --formula TEXT``: is a hand-derived formula the true derivative?

The formula is parsed (:mod:`symprop.formula`), given its meaning in the network, and every
side after the first is compared with the first -- or, for a bare right-hand side, with
dC_0/d(``--wrt``).  The comparison is a function identity in the network's free variables
(inputs, targets, weights, biases; a, z and delta expanded through their definitions):

* numerically, always: at random points in 30-digit arithmetic, with the generic g replaced
  by a different random smooth function at each point;
* symbolically, where that is decisive (generic g and a polynomial loss).

When a side is wrong, :func:`~.diagnosis.diagnose` says what is most likely wrong with it, and
the result carries a counterexample.  Letters the left side leaves free (``\delta_j^{(l)}``)
make a general formula, checked for every j and l the network has.
"""

from __future__ import annotations

import functools
import time

import sympy

from ..activations import ActivationPrime, ElementwiseActivation, GenericActivation
from ..chain import BATCH_SIZE
from ..derivation import Backprop, backprop
from ..errors import InputError
from ..formula import (
    AtSample,
    BatchSum,
    FormulaError,
    FreeIndexError,
    Meaning,
    Scope,
    is_batch_formula,
    parse_formula,
)
from ..formula.matrices import is_matrix_formula
from ..formula.syntax import Call, Deriv, Equation, Expr, Layer, Loss, NodeRef, walk
from ..notation import Node, layer_spelling, node_of
from ..proof import definitions_of
from ..self_check import ensure
from ..spec import Spec
from .cases import _cases
from .diagnosis import diagnose
from .identity import FLOAT, MPMATH, Probe, agree, make_probes, symbolic_equal
from .letter_formula import LetterFormulaCheck, check_letter_formula, letter_layers
from .matrix_formula import check_matrix_formula
from .result import PROBES, Counterexample, FormulaCheck

__all__ = ["Counterexample", "FormulaCheck", "check_formula"]

#: Further random points searched for one where a truth that was 0 at every probe is not.
MORE = 40

#: Activations tried when a formula may be right for one activation only.
ALTERNATIVES = ("sigmoid", "tanh", "identity", "softplus", "swish", "elu", "relu")


def check_formula(spec: Spec | Backprop, formula: str, wrt: str | None = None, *,
                  seed: int = 0, source: str | None = None
                  ) -> FormulaCheck | LetterFormulaCheck:
    """Check ``formula`` against the true derivative of the network of ``spec`` (in a
    network with a batchnorm or an rnn, :func:`.letter_formula.check_letter_formula`, whose
    points are its proofs' own: ``seed`` does not move them)."""
    network = spec.graph.spec if isinstance(spec, Backprop) else spec
    if letter_layers(network):  # a batchnorm, an rnn: a formula over the batch or in time
        return check_letter_formula(network, formula, wrt, source=source)
    start = time.perf_counter()
    engine = spec if isinstance(spec, Backprop) else backprop(spec)
    spec, L = engine.graph.spec, engine.graph.L
    spec.require("check", "symprop check --formula")
    equation = parse_formula(formula, source=source)
    if is_matrix_formula(equation):
        return check_matrix_formula(engine, equation, formula, seed=seed, source=source)
    batch = is_batch_formula(equation)
    meaning = Meaning(engine, formula, batch=batch, source=source)
    reference, claims, target = _reference(equation, wrt, meaning)
    cases, coverage = _cases(meaning, reference, claims)
    _check_truth(meaning, reference, cases, seed)
    probes = make_probes(engine, PROBES, seed=seed)
    result = FormulaCheck(formula, spec, target, True, cases=len(cases), coverage=coverage)

    @functools.cache
    def more():  # points searched when the truth is 0 at every probe (a max pool, a relu)
        return make_probes(engine, MORE, seed=seed + 1)

    @functools.cache
    def floats():  # float64 points for the diagnosis, built only when one is needed
        return make_probes(engine, PROBES, backend=FLOAT, seed=seed)

    @functools.cache
    def more_floats():
        return make_probes(engine, MORE, backend=FLOAT, seed=seed + 1)

    def points(truth) -> list[Probe]:
        """The diagnosis's points for ``truth``: as the verdict's, the further ones where
        a truth 0 at every probe is not (a correction right only where both are 0 is not)."""
        return floats() + _where_nonzero(truth, floats(), more_floats)

    for number, claim in enumerate(claims):
        confirm = functools.partial(_confirmed, engine, wrt, number, points)
        side = {"text": formula[claim.span[0]:claim.span[1]].strip(), "right": True,
                "symbolic": None}
        result.sides.append(side)
        for scope, truth in cases:
            try:
                lowered = meaning.lower(claim, scope)
            except FormulaError as exc:
                # unreadable as written; wrong (exit 1) only if a usual mistake explains it
                findings = diagnose(meaning, claim, scope, truth, points(truth), formula,
                                    lowered=None, confirm=confirm)
                if not findings:
                    raise
                side["right"] = result.right = False
                result.findings = result.findings or findings
                result.unreadable = result.unreadable or exc.what
                break
            used = probes + _where_nonzero(truth, probes, more)
            values = [(p(truth), p(lowered)) for p in used]
            if all(agree(u, v, MPMATH) for u, v in values):
                if side["symbolic"] is None and scope is cases[0][0]:
                    side["symbolic"] = symbolic_equal(engine, truth, lowered)
                continue
            side["right"] = result.right = False
            if not result.findings:
                result.findings = diagnose(meaning, claim, scope, truth, points(truth), formula,
                                           lowered=lowered, confirm=confirm)
                result.counterexample = _counterexample(used, values, truth, lowered, engine,
                                                        scope, _spelt_L(equation, wrt, L))
            break
    result.notes = _activation_notes(engine, equation, formula, wrt, result.right, seed)
    result.seconds = time.perf_counter() - start
    return result


def _where_nonzero(truth, probes: list[Probe], more) -> list[Probe]:
    """No probes when the truth is non-zero at one of ``probes``; else up to PROBES of the
    ``more()`` points where it is not 0: a max pool's entry that is no window's maximum at
    three random points, or a relu below zero, would take a claim of 0 as right."""
    if truth == 0 or any(p(truth) != 0 for p in probes):
        return []
    return [p for p in more() if p(truth) != 0][:PROBES]


def _confirmed(engine: Backprop, wrt: str | None, number: int, points, corrected: str) -> bool:
    """Whether side ``number`` (after the first, or of a bare formula) of the corrected
    formula, read afresh from its text, is right at every case it has: how each diagnosis is
    confirmed before it is reported."""
    try:
        equation = parse_formula(corrected)
        if is_matrix_formula(equation):
            return False
        meaning = Meaning(engine, corrected, batch=is_batch_formula(equation))
        reference, claims, _ = _reference(equation, wrt, meaning)
        if number >= len(claims):
            return False
        claim = claims[number]
        for scope, truth in _cases(meaning, reference, (claim,))[0]:
            lowered = meaning.lower(claim, scope)
            if not all(agree(p(truth), p(lowered), FLOAT) for p in points(truth)):
                return False
        return True
    except (InputError, FormulaError):
        return False


def _check_truth(meaning: Meaning, reference: Expr, cases, seed: int) -> None:
    """Check's truth is the engine's derivative: each node the cases differentiate C_0 by is
    held first against central differences of the forward pass in 45 digits (independent of
    the derivation, as ``derive``'s truth is, and a few milliseconds a node where the
    composed C_0 costs 0.05-0.3 s), and a difference is a SelfCheckFailed (exit 3), not a
    verdict."""
    nodes = []
    for scope, _ in cases:
        node = None
        if isinstance(reference, Deriv) and isinstance(reference.of, Loss):
            node = meaning.node(reference.wrt, scope)
        elif isinstance(reference, NodeRef) and reference.kind == "delta":
            delta = meaning.node(reference, scope)
            node = Node("z", delta.layer, *delta.indices)
        if node is not None and node not in nodes:
            nodes.append(node)
    for node in nodes:
        if meaning.engine.has_path(node):  # else dC_0/d(node) is 0: nothing to hold
            ensure(meaning.engine.derive(node), seed=seed, quick=True)


# ------------------------------------------------------------------ reading
def _reference(equation: Equation, wrt: str | None, meaning: Meaning
               ) -> tuple[Expr, tuple[Expr, ...], str]:
    """What the claims are compared with: the left side, or dC_0/d(wrt) for a bare formula."""
    graph = meaning.graph
    node = graph.resolve(wrt) if wrt else None
    L = _spelt_L(equation, wrt, graph.L)
    if len(equation.sides) == 1:
        if node is None:
            # a weight this network has (a conv weight has four indices, w_{0,0,1,0}^{(1)})
            weight = next((p for p in graph.parameters() if p.kind == "w"), None)
            name = "w_{12}^{(L)}" if weight is None or len(weight.indices) == 2 else \
                weight.latex()
            raise InputError("the formula has no left side, so it is unclear what it "
                             "differentiates", hint=f"Pass --wrt NAME (e.g. --wrt '{name}') "
                             "or write the left side: \\frac{\\partial C_0}{\\partial "
                             f"{name}}} = ...")
        ref = NodeRef(node.kind, node.indices, None if node.layer is None
                      else Layer(None, node.layer))
        loss = Loss(None if meaning.batch else 0)
        reference = Deriv(ref, of=loss, span=(0, 0))
        label = f"dC{'' if meaning.batch else '_0'}/d{node.text(L)}"
        return reference, equation.sides, label
    lhs = equation.sides[0]
    if node is not None and isinstance(lhs, Deriv):
        try:
            named = meaning.node(lhs.wrt, Scope())
        except FreeIndexError:
            named = None
        if named is not None and named != node:
            raise InputError(f"--wrt names {node.text(L)}, but the formula's left side "
                             f"differentiates by {named.text(L)}",
                             hint="Drop --wrt or make the two agree")
    label = meaning.text[lhs.span[0]:lhs.span[1]].strip()
    return lhs, equation.sides[1:], label


def _spelt_L(equation: Equation, wrt: str | None, L: int) -> int | None:
    """The user's spelling of layers, for the names printed back: relative to L (returns L)
    or absolute (None), as --wrt or else the formula's first layer spells it; a layer letter
    (l) counts as absolute, since the cases it is checked for are numbered (l = 1)."""
    if wrt:
        return L if layer_spelling(wrt) == "relative" else None
    for side in equation.sides:
        for e in walk(side):
            layer = getattr(e, "layer", None)
            if isinstance(layer, Layer):
                return L if layer.base == "L" else None
    return L


def _number(value) -> str:
    if value is None:
        return "undefined"
    return sympy.Float(str(value), 12).__str__() if not isinstance(value, float) \
        else f"{value:.12g}"


def _counterexample(probes: list[Probe], values, truth, lowered, engine: Backprop,
                    scope: Scope, L: int | None) -> Counterexample:
    """The first point where the two sides differ, with every value either side depends on
    (each node and parameter it names, delta and dC_0/da included, each application of the
    generic g and the stand-in for it; per sample for a formula about the batch), printed to
    the digits a reader needs to recompute both; names relative to ``L``, or absolute
    (None) as the user spelt them."""
    index = next(i for i, (u, v) in enumerate(values) if not agree(u, v, MPMATH))
    probe = probes[index]
    # a side that is one delta (\delta^L_j on the left) is shown with its definition's values
    resolve = definitions_of(engine)
    exprs = (lowered, truth) + tuple(resolve(e) for e in (lowered, truth) if node_of(e)
                                     is not None and node_of(e).kind in ("delta", "adj"))
    nodes = sorted({(node_of(s), s) for e in exprs for s in e.free_symbols
                    if node_of(s) is not None}, key=lambda pair: pair[0])
    applied = sorted({f for e in exprs for f in e.atoms(GenericActivation, ActivationPrime)
                      if _generic_layer(f) is not None and node_of(f.args[0]) is not None},
                     key=lambda f: (_generic_layer(f), node_of(f.args[0]), str(f)))
    batch = any(e.has(BatchSum, AtSample) for e in exprs)

    def shown(evaluate, which) -> tuple[tuple[str, str], ...]:
        return tuple((node.text(L), _number(evaluate(s))) for node, s in which)

    def applications(evaluate) -> tuple[tuple[str, str], ...]:
        return tuple((_application_text(f, L), _number(evaluate(f))) for f in applied)

    if batch:  # parameters once; every node, and g at it, per sample
        shared = shown(probe, [(n, s) for n, s in nodes if n.is_parameter])
        shared += (("n", str(len(probe.evaluators))),) if any(
            e.has(BATCH_SIZE) for e in exprs) else ()
        samples = tuple(
            (b, shown(ev, [(n, s) for n, s in nodes if not n.is_parameter]) + applications(ev))
            for b, ev in enumerate(probe.evaluators))
    else:
        shared, samples = shown(probe, nodes) + applications(probe), ()
    layers = {_generic_layer(f) for e in exprs for f in e.atoms(GenericActivation,
                                                                 ActivationPrime)}
    generic = tuple(
        f"g^({_layer_label(l, L)})(x) = {f.alpha:.12g} tanh({f.beta:.12g} x "
        f"{'-' if f.gamma < 0 else '+'} {abs(f.gamma):.12g}) + {f.eps:.12g} x"
        for l, f in sorted(probe.generic.items()) if l in layers)
    case = ", ".join(f"{k} = {v}" for k, v in scope.bound.items())
    u, v = values[index]
    return Counterexample(probe.seed, _number(v), _number(u), shared, generic, case, samples)


def _generic_layer(f) -> int | None:
    """The layer of an application of the generic g or g' (None for another function)."""
    if isinstance(f, GenericActivation):
        return type(f).layer
    if isinstance(f, ActivationPrime) and issubclass(f.base, GenericActivation):
        return f.base.layer
    return None


def _application_text(f, L: int) -> str:
    """g'^(L)(z_1^(L)): an application of the generic g, in plain seed notation."""
    prime = "'" if isinstance(f, ActivationPrime) else ""
    return f"g{prime}^({_layer_label(_generic_layer(f), L)})({node_of(f.args[0]).text(L)})"


def _layer_label(layer: int, L: int | None) -> str:
    return str(layer) if L is None else "L" if layer == L else f"L-{L - layer}"


def _activation_notes(engine: Backprop, equation: Equation, formula: str, wrt, right: bool,
                      seed: int) -> list[str]:
    """Whether the verdict depends on the activation: right only for one, or for any g."""
    graph = engine.graph
    spec = graph.spec
    layers = [l for l, cls in sorted(graph.activation.items())
              if issubclass(cls, ElementwiseActivation)]
    if not layers:
        return []
    generic = all(issubclass(graph.activation[l], GenericActivation) for l in layers)
    names = ", ".join(sorted({str(spec.activation_of(l)) for l in layers}))

    def holds_with(name: str) -> bool:
        return _holds_with(spec, layers, name, equation, formula, wrt, seed)

    if right:
        if generic:
            return ["It holds for any activation g: the network's g is generic."]
        if holds_with("g"):
            return [f"It holds for any activation g, not only for {names}."]
        latex = "\\" in formula
        named = [("\\" if latex and n == "sigma" else "") + n for n in ("sigma", "tanh")
                 if any(isinstance(e, Call) and e.name == n for e in walk(equation))]
        if named and _holds_with(spec, layers, "g", equation, formula, wrt, seed,
                                 named_as_g=True):
            fn = " and ".join(named)
            return [(f"It holds for {names} only because it names {fn} itself: with g in "
                     f"place of {fn} it holds for any activation g.")]
        return [(f"It holds for {names} only: with a general g it would not (the "
                 "formula writes g' through the activation itself, e.g. a(1 - a)).")]
    now = "the generic g" if generic else names
    return [f"It would be right if the activation were {name}, but this network uses {now}."
            for name in ALTERNATIVES if name != names and holds_with(name)]


def _holds_with(spec: Spec, layers: list[int], name: str, equation: Equation, formula: str,
                wrt, seed: int, *, named_as_g: bool = False) -> bool:
    """Whether the formula is right, at every case, on the network with activation ``name``
    (and the truth is not zero everywhere, which any formula of zeros would match)."""
    try:
        variant = spec.with_activations(dict.fromkeys(layers, name))
        engine = backprop(variant)
        meaning = Meaning(engine, formula, batch=is_batch_formula(equation),
                          named_as_g=named_as_g)
        reference, claims, _ = _reference(equation, wrt, meaning)
        probes = make_probes(engine, PROBES, backend=FLOAT, seed=seed + 1)
        informative = False
        for scope, truth in _cases(meaning, reference, claims)[0]:
            want = [p(truth) for p in probes]
            informative = informative or any(w for w in want)
            for claim in claims:
                lowered = meaning.lower(claim, scope)
                if not all(agree(w, p(lowered), FLOAT) for w, p in zip(want, probes)):
                    return False
        return informative
    except (InputError, FormulaError):
        return False


