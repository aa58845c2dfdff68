"""Array code for the layers that are not dense, printed from each layer's derived letter
forms (:mod:`symprop.layers.derived`): its forward formula, the vector-Jacobian product it
passes back to each input, and the batch sums of its parameter gradients.  Nothing here is
written per kind.

A letter form prints on the axes (batch, j, k): node j of the layer on axis 1, node k (or m)
of its input on axis 2, a sum over k or j a sum over that axis (:func:`axes_printer`).  Where
no quantity carries two letters -- a normalisation, a residual sum, a gate, a softmax -- it
prints on (batch, node) alone, every sum a row sum, and reads like hand-written NumPy::

    Xhat2 = (A1 - Mu2)/Sigma2
    dA1 = (dA2*gamma - (np.sum(dA2*gamma*Xhat2, axis=1, keepdims=True)*Xhat2 + ...)/4)/Sigma2

A custom layer whose parameter carries both letters (an RBF's c_jk) needs the third axis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import ClassVar

import sympy
from sympy.printing.precedence import PRECEDENCE

from ..activations import ActivationPrime, ElementwiseActivation, Softmax
from ..layers.letters import N, SumJ, SumK, free_letters, slot, slot_of
from .forms import NUMPY_FORMS, ArrayForms, Product
from .rules import A, Z, activation_code
from .stable import join_exponentials, rewrite_stable

__all__ = ["array_name", "axes_printer", "layer_code", "param_gradient_name"]

#: A named quantity's array in generated code: mu -> Mu2, xhat -> Xhat2.
_NAMED = {"mu": "Mu", "sigma": "Sigma", "r": "R", "xhat": "Xhat"}


#: Local names of a framework module's layer functions that a parameter's name (its key and
#: the layer number) must not take: such a parameter is spelt p_<key><l> there.
_TAKEN = re.compile(r"(d?A|Mu|Sigma|R|Xhat|Z|Delta|W|b)\d+")


#: The module helpers a map kind's lines may call (each target's template defines them).
MAP_HELPERS = ("_windows", "_add_windows", "_window_max", "_to_window_max", "_spread",
               "_unpool_max", "_conv", "_conv_weight", "_conv_input", "_rnn_forward",
               "_rnn_deltas")


@dataclass
class MapCode:
    """What a kind that writes its own array lines (conv, pooling, flatten: windows of a
    map and contractions over their letters) asks of the target: its parameter names, its
    einsum and sums, the module helpers of :data:`MAP_HELPERS` (recorded as used), and an
    activation a = g(z) with g' in its stable code forms."""

    layer: object
    forms: ArrayForms
    helpers: set

    def param(self, key: str) -> str:
        return param_name(f"{key}{self.layer.index}", self.forms.param)

    def einsum(self, spec: str, *arrays: str) -> str:
        return self.forms.einsum.format(spec=repr(spec), args=", ".join(arrays))

    def total(self, x: str, axes: tuple[int, ...]) -> str:
        return self.forms.batch_total.format(x=x, axis=axes)

    def native(self, name: str, **fields) -> str | None:
        """The target's own call ``name`` (see :attr:`ArrayForms.native`), or None."""
        spelling = dict(self.forms.native).get(name)
        if spelling is None:
            return None
        if spelling.startswith("_"):  # a helper of the module's own
            self.helpers.add(spelling.split("(")[0])
        return spelling.format(**fields)

    def call(self, helper: str, *args) -> str:
        self.helpers.add(helper)
        return f"{helper}({', '.join(map(str, args))})"

    def activation(self, cls, z: str, a: str) -> tuple[str | None, str | None, str | None]:
        """(g(z) or None for the identity, g' or None where it is 1, the array g' reads:
        a where SymPy wrote g' through the output, else z)."""
        code = activation_code(cls)
        printer = self.forms.printer()
        printer.helpers_used = self.helpers
        printer._settings["symbol_names"] = {Z: z, A: a}
        forward = None if code.forward == Z else printer.doprint(code.forward)
        if code.prime == 1:
            return forward, None, None
        prime = printer.parenthesize(code.prime, PRECEDENCE["Mul"])
        return forward, prime, a if code.through_output else z

    def times_prime(self, x: str, cls, z: str, a: str) -> Product:
        """``x`` (dC/da) times g'(z), as the target writes it best (:meth:`ArrayForms.
        times_prime`); ``x`` itself for the identity."""
        _, prime, _ = self.activation(cls, z, a)
        return Product(x, x) if prime is None else self.forms.times_prime(
            x, prime, activation_code(cls), z)


def array_name(layer, info, param: str = NUMPY_FORMS.param) -> str:
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
        return param_name(f"{key}{l}", param)
    return f"{_NAMED.get(info.name, info.name.capitalize())}{l}"


def param_gradient_name(key: str) -> str:
    """The array of dC/dparam in generated code: dgamma2, dW1, but d_A4 for a custom
    parameter named A (dA4 is dC/dA^(4))."""
    return f"d_{key}" if re.fullmatch(r"A\d+", key) else f"d{key}"


def param_name(key: str, param: str) -> str:
    """A parameter as the layer's code reads it: params["c4"] in NumPy, c4 in a framework's
    layer function, and p_A4 there for a name the function uses itself (A4 is a^(4))."""
    if param == "{key}" and _TAKEN.fullmatch(key):
        return f"p_{key}"
    return param.format(key=key)


class _Axes:
    """Prints a letter form on the axes (batch, j, k), or (batch, node) in 2-D; mixed in
    before a target's printer (:func:`axes_printer`)."""

    forms: ClassVar[ArrayForms]

    def _print_Symbol(self, expr):
        """A slot is an array: node quantities (batch, n), a layer's quantity of one value
        per sample (batch, 1), a parameter (n,) or (n_l, n_{l-1}); in 3-D each takes its
        letters' axes."""
        info = slot_of(expr)
        if info is None:
            return super()._print_Symbol(expr)
        name = array_name(self._settings["layer"], info, self.forms.param)
        letters = info.letters
        axes = self._settings["axes"]
        if not axes:
            return name
        where = [axes[c] for c in letters]
        if where != sorted(where):  # c_kj on (j, k): its transpose
            name = f"{name}.T"
        ndim = max(axes.values()) + 1
        index = [":" if (i in where or (i == 0 and info.role != "param")) else "None"
                 for i in range(ndim)]
        return f"{name}[{', '.join(index)}]"

    def _sum(self, expr, axis: int) -> str:
        return self.forms.total.format(x=self._print(expr.args[0]), axis=axis)

    def _print_SumK(self, expr):
        """The sum over the input's nodes: its letter's own axis, the row in 2-D."""
        axes = self._settings["axes"]
        return self._sum(expr, axes[expr.bound] if axes else 1)

    def _print_SumJ(self, expr):
        axes = self._settings["axes"]
        return self._sum(expr, axes[expr.bound] if axes else 1)

    def _print_LogSumExp(self, expr):
        """log(sum_k(exp(u))) as the target's log-sum-exp of u over the sum's axis (a form
        written out for one node is the printer's own: nested logaddexp)."""
        total = expr.args[0]
        if not isinstance(total, SumK):
            return super()._print_LogSumExp(expr)
        (u,) = total.args[0].args
        axes = self._settings["axes"]
        return self.forms.logsumexp.format(x=self._print(u),
                                           axis=axes[total.bound] if axes else 1)


@cache
def axes_printer(forms: ArrayForms) -> type:
    """The axes printer of a target: :class:`_Axes` over the target's printer."""
    base = forms.printer
    return type(f"Axes{base.__name__}", (_Axes, base), {
        "forms": forms,
        "_default_settings": {**base._default_settings, "layer": None, "axes": None}})


#: The axes of a letter form's letters: (batch, j, k) -- k or m, the input's node, on the
#: third -- and (batch, j, m, k) where a sum over k holds the input's node m as well (a
#: custom layer's backward through sum_k c_mk ...).
THREE_D = {"j": 1, "k": 2, "m": 2}
FOUR_D = {"j": 1, "m": 2, "k": 3}


def _axes(expr: sympy.Expr) -> dict[str, int] | None:
    """The axes a form needs: None (batch, node) where no quantity carries two letters, no
    sum's terms depend on a letter it does not sum, and no two letters stand side by side
    outside the sums (node j of the layer times node k of its input), and no sum is over
    parameters alone; else three axes, or four where a sum over k holds m too."""
    sums = [(e, e.bound) for e in expr.atoms(SumK) | expr.atoms(SumJ)]
    if any(isinstance(e, SumK) and "m" in free_letters(e.args[0]) for e, _ in sums):
        return FOUR_D
    for s in expr.free_symbols:
        info = slot_of(s)
        if info is not None and len(info.letters) > 1:
            return THREE_D
    if any(all(slot_of(s) is None or slot_of(s).role == "param" for s in total.free_symbols)
           for total, _ in sums):  # sum_k(v_k): a parameter alone has no batch axis
        return THREE_D
    if any(free_letters(total.args[0]) - {letter} for total, letter in sums):
        return THREE_D
    return THREE_D if len(free_letters(expr)) > 1 else None


def stable(expr: sympy.Expr) -> sympy.Expr:
    """Activations in a form written in their overflow-free code forms (sigma' through the
    output where SymPy found that form), then the table of stable identities, and products
    of exponentials joined (exp(u) exp(-A) is exp(u - A))."""
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
    return join_exponentials(rewrite_stable(expr))


def _print(printer, expr: sympy.Expr, width: int, reads: set | None = None,
           three: bool = False) -> tuple[str, dict | None]:
    """A form printed in its stable code form, and the axes it took (None: two; ``three``:
    at least three); the symbols that form reads are added to ``reads`` (a^(l) where sigma'
    is written through the output)."""
    expr = stable(expr).xreplace({N: sympy.Integer(width)})
    axes = _axes(expr) or (THREE_D if three else None)
    printer._settings["axes"] = axes
    if reads is not None:
        reads |= expr.free_symbols
    return printer.doprint(expr), axes


def layer_code(layer, helpers: set[str], forms: ArrayForms = NUMPY_FORMS) -> dict:
    """The forward lines, the arrays the backward reads, the parameter gradients and what
    the layer passes back to each input, for one layer without a z, in ``forms``' target
    (the NumPy helpers it calls are added to ``helpers``).

    Also what a framework's layer function takes and saves: ``inputs``, the layers it reads
    (in order); ``params``, its parameters' (key, name in the code); ``reads``, every array
    its backward lines read besides dA^(l)."""
    l = layer.index
    own = getattr(layer, "array_code", None)
    if own is not None:  # a kind that writes its own lines (windows of a map)
        code = own(MapCode(layer, forms, helpers))
        params = [(f"{p.key}{l}", param_name(f"{p.key}{l}", forms.param))
                  for p in layer.config.parameters(())]
        return {"kind": layer.kind, "bare": set(), "inputs": [l - 1], "params": params,
                "backward": [], **code}
    inputs = list(dict.fromkeys(layer.roles.values())) if layer.kind != "concat" else \
        list(dict.fromkeys([l - 1, layer.config.source]))
    if layer.kind == "concat":
        return {**_concat_code(layer, forms), "inputs": inputs, "params": [], "reads": []}
    params = [(f"{p.key}{l}", param_name(f"{p.key}{l}", forms.param))
              for p in layer.param_specs.values()]
    printer = axes_printer(forms)({"layer": layer})
    printer.helpers_used = helpers
    letter_forms = layer.forms
    width = layer.n_in
    forward = []
    for q, form in layer.named_forms.items():
        text, three = _print(printer, form, width)
        if three and slot_of(q).letters:
            text = f"({text})[:, :, 0]"
        forward.append(f"{array_name(layer, slot_of(q), forms.param)} = {text}")
    if getattr(layer, "activation", None) is Softmax:
        helpers.add("softmax")
        forward.append(f"A{l} = {forms.softmax.format(x=f'A{l - 1}')}"
                       "  # softmax over each sample's nodes")
    else:
        text, three = _print(printer, letter_forms.output, width)
        if three:
            text = f"({text})[:, :, 0]"
        forward.append(f"A{l} = {text}" + ("" if "j" in free_letters(letter_forms.output)
                                           else forms.broadcast.format(width=layer.width,
                                                                       like=f"A{l - 1}")))
    backward, reads = [], set()
    for kind, gradient in letter_forms.param_gradients.items():
        spec = layer.param_specs[kind]
        text, three = _print(printer, gradient, width, reads, three=spec.letters != "j")
        axes = "(0, 1)" if three and "j" not in spec.letters else "0"
        total = forms.batch_total.format(x=text, axis=axes)
        if three and spec.letters == "j":
            total += "[:, 0]"
        elif three and spec.letters == "kj":
            total += ".T"
        if set(spec.letters) - free_letters(stable(gradient)):  # d a_j/d c_jk the same for all k
            total += forms.broadcast.format(width=spec.shape, like=f"dA{l}")
        backward.append(f"{param_gradient_name(f'{spec.key}{l}')} = {total}")
    passes = {}
    for role, vjp in letter_forms.vjp.items():
        source = layer.roles[role]
        text, axes = _print(printer, vjp, width, reads)
        if axes:
            text = f"({text})[:, 0, :{', 0' if axes is FOUR_D else ''}]"
        if vjp != 0 and "m" not in free_letters(vjp):  # sum_k a_k: one value per row
            text += forms.broadcast.format(width=layer.sources_width(source),
                                           like=f"dA{layer.index}")
        passes.setdefault(source, []).append(text)
    slots = [slot_of(s) for s in reads if slot_of(s) is not None]
    saved = sorted({array_name(layer, info) for info in slots if info.role == "named"})
    return {"kind": layer.kind, "forward": forward, "saved": saved, "backward": backward,
            "passes": {s: " + ".join(texts) for s, texts in passes.items()},
            "bare": {s for s, texts in passes.items() if texts == [f"dA{l}"]},
            "inputs": inputs, "params": params,
            "reads": sorted({array_name(layer, info, forms.param) for info in slots
                             if info.role != "grad"})}


def _concat_code(layer, forms: ArrayForms) -> dict:
    """a^(l) = [a^(l-1), a^(m)]: the gradient splits back into the two blocks of columns."""
    l, m, split = layer.index, layer.config.source, layer.config.split
    passes = {l - 1: forms.copy.format(x=f"dA{l}[:, :{split}]")}
    passes[m] = passes.pop(m) + f" + dA{l}[:, {split}:]" if m == l - 1 else \
        forms.copy.format(x=f"dA{l}[:, {split}:]")
    forward = f"A{l} = {forms.concatenate.format(a=f'A{l - 1}', b=f'A{m}')}"
    return {"kind": "concat", "forward": [forward], "saved": [], "backward": [],
            "passes": passes, "bare": set()}
