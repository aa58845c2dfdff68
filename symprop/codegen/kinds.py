"""Array code for the layers that are not dense, printed from each layer's derived letter
forms (:mod:`symprop.layers.derived`): its forward formula, the vector-Jacobian product it
passes back to each input, and the batch sums of its parameter gradients.  Nothing here is
written per kind.

A letter form prints on the axes (batch, j, k): node j of the layer on axis 1, node k (or m)
of its input on axis 2, a sum over k or j a sum over that axis (:class:`AxesPrinter`).  Where
no quantity carries two letters -- a normalisation, a residual sum, a gate, a softmax -- it
prints on (batch, node) alone, every sum a row sum, and reads like hand-written NumPy::

    Xhat2 = (A1 - Mu2)/Sigma2
    dA1 = (dA2*gamma - (np.sum(dA2*gamma*Xhat2, axis=1, keepdims=True)*Xhat2 + ...)/4)/Sigma2

A custom layer whose parameter carries both letters (an RBF's c_jk) needs the third axis.
"""

from __future__ import annotations

from typing import ClassVar

import sympy

from ..activations import ActivationPrime, ElementwiseActivation, Softmax
from ..layers.letters import N, SumJ, SumK, free_letters, slot, slot_of
from .printer import NumpyCodePrinter
from .rules import A, Z, activation_code
from .stable import rewrite_stable

__all__ = ["AxesPrinter", "array_name", "layer_code"]

#: A named quantity's array in generated code: mu -> Mu2, xhat -> Xhat2.
_NAMED = {"mu": "Mu", "sigma": "Sigma", "r": "R", "xhat": "Xhat"}


def array_name(layer, info) -> str:
    """The generated module's name for what a slot stands for in layer ``layer``."""
    l = layer.index
    if info.role == "in":
        return f"A{l - 1}"
    if info.role == "from":
        return f"A{layer.config.source}"
    if info.role == "out":
        return f"A{l}"
    if info.role == "grad":
        return f"dA{l}"
    if info.role == "param":
        key = next(p.key for p in layer.param_specs.values() if p.kind == info.name)
        return f'params["{key}{l}"]'
    return f"{_NAMED.get(info.name, info.name.capitalize())}{l}"


class AxesPrinter(NumpyCodePrinter):
    """Prints a letter form as NumPy on the axes (batch, j, k), or (batch, node) in 2-D."""

    _default_settings: ClassVar[dict] = {**NumpyCodePrinter._default_settings,
                                         "layer": None, "three_d": False}

    def _print_Symbol(self, expr):
        """A slot is an array: node quantities (batch, n), a layer's quantity of one value
        per sample (batch, 1), a parameter (n,) or (n_l, n_{l-1}); in 3-D each takes its
        letters' axes."""
        info = slot_of(expr)
        if info is None:
            return super()._print_Symbol(expr)
        name = array_name(self._settings["layer"], info)
        letters = info.letters
        if letters == "kj" or (info.role == "param" and letters == "mk"):
            name, letters = f"{name}.T", letters[::-1]
        if not self._settings["three_d"]:
            return name
        j = "j" in letters
        k = any(c in letters for c in "km")
        if info.role == "param":
            return f"{name}[None, {':' if j else 'None'}, {':' if k else 'None'}]"
        if k:
            return f"{name}[:, None, :]"
        return f"{name}[:, :, None]"

    def _sum(self, expr, axis: int) -> str:
        return f"{self._module_format('numpy.sum')}({self._print(expr.args[0])}, " \
               f"axis={axis}, keepdims=True)"

    def _print_SumK(self, expr):
        """The sum over the input's nodes: its own axis in 3-D, the row in 2-D."""
        return self._sum(expr, 2 if self._settings["three_d"] else 1)

    def _print_SumJ(self, expr):
        return self._sum(expr, 1)


def _three_d(expr: sympy.Expr) -> bool:
    """Does a form need the third axis: a quantity with two letters, a sum whose terms also
    depend on a letter it does not sum, or two letters side by side outside the sums (node j
    of the layer times node k of its input)?"""
    for s in expr.free_symbols:
        info = slot_of(s)
        if info is not None and len(info.letters) > 1:
            return True
    for total, letter in [(e, "k") for e in expr.atoms(SumK)] + [(e, "j") for e in
                                                                expr.atoms(SumJ)]:
        if free_letters(total.args[0]) - {letter}:
            return True
    return len(free_letters(expr)) > 1


def stable(expr: sympy.Expr) -> sympy.Expr:
    """Activations in a form written in their overflow-free code forms (sigma' through the
    output where SymPy found that form), then the table of stable identities."""
    def forward(e):
        return activation_code(type(e)).forward.xreplace({Z: e.args[0]})

    def prime(e):
        code = activation_code(e.base)
        arg = e.args[0]
        if code.through_output:
            info = slot_of(arg)
            return code.prime.xreplace({A: slot("out", letters=info.letters)})
        return code.prime.xreplace({Z: arg, A: code.forward.xreplace({Z: arg})})

    expr = expr.replace(lambda e: isinstance(e, ActivationPrime), prime)
    expr = expr.replace(lambda e: isinstance(e, ElementwiseActivation), forward)
    return rewrite_stable(expr)


def _print(printer: AxesPrinter, expr: sympy.Expr, width: int) -> tuple[str, bool]:
    expr = stable(expr).xreplace({N: sympy.Integer(width)})
    three = _three_d(expr)
    printer._settings["three_d"] = three
    return printer.doprint(expr), three


def layer_code(layer, helpers_printer: NumpyCodePrinter) -> dict:
    """The forward lines, the arrays the backward reads, the parameter gradients and what
    the layer passes back to each input, for one layer without a z."""
    if layer.kind == "concat":
        return _concat_code(layer)
    printer = AxesPrinter({"layer": layer})
    printer.helpers_used = helpers_printer.helpers_used
    forms = layer.forms
    l, width = layer.index, layer.n_in
    forward = []
    for q, form in layer.named_forms.items():
        text, three = _print(printer, form, width)
        if three and slot_of(q).letters:
            text = f"({text})[:, :, 0]"
        forward.append(f"{array_name(layer, slot_of(q))} = {text}")
    if getattr(layer, "activation", None) is Softmax:
        helpers_printer.helpers_used.add("softmax")
        forward.append(f"A{l} = _softmax(A{l - 1})  # softmax over each sample's nodes")
    else:
        text, three = _print(printer, forms.output, width)
        if three:
            text = f"({text})[:, :, 0]"
        forward.append(f"A{l} = {text}" + ("" if "j" in free_letters(forms.output)
                                           else f" + np.zeros({layer.width})"))
    backward, reads = [], set()
    for kind, gradient in forms.param_gradients.items():
        spec = layer.param_specs[kind]
        text, three = _print(printer, gradient, width)
        axes = "(0, 1)" if three and "j" not in spec.letters else "0"
        total = f"np.sum({text}, axis={axes})"
        if three and spec.letters == "j":
            total += "[:, 0]"
        elif three and spec.letters == "kj":
            total += ".T"
        backward.append(f"d{spec.key}{l} = {total}")
        reads |= gradient.free_symbols
    passes = {}
    for role, vjp in forms.vjp.items():
        source = layer.roles[role]
        text, three = _print(printer, vjp, width)
        if three:
            text = f"({text})[:, 0, :]"
        passes.setdefault(source, []).append(text)
        reads |= vjp.free_symbols
    saved = sorted({array_name(layer, slot_of(s)) for s in reads
                    if slot_of(s) is not None and slot_of(s).role == "named"})
    return {"kind": layer.kind, "forward": forward, "saved": saved, "backward": backward,
            "passes": {s: " + ".join(texts) for s, texts in passes.items()},
            "bare": {s for s, texts in passes.items() if texts == [f"dA{l}"]}}


def _concat_code(layer) -> dict:
    """a^(l) = [a^(l-1), a^(m)]: the gradient splits back into the two blocks of columns."""
    l, m, split = layer.index, layer.config.source, layer.config.split
    passes = {l - 1: f"dA{l}[:, :{split}].copy()"}
    passes[m] = passes.pop(m) + f" + dA{l}[:, {split}:]" if m == l - 1 else \
        f"dA{l}[:, {split}:].copy()"
    return {"kind": "concat", "forward": [f"A{l} = np.concatenate([A{l - 1}, A{m}], axis=1)"],
            "saved": [], "backward": [], "passes": passes, "bare": set()}
