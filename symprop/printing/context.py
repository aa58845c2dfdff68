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

from ..activations import ActivationPrime, Softmax
from ..notation import Node, node_of
from .latex import SeedLatexPrinter
from .seed import MAX_TERMS, elide
from .text import SeedStrPrinter

__all__ = ["FLAVORS", "Flavor", "derivation_context", "elide", "general_node"]

#: A result is also shown with its deltas substituted back only when it has at most this many.
MAX_EXPANDED_DELTAS = 8
#: ... and when it has at most this many products (see Derivation.expanded_size).
MAX_EXPANDED_SIZE = 64


def general_node(kind: str, layer: int | str, *indices: str) -> sympy.Symbol:
    """The symbol of a node with letter indices, e.g. a_j^(L), for general equations."""
    return Node(kind, layer, *indices).symbol


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
        needs = precedence(expr) < PRECEDENCE["Mul"] or text.startswith("-")
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
                out.append("- " + printer.doprint(-item))
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
    def d_by(wrt: str, body: str) -> str:
        return f"d/d{wrt} [ {body} ]"

    @staticmethod
    def batch(lhs: str, target: str, mean: bool) -> str:
        return f"{lhs} = " + ("(1/n) " if mean else "") + f"sum_(i=0)^(n-1) dC_i/d{target}"


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
    def d_by(wrt: str, body: str) -> str:
        return rf"\frac{{\partial}}{{\partial {wrt}}} \left( {body} \right)"

    @staticmethod
    def batch(lhs: str, target: str, mean: bool) -> str:
        return (f"{lhs} = " + (r"\frac{1}{n} " if mean else "")
                + rf"\sum_{{i=0}}^{{n-1}} \frac{{\partial C_{{i}}}}{{\partial {target}}}")


FLAVORS: dict[str, Flavor] = {"text": TextFlavor("text"), "latex": LatexFlavor("latex")}


def _general(symbols: set, index: tuple[str, int]) -> sympy.Symbol:
    """The one symbol of a factor position, or (when it varies along the sum) its node with
    the summation letter as index: a_j^(L) for a_0^(L), a_1^(L), ..."""
    symbol = next(iter(symbols))
    node = node_of(symbol)
    if len(symbols) == 1 or node is None:
        return symbol
    return general_node(node.kind, node.layer, index[0])


def _general_factor(chain, n: int) -> sympy.Derivative:
    """Factor n of the chain rule as the sum's general term (the factor itself if no sum)."""
    factors = [p.factors[n] for p in chain.paths]
    if not chain.sum_index:
        return factors[0].derivative
    return sympy.Derivative(_general({f.numerator for f in factors}, chain.sum_index),
                            _general({f.denominator for f in factors}, chain.sum_index))


def activation_identities(expr: sympy.Expr, printer) -> list[str]:
    """For each concrete g' in ``expr``: g'(z) = SymPy's derivative (= its form in g(z))."""
    lines = []
    z = sympy.Symbol("z", real=True)
    primes = sorted({type(e) for e in expr.atoms(ActivationPrime) if e.definition is not None},
                    key=lambda c: c.__name__)
    for prime in primes:
        sides = [prime(z), prime.explicit(z)]
        through = prime.through_output_factored()
        if through is not None:
            from ..activations import A

            sides.append(through.xreplace({A: prime.base(z)}))
        lines.append(" = ".join(printer.doprint(s) for s in sides))
    return lines


def jacobian_identities(chain, printer) -> list[str]:
    """For a vector activation (softmax) on the path: its Jacobian entry in general form."""
    lines = []
    layers = sorted({node_of(f.numerator).layer for path in chain.paths for f in path.factors
                     if f.backward is None and node_of(f.numerator) is not None
                     and node_of(f.numerator).kind == "a"
                     and isinstance(f.definition, Softmax)})
    i, m = sympy.symbols("i m", integer=True)
    for layer in layers:
        a_i, a_m = general_node("a", layer, "i"), general_node("a", layer, "m")
        lhs = sympy.Derivative(a_i, general_node("z", layer, "m"))
        rhs = a_i * (sympy.KroneckerDelta(i, m) - a_m)
        lines.append(f"{printer.doprint(lhs)} = {printer.doprint(rhs)}")
    return lines


def derivation_context(derivation, flavor: str | Flavor = "text",
                       layers: str = "relative") -> dict:
    """Everything a derivation template needs, printed in ``flavor`` (templates only lay out)."""
    flavor = FLAVORS[flavor] if isinstance(flavor, str) else flavor
    graph = derivation.graph
    p = flavor.printer(graph.L, layers)
    pr = p.doprint

    def factor_view(f):
        view = {"name": pr(f.derivative), "value": pr(f.value), "backward": None}
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
        return view

    chain = derivation.chain
    # only the paths shown are printed: a wide layer's backward sum has hundreds
    products = [flavor.ellipsis if path is None else
                flavor.product(p, [f.value for f in path.factors])
                for path in elide(list(chain.paths), (0,))]
    general = [_general_factor(chain, n) for n in range(len(chain.paths[0].factors))]
    chain_general = flavor.chain(p, general)
    summed = None
    if chain.sum_index:
        letter, layer = chain.sum_index
        upper = graph.widths[layer] - 1
        chain_general = flavor.sum_over(letter, upper, chain_general)
        summed = {"index": letter, "layer": p.layer(layer), "terms": len(chain.paths)}
    backward = derivation.backward
    nested = None
    if backward is not None and backward.target != derivation.target:
        nested = derivation_context(backward, flavor, layers)
    spec = graph.spec
    deltas = derivation.delta_nodes  # a wide layer's are many: only the shown are worked out
    # substituting many deltas back to the output multiplies the size; say so instead
    expanded = (derivation.expanded() if len(deltas) <= MAX_EXPANDED_DELTAS
                and derivation.expanded_size <= MAX_EXPANDED_SIZE else None)
    specialised = derivation.specialised()
    return {
        "title": pr(derivation.lhs),
        "target": pr(derivation.symbol),
        "spec": {"name": spec.name, "layers": list(spec.layers),
                 "activation": ", ".join(str(a) for a in spec.activation),
                 "loss": spec.loss, "reduction": spec.reduction},
        "chain_general": chain_general,
        "sum": summed,
        "factors": [factor_view(f) for f in chain.paths[0].factors],
        "n_paths": len(chain.paths),
        "products": products,
        "result": pr(derivation.result),
        "expanded": pr(expanded) if expanded not in (None, derivation.result) else None,
        "identities": (activation_identities(
            derivation.result if expanded is None else expanded, p)
                       + jacobian_identities(chain, p)),
        "specialised": pr(specialised) if specialised != derivation.result else None,
        "deltas": [flavor.vellipsis if d is None else
                   f"{pr(d.symbol)} = {pr(derivation.engine.dC_dz(d.layer, d.j))}"
                   for d in elide(deltas)],
        "batch": flavor.batch(pr(derivation.batch.lhs), pr(derivation.symbol),
                              spec.reduction == "mean"),
        "nested": nested,
        "diagram": None,
    }
