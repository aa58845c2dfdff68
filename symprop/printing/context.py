"""What a derivation document shows, already printed: one context for every output format.

A :class:`Flavor` pairs a SymPy printer subclass (plain text or LaTeX) with the few layout
pieces a printer does not own: how factors of the chain rule are multiplied, how a sum over a
layer is written, how a long list of terms is elided.  :func:`derivation_context` walks a
:class:`~symprop.derivation.Derivation` and returns plain data (strings, lists, dicts) that
the templates only lay out: ``derivation.txt.j2`` for text, ``documents/*.j2`` for LaTeX,
Markdown and HTML (those three share the LaTeX flavor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import sympy
from sympy.printing.precedence import PRECEDENCE, precedence

from ..notation import node_of
from .identities import (
    activation_identities,
    general_node,
    jacobian_identities,
    layer_jacobians,
    named_definitions,
)
from .latex import SeedLatexPrinter
from .map_sums import index_form_view, map_letters, map_sum
from .seed import MAX_TERMS, elide
from .text import SeedStrPrinter

__all__ = ["DIGITS", "FLAVORS", "Flavor", "derivation_context", "elide", "format_number",
           "general_node"]

#: Significant digits of every number a worked example shows.
DIGITS = 9


def format_number(value) -> str:
    """9 significant digits, plain where that reads well, else with an exponent."""
    value = float(value)
    return "0" if value == 0 else f"{value:.{DIGITS}g}"


#: A result is also shown with its deltas substituted back only when it has at most this many.
MAX_EXPANDED_DELTAS = 8
#: ... and when it has at most this many products (see Derivation.expanded_size).
MAX_EXPANDED_SIZE = 64


@dataclass(frozen=True)
class Flavor:
    """A printer plus the layout of products, sums and elisions in one notation."""

    name: str
    printer_class: ClassVar[type]
    times: ClassVar[str]
    ellipsis: ClassVar[str]

    def printer(self, L: int, layers: str):
        """A printer for documents: a sum of more than MAX_TERMS terms is elided."""
        return self.printer_class({"L": L, "layers": layers, "max_terms": MAX_TERMS})

    def product(self, printer, factors) -> str:
        """Factors of the chain rule side by side, each parenthesised when it needs it."""
        return self.times.join(self._factor(printer, f) for f in factors)

    def _factor(self, printer, expr) -> str:
        text = printer.doprint(expr)
        needs = precedence(expr) < PRECEDENCE["Mul"] or text.startswith("-") or (
            not printer.latex_output and _is_adjoint(expr))
        return self.paren(text) if needs else text

    def chain(self, printer, derivatives) -> str:
        """The general chain rule, a product of derivative factors."""
        return self.times.join(self.wrap_derivative(printer.doprint(d)) for d in derivatives)

    def terms(self, printer, items: list) -> str:
        """A sum written term by term (None is an elided stretch)."""
        out = []
        for n, item in enumerate(items):
            if item is None:
                out.append(("+ " if n else "") + self.ellipsis)
            elif n and item.could_extract_minus_sign():
                negated = -item
                text = printer.doprint(negated)
                out.append("- " + (self.paren(text) if negated.is_Add else text))
            else:
                out.append(("+ " if n else "") + printer.doprint(item))
        return " ".join(out)


class TextFlavor(Flavor):
    printer_class = SeedStrPrinter
    times = " * "
    ellipsis = "..."
    vellipsis = "..."

    @staticmethod
    def wrap_derivative(text: str) -> str:
        return f"({text})"

    @staticmethod
    def paren(text: str) -> str:
        return f"({text})"

    @staticmethod
    def sum_over(index: str, upper: int, body: str) -> str:
        return f"sum_({index}=0)^({upper}) [ {body} ]"

    @staticmethod
    def sum_over_all(letters: tuple[str, ...], body: str) -> str:
        return f"sum_({','.join(letters)}) [ {body} ]"

    @staticmethod
    def d_by(wrt: str, body: str) -> str:
        return f"d/d{wrt} [ {body} ]"

    @staticmethod
    def batch(lhs: str, target: str, mean: bool) -> str:
        return f"{lhs} = " + ("(1/n) " if mean else "") + f"sum_(i=0)^(n-1) dC_i/d{target}"

    @staticmethod
    def number(text: str) -> str:
        return text


class LatexFlavor(Flavor):
    printer_class = SeedLatexPrinter
    times = r" \cdot "
    ellipsis = r"\cdots"
    vellipsis = r"\vdots"

    @staticmethod
    def wrap_derivative(text: str) -> str:
        return text

    @staticmethod
    def paren(text: str) -> str:
        return rf"\left({text}\right)"

    @staticmethod
    def sum_over(index: str, upper: int, body: str) -> str:
        return rf"\sum_{{{index}=0}}^{{{upper}}} {body}"

    @staticmethod
    def sum_over_all(letters: tuple[str, ...], body: str) -> str:
        return rf"\sum_{{{','.join(letters)}}} {body}"

    @staticmethod
    def d_by(wrt: str, body: str) -> str:
        return rf"\frac{{\partial}}{{\partial {wrt}}} \left( {body} \right)"

    @staticmethod
    def batch(lhs: str, target: str, mean: bool) -> str:
        return (f"{lhs} = " + (r"\frac{1}{n} " if mean else "")
                + rf"\sum_{{i=0}}^{{n-1}} \frac{{\partial C_{{i}}}}{{\partial {target}}}")

    @staticmethod
    def number(text: str) -> str:
        r"""1.5e-05 as 1.5 \cdot 10^{-5}."""
        mantissa, _, exponent = text.partition("e")
        return rf"{mantissa} \cdot 10^{{{int(exponent)}}}" if exponent else text


FLAVORS: dict[str, Flavor] = {"text": TextFlavor("text"), "latex": LatexFlavor("latex")}


def _is_adjoint(expr) -> bool:
    """An accumulated gradient dC_0/da_j^(l): a quotient when written in plain text."""
    node = node_of(expr)
    return node is not None and node.kind == "adj"


def _general(symbols: set, index: tuple[str, int]) -> sympy.Symbol:
    """The one symbol of a factor position, or (when it varies along the sum) its node with
    the summation letter as index: a_j^(L) for a_0^(L), a_1^(L), ...; a_{0,p,q}^(1) for the
    positions of a map."""
    symbol = next(iter(symbols))
    node = node_of(symbol)
    if len(symbols) == 1 or node is None:
        return symbol
    found = map_letters(symbols)
    if found is not None:
        return general_node(node.kind, node.layer, *found[0])
    return general_node(node.kind, node.layer, index[0])


def _general_factor(chain, n: int) -> sympy.Derivative:
    """Factor n of the chain rule as the sum's general term (the factor itself if no sum)."""
    factors = [p.factors[n] for p in chain.paths]
    if not chain.sum_index:
        return factors[0].derivative
    return sympy.Derivative(_general({f.numerator for f in factors}, chain.sum_index),
                            _general({f.denominator for f in factors}, chain.sum_index))


def derivation_context(derivation, flavor: str | Flavor = "text",
                       layers: str = "relative", seen: set | None = None,
                       linked: dict | None = None, at=None) -> dict:
    """Everything a derivation template needs, printed in ``flavor`` (templates only lay out).

    A nested backward step is worked out once per document (``seen``: the targets already
    worked out), however many paths reach it; one whose target has a derivation of its own
    in the document (``linked``: target -> its anchor) is a link to it instead.  With ``at``
    (a :class:`~symprop.worked.WorkedPoint`) every factor, product, delta and the result
    carry their numbers at that point, after the values the derivation reads and before the
    SGD update.
    """
    linked = linked or {}
    flavor = FLAVORS[flavor] if isinstance(flavor, str) else flavor
    seen = set() if seen is None else seen
    seen.add(derivation.target)
    graph = derivation.graph
    p = flavor.printer(graph.L, layers)
    pr = p.doprint

    def num(expr) -> str:
        """' = 0.123456789', the value at the worked example's point ('' without one)."""
        if at is None or sympy.sympify(expr).is_number:  # 1 = 1 says nothing
            return ""
        return " = " + flavor.number(at.number(expr))

    def factor_view(f):
        view = {"name": pr(f.derivative), "value": pr(f.value) + num(f.value),
                "backward": None}
        if f.backward is not None:
            view["backward"] = pr(f.backward.lhs)
            return view
        shown = elide(list(zip(f.terms, f.term_derivatives)), f.surviving)
        terms = flavor.terms(p, [None if t is None else t[0] for t in shown])
        view["definition"] = f"{pr(f.numerator)} = {terms}"
        view["wrt"] = pr(f.denominator)
        view["n_terms"] = len(f.terms)
        view["expansion"] = flavor.d_by(view["wrt"], terms)
        view["term_derivatives"] = flavor.terms(p, [None if t is None else t[1] for t in shown])
        view["vanishing"] = len(f.vanishing)
        view["inner"] = None
        if f.inner is not None:  # a custom formula's sum: its terms, then the rest
            u, outer, through = f.inner
            view["inner"] = {"u": pr(u), "outer": f"{pr(f.numerator)} = {pr(outer)}",
                             "sum": f"{pr(u)} = {terms}",
                             "through": f"{pr(sympy.Derivative(f.numerator, u))} = {pr(through)}"}
        return view

    def general_chain(group) -> str:
        factors = [_general_factor(group, n) for n in range(len(group.paths[0].factors))]
        text = flavor.chain(p, factors)
        if map_sum(group):
            return flavor.sum_over_all(map_sum(group), text)
        if group.sum_index:
            letter, layer = group.sum_index
            text = flavor.sum_over(letter, graph.widths[layer] - 1, text)
        return text

    def group_view(group) -> dict:
        layer = node_of(group.paths[0].factors[0].denominator).layer
        return {"layer": p.layer(layer), "terms": len(group.paths),
                "index": group.sum_index[0] if group.sum_index else None,
                "factors": [factor_view(f) for f in group.paths[0].factors]}

    chain = derivation.chain
    # only the paths shown are printed: a wide layer's backward sum has hundreds
    firsts, start = [], 0
    for group in chain.groups:
        firsts.append(start)
        start += len(group.paths)
    products = [flavor.ellipsis if path is None else
                flavor.product(p, [f.value for f in path.factors])
                for path in elide(list(chain.paths), tuple(firsts))]
    if at is not None:  # the sum of every path's product, as the chain rule adds them
        products[-1] += num(sympy.Add(*[sympy.Mul(*[f.value for f in path.factors])
                                        for path in chain.paths]))
    chain_general = " + ".join(general_chain(group) for group in chain.groups)
    summed = None
    if chain.sum_index:
        letter, layer = chain.sum_index
        letters = map_sum(chain.groups[0])
        summed = {"index": ", ".join(letters) if letters else letter, "layer": p.layer(layer),
                  "terms": len(chain.paths), "shared": None}
        if letters and derivation.target.is_parameter:  # a conv weight: one per position
            z = _general({path.factors[-1].numerator for path in chain.paths}, chain.sum_index)
            summed["shared"] = {"z": pr(z), "letters": ", ".join(letters)}
    nested = []
    for backward in derivation.backwards:  # depth first: a later branch may be worked out
        if backward.target in linked:      # inside an earlier one already
            nested.append({"link": linked[backward.target], "title": pr(backward.lhs)})
        elif backward.target not in seen:
            nested.append(derivation_context(backward, flavor, layers, seen, linked, at))
    spec = graph.spec
    deltas = derivation.delta_nodes  # a wide layer's are many: only the shown are worked out
    # substituting many deltas back to the output multiplies the size; say so instead
    expanded = (derivation.expanded() if len(deltas) <= MAX_EXPANDED_DELTAS
                and derivation.expanded_size <= MAX_EXPANDED_SIZE else None)
    specialised = derivation.specialised()
    shown = derivation.result if expanded is None else expanded
    context = {
        "title": pr(derivation.lhs),
        "target": pr(derivation.symbol),
        "spec": {"name": spec.name, "layers": [s[0] if len(s) == 1 else list(s)
                                               for s in spec.shapes],
                 "activation": ", ".join(str(a) for a in spec.activation),
                 "kinds": None if spec.is_dense else [c.describe() for c in spec.stack],
                 "loss": spec.loss, "reduction": spec.reduction},
        "chain_general": chain_general,
        "sum": summed,
        "factors": [factor_view(f) for f in chain.paths[0].factors],
        "branches": [group_view(g) for g in chain.groups] if len(chain.groups) > 1 else [],
        "n_paths": len(chain.paths),
        "products": products,
        "result": pr(derivation.result) + num(derivation.result),
        "index_form": index_form_view(derivation, flavor, p),
        "expanded": pr(expanded) + num(expanded)
        if expanded not in (None, derivation.result) else None,
        "identities": activation_identities(shown, p) + jacobian_identities(chain, p),
        "jacobians": layer_jacobians(chain, graph, p),
        "definitions": named_definitions([derivation.result, *(
            f.value for path in chain.paths[:1] for f in path.factors)], graph, p),
        "specialised": pr(specialised) if specialised != derivation.result else None,
        "deltas": [flavor.vellipsis if d is None else
                   f"{pr(d.symbol)} = {pr(derivation.engine.adjoint_of(d))}"
                   + num(derivation.engine.adjoint_of(d))
                   for d in elide(deltas)],
        "batch": flavor.batch(pr(derivation.batch.lhs), pr(derivation.symbol),
                              spec.reduction == "mean"),
        "nested": nested[0] if nested else None,
        "more_nested": nested[1:],
        "diagram": None,
        "link": None,
    }
    context |= worked_context(derivation, flavor, p, at) if at is not None else \
        {"point": None, "sgd": None}
    # what a Kronecker delta printed above means, said once: [j = m] with j = m
    context["iverson"] = [{"bracket": bracket, "i": i, "j": j}
                          for bracket, (i, j) in getattr(p, "iverson", {}).items()]
    return context


def worked_context(derivation, flavor: Flavor, p, at) -> dict:
    """A worked example's own lines: the values the derivation reads (inputs, targets,
    parameters, and each node of the forward pass by its definition), and for a parameter
    with a learning rate the SGD update w <- w - eta dC_0/dw."""
    pr = p.doprint
    chain = derivation.chain
    read = {derivation.symbol} | derivation.result.free_symbols
    for path in chain.paths[:1]:
        for f in path.factors:
            read |= f.value.free_symbols
    nodes = sorted((n for n in map(node_of, read) if n is not None
                    and n.kind not in ("delta", "adj")), key=_forward_order)
    point = [f"{pr(n.symbol)} = {flavor.number(at.number(n.symbol))}" for n in nodes]
    update = None
    if at.learning_rate is not None and derivation.target.is_parameter:
        w, rate = pr(derivation.symbol), flavor.number(format_number(at.learning_rate))
        now, slope = at.value(derivation.symbol), at.value(derivation.result)
        new = now - at.learning_rate * slope
        numbers = [flavor.number(at.number(e)) for e in (derivation.symbol, derivation.result)]
        arrow, eta = (r"\leftarrow", r"\eta") if p.latex_output else ("<-", "eta")
        update = (f"{w} {arrow} {w} - {eta}{flavor.times}{pr(derivation.lhs)} = {numbers[0]} - "
                  f"{rate}{flavor.times}{flavor.paren(numbers[1]) if slope < 0 else numbers[1]}"
                  f" = {flavor.number(format_number(new))}")
    return {"point": point, "sgd": update, "rate": at.learning_rate, "source": at.source}


def _forward_order(node) -> tuple:
    """x and y first, then layer by layer: parameters, named quantities (mu, xhat), z, a."""
    if node.kind in ("x", "y"):
        return -1, node.kind, node.indices
    rank = 0 if node.is_parameter else {"z": 2, "a": 3}.get(node.kind, 1)
    return node.layer, rank, node.kind, node.indices
