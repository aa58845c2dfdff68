"""``custom``: node j is a formula the user writes, e.g. an RBF layer::

    formula = "exp(-s_j * sum_k((a_k - c_jk)**2))"
    params = { c = "jk", s = "j" }

``a_k`` is node k of layer l-1 (only inside ``sum_k(...)``), ``a_j`` node j of layer l-1
(when the two layers are equally wide), each parameter is written with its index letters
(``c_jk``: shape (n_l, n_{l-1})), and the functions are the activation whitelist.  The text
is parsed, never evaluated (:mod:`symprop.safe_parse`); every derivative comes from SymPy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import sympy

from ..activations import ACTIVATIONS, X
from ..errors import ExpressionError
from ..notation import own_kind
from ..safe_parse import FUNCTIONS, parse_expression
from .base import LayerConfig, ParamSpec, ParseContext, describe
from .formula import FormulaLayer
from .letters import SumK, free_letters, slot, slot_of
from .symbolic import GraphContext

__all__ = ["RESERVED", "CustomConfig", "formula_functions"]

#: Names a custom parameter cannot take: design.md section 3b's list, exactly (besides the
#: functions a formula calls, exp or sigmoid).  A name another kind gives its own quantities
#: (r, mu, sigma, xhat) is free: names resolve in their own layer (notation.OwnKind).
RESERVED = frozenset({"a", "z", "w", "b", "x", "y", "u", "h", "gamma", "beta", "delta", "C",
                      "n", "i", "j", "k", "l", "L", "e", "pi"})
#: Letters only: the module key is the name and the layer number (c4), so no digits.
_NAME = re.compile(r"[A-Za-z]+")
_LETTERS = ("j", "k", "jk", "kj")


def formula_functions(activations: Mapping[str, str]) -> dict:
    """The functions a custom formula may call: SymPy's whitelist, the built-in activations,
    the spec's own [activations] and ``sum_k``."""
    functions = dict(FUNCTIONS)
    definitions = {name: rule.build(*rule.defaults) for name, rule in ACTIVATIONS.items()
                   if rule.build is not None and name not in functions}
    definitions |= {name: parse_expression(text, {"x": X}) for name, text in activations.items()}
    for name, definition in definitions.items():
        functions[name] = _applied(definition)
    functions["sum_k"] = SumK
    return functions


def _applied(definition: sympy.Expr):
    """An activation's expression in x as a function: f(t) is the expression at x = t."""
    return lambda t: definition.xreplace({X: t})


@dataclass(frozen=True)
class CustomConfig(LayerConfig):
    kind = "custom"
    KEYS: ClassVar[dict] = {"width": None, "formula": None, "params": {}, "init": {}}

    formula: str = ""
    #: (name, index letters) of each parameter, in the order declared.
    params: tuple[tuple[str, str], ...] = ()
    #: (name, constant start value) for the parameters that have one.
    init: tuple[tuple[str, float], ...] = ()
    #: The width of layer l-1 (a_j needs it to equal this layer's width).
    below: int = 0

    @classmethod
    def parse(cls, table: Mapping[str, Any], ctx: ParseContext) -> CustomConfig:
        table = cls.check_keys(table, ctx)
        width = ctx.width(table)
        params = _parse_params(table["params"], ctx)
        init = _parse_init(table["init"], dict(params), ctx)
        if not isinstance(table["formula"], str):
            raise ctx.error(f"expected the formula as a string, got {describe(table['formula'])}",
                            "formula")
        config = cls(ctx.index, width, table["formula"], params, init, ctx.below)
        config.letter_form(ctx.activations, ctx)  # every check of the formula is in there
        return config

    @property
    def same_width(self) -> bool:
        return self.width == self.below

    def letter_form(self, activations: Mapping[str, str], ctx: ParseContext | None = None
                    ) -> sympy.Expr:
        """The formula of node j in slots (see :mod:`.letters`); checked when ``ctx`` is given."""
        where = ctx.where("formula") if ctx else f"layer {self.index} (custom), key 'formula'"
        variables = {"a_k": slot("in", letters="k")}
        if self.same_width:
            variables["a_j"] = slot("in", letters="j")
        elif re.search(r"\ba_j\b", self.formula):
            raise ExpressionError(
                f"a_j is node j of layer {self.index - 1}, which has {self.below} node(s) "
                f"while this layer has {self.width}", where=where,
                hint="Use a_j only when the two layers are equally wide; sum over a_k instead")
        variables |= {f"{name}_{letters}": slot("param", own_kind(name), letters)
                      for name, letters in self.params}
        expr = parse_expression(self.formula, variables, where=where,
                                functions=formula_functions(activations))
        _check_form(expr, self, where)
        return expr

    def reached(self, source: int, ks: set[int]) -> set[int]:
        """Every node of layer l-1 when the formula sums over a_k, else node j (a_j)."""
        if "sum_k" in self.formula:
            return super().reached(source, ks)
        return set(ks) if source == self.index - 1 else set()

    def parameters(self, widths: tuple[int, ...]) -> tuple[ParamSpec, ...]:
        size = {"j": self.width, "k": widths[self.index - 1]}
        starts = dict(self.init)
        return tuple(ParamSpec(name, own_kind(name), letters, tuple(size[c] for c in letters),
                               starts.get(name, "fan_in")) for name, letters in self.params)

    def to_table(self) -> dict[str, Any]:
        table = {"kind": self.kind, "width": self.width, "formula": self.formula,
                 "params": dict(self.params)}
        return table | ({"init": dict(self.init)} if self.init else {})

    def describe(self) -> str:
        return f"custom, {self.formula}"

    def notation(self) -> list[tuple[str, str]]:
        rows = [(f"{name}_{{{letters}}}^{{({self.index})}}",
                 f"parameter of custom layer ${self.index}$, shape from its letters")
                for name, letters in self.params]
        return super().notation() + rows

    def composed_size(self, sizes: Mapping[int, int], spec) -> int:
        """The formula's tree, each input node counted at its own size, sum_k n times."""
        below = sizes[self.index - 1]

        def size(e) -> int:
            if isinstance(e, SumK):
                return spec.layers[self.index - 1] * size(e.args[0])
            info = slot_of(e)
            if info is not None and info.role == "in":
                return below
            return 1 + sum(size(a) for a in e.args)
        return size(self.letter_form(spec.activations))

    def reference(self, ops, params: dict, outputs: dict):
        """The formula on axes (batch, j, k), translated node by node into the library's
        functions (:meth:`symprop.reference._Ops.translate`): a_k is A[:, None, :], a_j is
        A[:, :, None], c_jk is C[None, :, :] (c_kj is C.T there), s_j is S[None, :, None],
        s_k is S[None, None, :], and sum_k sums the last axis."""
        form = self.letter_form(ops.spec.activations)
        a = outputs[self.index - 1]
        every = slice(None)
        axes = {"k": (None, None, every), "j": (None, every, None), "jk": (None, every, every)}
        values = {}
        for s in form.free_symbols:
            info = slot_of(s)
            value = a if info.role == "in" else params[str(info.name)]
            if info.letters == "kj":
                value = value.T
            where = axes[info.letters.replace("kj", "jk")]
            values[s] = value[(every, *where[1:])] if info.role == "in" else value[where]
        total = (lambda e: e.sum(-1, keepdims=True)) if ops.name == "jax" else \
            (lambda e: e.sum(dim=-1, keepdim=True))
        result = ops.translate(form, values, {SumK: total})
        return ops.xp.broadcast_to(result[..., 0], (a.shape[0], self.width))

    def build(self, ctx: GraphContext) -> FormulaLayer:
        return FormulaLayer(self, ctx, self.letter_form(ctx.spec.activations))


def _parse_params(params: Any, ctx: ParseContext) -> tuple[tuple[str, str], ...]:
    if not isinstance(params, Mapping):
        raise ctx.error(f"expected a table of name = \"letters\", got {describe(params)}",
                        "params", hint='Write e.g. params = { c = "jk", s = "j" }')
    out = []
    for name, letters in params.items():
        if not _NAME.fullmatch(name) or name in RESERVED or name in FUNCTIONS:
            why = (f"A formula calls the function {name}(...)" if name in FUNCTIONS else
                   "Use letters only (the module key adds the layer number: c4), and none of "
                   f"the reserved names {', '.join(sorted(RESERVED))}")
            raise ctx.error(f"{name!r} cannot be a parameter's name", "params", hint=why)
        if letters not in _LETTERS:
            raise ctx.error(f"parameter {name!r} has index letters {letters!r}", "params",
                            hint='Each parameter takes "j" (one per node of this layer), "k" '
                                 '(one per node of layer l-1), "jk" or "kj"')
        out.append((name, letters))
    return tuple(out)


def _parse_init(init: Any, params: dict[str, str], ctx: ParseContext
                ) -> tuple[tuple[str, float], ...]:
    if not isinstance(init, Mapping):
        raise ctx.error(f"expected a table of name = number, got {describe(init)}", "init")
    for name in init:
        if name not in params:
            raise ctx.error(f"{name!r} is not a declared parameter", "init",
                            hint=f"Declared: {', '.join(params) or 'none'}")
    return tuple((name, ctx.number(init, name, label=f"init.{name}")) for name in init)


def _check_form(expr: sympy.Expr, config: CustomConfig, where: str) -> None:
    """The formula's letters are where they belong, and it uses what it declares."""
    def fail(what: str, hint: str | None = None):
        raise ExpressionError(what, where=where, hint=hint)

    if "k" in free_letters(expr):
        fail("a_k (or a parameter with the letter k) appears outside sum_k(...)",
             hint="k runs over the nodes of the layer below; only sum_k(...) binds it")
    for s in expr.atoms(SumK):
        if s.args[0].atoms(SumK):
            fail("sum_k(...) inside sum_k(...): k is already taken")
        if "k" not in free_letters(s.args[0]):
            fail("a sum_k(...) whose terms do not depend on k", hint="Sum over a_k or c_jk")
    roles = {slot_of(s).role for s in expr.free_symbols if slot_of(s)}
    if "in" not in roles:
        fail(f"the formula does not read layer {config.index - 1} (a_k or a_j)")
    used = {str(slot_of(s).name) for s in expr.free_symbols
            if slot_of(s) and slot_of(s).role == "param"}
    for name, _ in config.params:
        if name not in used:
            fail(f"the parameter {name!r} is declared but the formula does not use it")
