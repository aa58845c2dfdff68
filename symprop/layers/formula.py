"""The symbolic layer of every kind defined by a letter formula (see :mod:`.letters`):
layernorm, rmsnorm, add, multiply and custom layers.

From the formula of node j -- and the formulas of the layer's named quantities (mu, sigma,
xhat) -- SymPy derives, once per layer, in letters:

* the Jacobian entry d a_j / d a_m of each input (the layer before, and the ``from`` layer):
  ``KroneckerDelta(j, m) D_j + D_k(k -> m)``, D_j the derivative by node j of the input
  where the formula reads it directly, D_k by the node k inside sum_k;
* d a_j / d p for each parameter p.

Each is written back in the layer's own names: a named quantity's formula becomes its name
(sqrt(var + eps) -> sigma), the input is written through a normalised quantity where one
exists (a_j = mu + sigma xhat_j), the output's formula becomes a_j.  The engine reads the
concrete value for one node (:meth:`FormulaLayer.local`); documents and array forms read the
letter forms themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import sympy

from ..activations import absorb_sign
from ..notation import Node
from .derived import LetterForms
from .letters import LETTERS, N, SumK, concrete, distinct_sums, rename, slot, slot_of
from .symbolic import SUM_LETTERS, GraphContext, SymbolicLayer, general, node, parameter_nodes

__all__ = ["FormulaLayer", "exact"]

_J, _M = LETTERS["j"], LETTERS["m"]


def exact(value: float) -> sympy.Expr:
    """A short decimal (eps = 1e-5) as an exact rational, so symbolic proofs stay exact."""
    return sympy.nsimplify(value, rational=True) if len(repr(value)) < 12 else sympy.Float(value)


class FormulaLayer(SymbolicLayer):
    """A layer whose node j is ``output`` (in slots), with named quantities ``named``."""

    def __init__(self, config, ctx: GraphContext, output: sympy.Expr,
                 named: Mapping[sympy.Symbol, sympy.Expr] | None = None):
        super().__init__(config, ctx)
        self.kind = config.kind
        self.output_form = output
        self.named_forms = dict(named or {})
        self.entries = self.outputs
        self.adjoints = self.nodes("adj")
        self.n_in = len(self.sources_of[self.index - 1])
        self.param_specs = {p.kind: p for p in config.parameters(ctx.spec.layers)}
        self.roles = {"in": self.index - 1}
        if config.source_layer is not None:
            self.roles["from"] = config.source_layer

    # ------------------------------------------------------------ symbols
    def symbol_of(self, info, indices: tuple[int, ...]) -> sympy.Symbol:
        """The network's symbol for a slot at concrete indices."""
        if info.role in self.roles:
            return self.sources_of[self.roles[info.role]][indices[0]]
        if info.role == "out":
            return self.outputs[indices[0]]
        return node(info.name, self.index, *indices)

    def concrete(self, expr: sympy.Expr, **binding: int) -> sympy.Expr:
        return concrete(expr, binding, self.symbol_of, self.n_in)

    @functools.cached_property
    def named(self) -> dict[sympy.Symbol, sympy.Expr]:
        out = {}
        for q, form in self.named_forms.items():
            info = slot_of(q)
            for j in (range(self.width) if info.letters else [None]):
                binding = {} if j is None else {"j": j}
                out[self.concrete(q, **binding)] = self.concrete(form, **binding)
        return out

    def definitions(self) -> dict[sympy.Symbol, sympy.Expr]:
        return self.named | {a: self.concrete(self.output_form, j=j)
                             for j, a in enumerate(self.outputs)}

    @property
    def parameters(self) -> list[Node]:
        return parameter_nodes(self.index, self.param_specs.values())

    # ------------------------------------------------------ derived, letters
    @functools.cached_property
    def forms(self) -> LetterForms:
        """What SymPy derives from the layer's formula (see :mod:`.derived`)."""
        return LetterForms(self.output_form, self.named_forms, tuple(self.roles),
                           {kind: p.letters for kind, p in self.param_specs.items()})

    @property
    def jacobians(self) -> dict[str, sympy.Expr]:
        """role ("in", "from") -> d a_j / d (node m of that input), in letters j, m."""
        return self.forms.jacobians

    @property
    def param_derivatives(self) -> dict[str, sympy.Expr]:
        """parameter kind -> d a_j / d p, in the parameter's letters (and j)."""
        return self.forms.param_derivatives

    def _reads_all(self, role: str) -> bool:
        """Does node j read every node of the input (through sum_k), or only node j?"""
        return self._local_forms[role][0] != 0

    @functools.cached_property
    def _position(self) -> dict[str, dict[sympy.Symbol, int]]:
        """role -> {node of that input: its index m} (a dict, not a scan per lookup)."""
        return {role: {s: m for m, s in enumerate(self.sources_of[layer])}
                for role, layer in self.roles.items()}

    # -------------------------------------------------- the engine's views
    def sources(self, i: int):
        out = []
        for role, layer in self.roles.items():
            nodes = self.sources_of[layer]
            out += list(nodes) if self._reads_all(role) else [nodes[i]]
        return tuple(dict.fromkeys(out))

    def readers(self, source: sympy.Symbol):
        found = set()
        for role, where in self._position.items():
            if source in where:
                found |= set(range(self.width)) if self._reads_all(role) else {where[source]}
        return sorted(i for i in found if i < self.width)

    @functools.cached_property
    def _local_forms(self) -> dict[str, tuple[sympy.Expr, sympy.Expr]]:
        """role -> d a_j / d (node m of that input) factored once in letters: (m != j, m = j).
        Binding the letters renames symbols one to one, so each node's derivative is its
        factored form without a factor_terms per pair of nodes."""
        out = {}
        for role, jac in self.jacobians.items():
            jac = jac.xreplace({N: sympy.Integer(self.n_in)})  # as concrete() binds n
            delta = sympy.KroneckerDelta(_J, _M)
            off, diag = jac.subs(delta, 0), rename(jac.subs(delta, 1), "m", "j")
            out[role] = tuple(absorb_sign(sympy.factor_terms(f)) for f in (off, diag))
        return out

    def local(self, i: int, wrt: sympy.Symbol) -> sympy.Expr:
        roles = [(role, where[wrt]) for role, where in self._position.items() if wrt in where]
        if len(roles) == 1:
            (role, m), = roles
            return self.concrete(self._local_forms[role][m == i], j=i, m=m)
        total = sympy.S.Zero
        for role, m in roles:  # both inputs are one layer: factor their sum
            total += self.concrete(self.jacobians[role], j=i, m=m)
        if total != 0 or self._param_of(wrt) is None:
            return absorb_sign(sympy.factor_terms(total))
        param = self._param_of(wrt)
        letters = self.param_specs[param.kind].letters
        binding = dict(zip(letters, param.indices))
        if binding.setdefault("j", i) != i:
            return sympy.S.Zero
        return absorb_sign(sympy.factor_terms(self.concrete(self.param_derivatives[param.kind],
                                                            **binding)))

    def _param_of(self, symbol: sympy.Symbol) -> Node | None:
        from ..notation import node_of

        found = node_of(symbol)
        return found if found is not None and found.layer == self.index \
            and found.kind in self.param_specs else None

    def expansion(self, i: int, wrt: sympy.Symbol):
        """How a textbook expands d a_i / d wrt when ``wrt`` sits inside the formula's one
        sum_k: (u, a_i written in u, the sum's terms, each term's derivative, d a_i / du),
        as seed 000 expands z; None when the formula has no such sum."""
        sums = list(self.output_form.atoms(SumK))
        if len(sums) != 1 or self.named_forms:
            return None
        (total,) = sums
        terms = [self.concrete(total.args[0], j=i, k=k) for k in range(self.n_in)]
        if not any(t.has(wrt) for t in terms):
            return None
        u = sympy.Symbol("u", real=True)
        outer = self.concrete(self.output_form.xreplace({total: u}), j=i)
        through = sympy.diff(outer, u).subs(outer, self.outputs[i])
        return (u, outer, terms, [sympy.factor_terms(sympy.diff(t, wrt)) for t in terms],
                absorb_sign(sympy.factor_terms(through)))

    def param_entries(self, param: Node):
        letters = self.param_specs[param.kind].letters
        return (param.indices[letters.index("j")],) if "j" in letters else range(self.width)

    # ------------------------------------------------ general equations
    def general_definitions(self) -> list[tuple[sympy.Expr, sympy.Expr]]:
        """The named quantities' formulas, then node j's."""
        out = [(self.general(q), self.general(form)) for q, form in self.named_forms.items()]
        return out + [(self.general(slot("out", letters="j")), self.general(self.output_form))]

    def general_contribution(self, source: int) -> sympy.Expr:
        """sum_j dC_0/da_j^(l) (d a_j / d a_k) through the Jacobian, or node k alone where
        node j reads node j only."""
        total = sympy.S.Zero
        for role, layer in self.roles.items():
            if layer != source:
                continue
            jacobian = rename(self.jacobians[role], "m", "k")
            if self._reads_all(role):
                total += sympy.Sum(self.adjoint_general("j") * self.general(jacobian),
                                   (SUM_LETTERS["j"], 0, self.width - 1))
            else:
                total += self.adjoint_general("k") * self.general(rename(jacobian, "j", "k"))
        return total

    def general_parameters(self) -> list[tuple[sympy.Expr, sympy.Expr]]:
        """dC_0/dp = dC_0/da_j^(l) (d a_j / d p), summed over j for a parameter without j."""
        out = []
        for kind, p in self.param_specs.items():
            term = self.adjoint_general("j") * self.general(self.param_derivatives[kind])
            if "j" not in p.letters:
                term = sympy.Sum(term, (SUM_LETTERS["j"], 0, self.width - 1))
            out.append((general(kind, self.index, *p.letters), term))
        return out

    # ----------------------------------------------------------- printing
    def general(self, expr: sympy.Expr, n: sympy.Expr | None = None) -> sympy.Expr:
        """A letter form in the network's general nodes: a_j^(l-1), gamma_j^(l), mu^(l), and
        sum_k as a SymPy Sum over k = 0 .. n - 1 (``n``: default the input's width)."""
        from ..notation import node_symbol

        upper = (self.n_in if n is None else n) - 1
        expr = distinct_sums(expr)

        def walk(e):
            if isinstance(e, SumK):
                return sympy.Sum(walk(e.args[0]), (LETTERS[e.bound], 0, upper))
            info = slot_of(e)
            if info is not None:
                layer = self.roles.get(info.role, self.index)
                kind = {"in": "a", "from": "a", "out": "a"}.get(info.role, info.name)
                if layer == 0 and kind == "a":
                    return node_symbol(Node("x", None, *info.letters))
                return node_symbol(Node(kind, layer, *info.letters) if info.letters
                                   else Node(kind, layer, None))
            if e == N:
                return self.n_in if n is None else n
            return e.func(*[walk(a) for a in e.args]) if e.args else e
        return walk(expr)
