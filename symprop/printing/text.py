"""Plain-text seed notation: a ``StrPrinter`` subclass and the text derivation renderer.

``SeedStrPrinter`` prints network symbols from their :class:`~symprop.notation.Node`
(``w_12^(L)``, ``a_2^(L-1)``, layers relative to L unless ``layers="absolute"``),
activations as ``g^(L)(z_1^(L))``, ``g'^(L)(...)``, ``sigma'(...)``, and derivatives as
``dC_0/dw_12^(L)``.  The derivation's layout is the template ``templates/derivation.txt.j2``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import sympy
from sympy.printing.str import StrPrinter

from ..activations import ActivationPrime, ElementwiseActivation, GenericActivation, Softmax
from ..notation import layer_label, node_of
from ..templating import render

__all__ = ["SeedStrPrinter", "derivation_context", "render_derivation", "text"]


#: Order of factors in a printed product, by node kind (seed 000 writes w_jk a_k).
_KIND_ORDER = {"delta": 3, "w": 5, "b": 6, "a": 7, "x": 7, "z": 8, "y": 9}


def seed_factor_key(factor: sympy.Basic) -> tuple:
    """Numbers, then sums, then deltas, then g', then w, b, a, z, y; ties by SymPy's order."""
    if factor.is_Number:
        rank = 0
    elif factor.is_Add or (factor.is_Pow and factor.base.is_Add):
        rank = 1
    elif isinstance(factor, sympy.Function):
        rank = 4
    else:
        node = node_of(factor.base if factor.is_Pow else factor)
        rank = _KIND_ORDER.get(node.kind, 10) if node else 10
    return (rank, sympy.default_sort_key(factor))


class SeedStrPrinter(StrPrinter):
    """StrPrinter that speaks seed 000's notation."""

    _default_settings: ClassVar[dict] = {**StrPrinter._default_settings, "L": None,
                                         "layers": "relative", "order": "none"}

    @property
    def _relative_to(self) -> int | None:
        """The output layer L when layers print relative to it, else None (absolute)."""
        return self._settings["L"] if self._settings["layers"] == "relative" else None

    def _layer(self, layer: int) -> str:
        return layer_label(layer, self._relative_to)

    def _print_Symbol(self, expr):
        """Network symbols by their node, relative to the output layer."""
        node = node_of(expr)
        if node is None:
            return super()._print_Symbol(expr)
        if node.kind == "a" and node.layer == 0:
            node = type(node)("x", None, node.j)
        return node.text(self._relative_to)

    def _print_Function(self, expr):
        """g^(l)(z), g'^(l)(z), sigma'(z) and softmax_i(z^(l)) in the seed's style."""
        cls = type(expr)
        if isinstance(expr, Softmax):
            layer = node_of(expr.inputs[0]).layer
            return f"softmax_{expr.index}(z^({self._layer(layer)}))"
        if isinstance(expr, (ElementwiseActivation, ActivationPrime)):
            base = cls.base if isinstance(expr, ActivationPrime) else cls
            tick = "'" if isinstance(expr, ActivationPrime) else ""
            layer = f"^({self._layer(base.layer)})" if issubclass(base, GenericActivation) else ""
            return f"{base.text_name}{tick}{layer}({self._print(expr.args[0])})"
        return super()._print_Function(expr)

    def _print_Mul(self, expr):
        """Factors in the seed's order: 2 (a_1 - y_1) g'(z_1) a_2, w_12 a_2, delta_j w_jk."""
        factors = sorted(sympy.Mul.make_args(expr), key=seed_factor_key)
        return super()._print_Mul(sympy.Mul(*factors, evaluate=False))

    def _print_Derivative(self, expr):
        """d(num)/d(den), the seed's partial-derivative notation in plain text."""
        (var, count), = expr.variable_count
        num = self._print(expr.expr)
        return f"d{num}/d{self._print(var)}" + (f"^{count}" if count != 1 else "")


def text(expr: Any, L: int | None = None, layers: str = "relative") -> str:
    """Print ``expr`` in plain seed notation."""
    return SeedStrPrinter({"L": L, "layers": layers}).doprint(expr)


def _general(symbol: sympy.Symbol, index: tuple[str, int], printer) -> sympy.Symbol:
    """The symbol with its node index replaced by the summation letter, for display."""
    node = node_of(symbol)
    if node is None or node.layer != index[1] or node.kind not in ("a", "z"):
        return symbol
    return sympy.Symbol(f"{node.kind}_{index[0]}^({printer._layer(node.layer)})")


def _general_factor(factor, index, printer) -> sympy.Derivative:
    return sympy.Derivative(_general(factor.numerator, index, printer),
                            _general(factor.denominator, index, printer))


def _paren(s: str) -> str:
    return f"({s})"


def derivation_context(derivation, layers: str = "relative") -> dict:
    """Everything the text template needs, already printed (the template only lays out)."""
    graph = derivation.graph
    p = SeedStrPrinter({"L": graph.L, "layers": layers})
    pr = p.doprint

    def factor_view(f):
        view = {"name": pr(f.derivative), "value": pr(f.value), "backward": None}
        if f.backward is not None:
            view["backward"] = pr(f.backward.lhs)
            return view
        view["definition"] = f"{pr(f.numerator)} = {pr(f.definition)}"
        view["wrt"] = pr(f.denominator)
        view["terms"] = [pr(t) for t in f.terms]
        view["term_derivatives"] = [pr(d) for d in f.term_derivatives]
        view["vanishing"] = len(f.vanishing)
        return view

    chain = derivation.chain
    paths = [{"factors": [factor_view(f) for f in path.factors] if n == 0 else [],
              "product": " * ".join(_paren(pr(f.value)) for f in path.factors)}
             for n, path in enumerate(chain.paths)]
    first = chain.paths[0].factors
    if chain.sum_index:
        first = [_general_factor(f, chain.sum_index, p) for f in first]
    symbolic = " * ".join(_paren(pr(f)) for f in (
        [f.derivative for f in first] if not chain.sum_index else first))
    backward = derivation.backward
    nested = None
    if backward is not None and backward.target != derivation.target:
        nested = derivation_context(backward, layers)
    spec = graph.spec
    expanded, specialised = derivation.expanded(), derivation.specialised()
    return {
        "title": pr(derivation.lhs),
        "spec": {"name": spec.name, "layers": list(spec.layers),
                 "activation": ", ".join(str(a) for a in spec.activation),
                 "loss": spec.loss, "reduction": spec.reduction},
        "chain_general": symbolic,
        "sum_index": (f"{chain.sum_index[0]} in layer {p._layer(chain.sum_index[1])}"
                      if chain.sum_index else None),
        "paths": paths,
        "result": pr(derivation.result),
        "expanded": pr(expanded) if expanded != derivation.result else None,
        "specialised": pr(specialised) if specialised != derivation.result else None,
        "deltas": [f"{pr(s)} = {pr(v)}" for s, v in derivation.delta_definitions.items()],
        "batch": f"{pr(derivation.batch.lhs)} = "
                 + ("(1/n) " if spec.reduction == "mean" else "")
                 + f"sum_(i=0)^(n-1) dC_i/d{pr(derivation.symbol)}",
        "nested": nested,
    }


def render_derivation(derivation, layers: str = "relative") -> str:
    """The derivation as plain text, step by step (template ``derivation.txt.j2``)."""
    return render("derivation.txt.j2", d=derivation_context(derivation, layers))
