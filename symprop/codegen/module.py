"""Generated NumPy modules (design.md section 5): build the template context, render, load.

``generate(spec, style)`` runs the pipeline's printing half: derivation (the chain-rule
engine) -> row forms (:mod:`.rules`) -> NumPy code (:mod:`.printer`) -> Jinja2 template
(``templates/codegen/<style>.py.j2``).  The result, a :class:`GeneratedModule`, holds the
source and can write it to a real file and import it from there (so tracebacks, ``inspect``
and debuggers see the code a user reads).
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

import sympy

from .._version import __version__
from ..activations import generic_activation
from ..budget import scalar_estimate
from ..derivation import Backprop, backprop
from ..errors import InputError
from ..io import write_atomic
from ..spec import Spec
from ..templating import render
from .helpers import Helper, make_helper
from .printer import HELPERS, NumpyCodePrinter, _generic_error, inplace_statements
from .rules import A, ActivationCode, OutputCode, Y, Z, activation_code, output_code
from .scalar import scalar_lines
from .stable import LogSoftmax, SoftmaxRow

__all__ = ["STYLES", "GeneratedModule", "generate", "load_module"]

STYLES = ("vectorized", "scalar")
_module_counter = itertools.count()


@dataclass
class GeneratedModule:
    """A generated module: its source and what produced it."""

    spec: Spec
    style: str
    source: str
    #: The template context the source was rendered from (inspectable).
    context: dict = field(repr=False)

    def write(self, path: str | Path) -> Path:
        """Write the source atomically to ``path``."""
        return write_atomic(path, self.source)

    @property
    def name(self) -> str:
        """A module name for its file: the spec's name as an identifier, and the style."""
        return f"{_module_name(self.spec)}_{self.style}"

    def load(self, path: str | Path | None = None) -> ModuleType:
        """Write the source to ``path`` (or a temporary file) and import it from there."""
        if path is None:
            path = Path(tempfile.mkdtemp(prefix="symprop-")) / f"{self.name}.py"
        self.write(path)
        return load_module(path)

    @property
    def cautions(self) -> list[str]:
        """Numerical caveats of this module (also in its header)."""
        return list(self.context["cautions"])

    def __str__(self) -> str:
        return self.source


def _module_name(spec: Spec) -> str:
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in spec.name).strip("_")
    return cleaned if cleaned and not cleaned[0].isdigit() else "network"


def load_module(path: str | Path, name: str | None = None) -> ModuleType:
    """Import a Python file as a fresh module object (not cached under its name)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"cannot import {path}: no such file")
    name = name or f"symprop_generated_{next(_module_counter)}_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise InputError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


# ------------------------------------------------------------------ context
def _activation_helpers(engine: Backprop, printer: NumpyCodePrinter, *, prime_layers: range,
                        softmax_forward: bool, written_out: frozenset[int] = frozenset()
                        ) -> list[Helper]:
    """One forward helper per distinct activation of the network (but none for a layer of
    ``written_out``, whose a = g(z) the module computes without one), and a g' helper for those
    of ``prime_layers`` whose g' is not written through the output (sigma' = a(1 - a) is
    inlined where it is used); no helper a module would not call."""
    g = engine.graph
    helpers, seen = [], set()
    for l in range(1, g.L + 1):
        code = activation_code(g.activation[l])
        if l in written_out:
            pass
        elif (code.key, "forward") not in seen and (softmax_forward or g.is_elementwise(l)):
            seen.add((code.key, "forward"))
            helpers.append(make_helper(f"_act_{code.key}", {Z: "z"}, code.forward,
                                       f"a = {code.label}(z), elementwise.", printer))
        needs_prime = (l in prime_layers and code.prime is not None
                       and not code.prime_is_constant and not code.through_output)
        if needs_prime and (code.key, "prime") not in seen:
            seen.add((code.key, "prime"))
            helpers.append(make_helper(f"_act_{code.key}_prime", {Z: "z", A: "a"}, code.prime,
                                       f"{code.label}'(z) = {code.prime} (SymPy's derivative "
                                       "of the stable form).", printer))
    return helpers


def _layer_steps(engine: Backprop, printer: NumpyCodePrinter) -> dict[int, dict]:
    """Per layer of the vectorized module: how the forward step evaluates a = g(z) and what
    the backward step multiplies Delta by.

    A hidden layer whose g' is written through its output (sigma' = a(1 - a)) never needs
    Z^(l) again, so a = g(z) is evaluated into Z^(l)'s own memory (``inplace``: ufuncs with
    ``out=``) and the backward step uses A^(l) as its scratch once it is done reading it.
    A softmax output is computed transposed in memory (``transposed``): its row reductions
    then run along contiguous memory, which matters for a narrow output and a big batch.
    """
    g = engine.graph
    steps = {}
    for l in range(1, g.L + 1):
        code = activation_code(g.activation[l])
        printer._settings["symbol_names"] = {Z: f"Z{l}"}
        inplace = (inplace_statements(code.forward, f"Z{l}", printer)
                   if l < g.L and code.through_output else None)
        scratch = f"A{l}" if inplace is not None else f"Z{l}"
        steps[l] = {"forward": f"_act_{code.key}", "label": code.label, "inplace": inplace,
                    "note": "",
                    "transposed": l == g.L and not g.is_elementwise(l),
                    "prime_factors": _prime_factors(code, l, printer, scratch)
                    if l < g.L else []}
    return steps


def _prime_factors(code: ActivationCode, layer: int, printer: NumpyCodePrinter,
                   scratch: str) -> list[dict]:
    """What Delta^(l) is multiplied by, in place, factor by factor (nothing for g' = 1).

    A g' written through the output (sigma' = a (1 - a)) no longer needs Z^(l), so each
    composite factor is evaluated into ``scratch`` (Z^(l), or A^(l) itself when Z^(l)'s
    memory became A^(l)) and the backward step allocates no temporary array; any other g'
    is one call of its helper.  With A^(l) as the scratch, the factors that read A^(l) go
    first and one composite factor last (it overwrites A^(l)).
    """
    if code.prime == 1:
        return []
    if not code.through_output:
        return [{"setup": [], "value": f"_act_{code.key}_prime(Z{layer}, A{layer})"}]
    printer._settings["symbol_names"] = {A: f"A{layer}", Z: f"Z{layer}"}
    def composite(f):
        return not (f.is_Symbol or f.is_Number)

    factors = sorted(sympy.Mul.make_args(code.prime), key=composite)
    if scratch == f"A{layer}" and sum(map(composite, factors)) > 1:
        factors = [sympy.expand(code.prime)]
    steps = []
    for f in factors:
        setup = inplace_statements(f, scratch, printer) if composite(f) else None
        if setup is None:
            steps.append({"setup": [], "value": printer.doprint(f)})
        else:
            steps.append({"setup": setup, "value": scratch})
    return steps


def _output_helpers(out: OutputCode, printer: NumpyCodePrinter, z_note: str = ""
                    ) -> list[Helper]:
    """``_output_delta`` and ``_loss_terms``; a constant factor of the loss (cross-entropy's
    -1) is left to the batch loss, which applies it once to the sum (one pass less)."""
    row = {Z: "z", A: "a", Y: "y"}
    coefficient, terms = _loss_coefficient(out)
    times = "" if coefficient == 1 else f"{coefficient} times "
    return [
        make_helper("_output_delta", row, out.delta,
                    f"delta^(L) = dC_0/dz^(L) = {out.delta}, one sample per row "
                    f"(RowSum: sum over the output nodes).\n\n    From {out.how}; "
                    f"dC_0/da^(L) = {out.loss_derivative}.", printer),
        make_helper("_loss_terms", row, terms,
                    f"The loss of each output node is {times}{terms} (written through z where "
                    f"a log would lose precision{z_note}); C_0 is {times}the row sum.",
                    printer),
    ]


def _loss_coefficient(out: OutputCode) -> tuple[sympy.Expr, sympy.Expr]:
    """(c, t) with the loss term = c t and c a number: -1 and y z for cross-entropy."""
    coefficient, terms = out.loss.as_coeff_Mul()
    return (coefficient, terms) if coefficient.is_Number else (sympy.S.One, out.loss)


def _coefficient_code(out: OutputCode, printer: NumpyCodePrinter) -> str:
    """How the batch loss applies the loss's constant factor: '', '-' or 'c * '."""
    coefficient = _loss_coefficient(out)[0]
    if coefficient == 1:
        return ""
    return "-" if coefficient == -1 else f"{printer.doprint(coefficient)} * "


def _common_context(spec: Spec, style: str, source: str | None, out: OutputCode) -> dict:
    widths, parameters = spec.layers, []  # (key, shape) in the order of PARAMETER_KEYS
    for l in range(1, spec.L + 1):
        parameters.append((f"W{l}", (widths[l], widths[l - 1])))
        if spec.has_bias(l):
            parameters.append((f"b{l}", (widths[l],)))
    return {
        "cautions": out.cautions,
        "version": __version__, "style": style, "spec": spec, "source": source,
        "layers": list(spec.layers), "L": spec.L,
        "bias": [spec.has_bias(l) for l in range(1, spec.L + 1)],
        "activations": [str(spec.activation_of(l)) for l in range(1, spec.L + 1)],
        "z_names": ", ".join(f"Z{l}" for l in range(1, spec.L + 1)) + ("," if spec.L == 1 else ""),
        "a_names": ", ".join(f"A{l}" for l in range(spec.L + 1)),
        "keys": [key for key, _ in parameters],
        "loss_coefficient": _coefficient_code(out, NumpyCodePrinter()),
        "shapes": [shape for _, shape in parameters],
        "y_order": None,
    }


def _through_log_softmax(out: OutputCode) -> OutputCode | None:
    """The output forms for a forward pass that leaves Z^(L) = log softmax(Z^(L)), or None.

    softmax and log softmax do not change when a row is shifted by a constant, and
    log softmax(z) = z - logsumexp(z) is such a shift: with Z^(L) replaced by its log
    softmax, LogSoftmax(z) is z itself and softmax(z) is the forward output a.  Valid only
    when z appears nowhere else in delta^(L) and the loss (checked here).
    """
    done = {LogSoftmax(Z): Z, SoftmaxRow(Z): A}
    hidden = sympy.Dummy()
    if any(Z in e.xreplace(dict.fromkeys(done, hidden)).free_symbols
           for e in (out.delta, out.loss)):
        return None
    return replace(out, delta=out.delta.xreplace(done), loss=out.loss.xreplace(done))


def vectorized_context(spec: Spec, source: str | None = None) -> dict:
    """Everything ``templates/codegen/vectorized.py.j2`` needs."""
    engine = backprop(spec)
    out = output_code(engine)
    printer = NumpyCodePrinter()
    per_layer = _layer_steps(engine, printer)
    inplace = frozenset(l for l, step in per_layer.items() if step["inplace"] is not None)
    normalized = None if engine.graph.is_elementwise(spec.L) else _through_log_softmax(out)
    if normalized is not None:
        # one pass gives a = softmax(z) and turns Z^(L) into log softmax(z) for the loss
        out = normalized
        printer.helpers_used.add("softmax_keep_log")
        per_layer[spec.L].update(forward="_softmax_keep_log",
                                 note=f"Z{spec.L} is now log softmax(Z{spec.L}): the loss reads it")
    # the backward pass calls g' of hidden layers; the output's is in _output_delta
    helpers = (_activation_helpers(engine, printer, prime_layers=range(1, spec.L),
                                   softmax_forward=True,
                                   written_out=inplace | ({spec.L} if normalized else set()))
               + _output_helpers(out, printer, "" if normalized is None else
                                 ", z being log softmax(z^(L)) after the forward pass"))
    context = _common_context(spec, "vectorized", source, out)
    # the pre-activations still needed after the forward pass (the rest became A^(l))
    kept = [f"Z{l}" for l in range(1, spec.L + 1) if l not in inplace]
    context.update(z_names=", ".join(kept) + ("," if len(kept) == 1 else ""),
                   y_order="F" if per_layer[spec.L]["transposed"] else None,
                   per_layer=per_layer, helpers=helpers,
                   builtins=[h for h in HELPERS if h in printer.helpers_used])
    return context


def scalar_context(spec: Spec, source: str | None = None) -> dict:
    """Everything ``templates/codegen/scalar.py.j2`` needs."""
    engine = backprop(spec)
    printer = NumpyCodePrinter({"allow_unknown_functions": True})
    # one line per node: g' of every layer; softmax is written out, not called
    helpers = _activation_helpers(engine, printer, prime_layers=range(1, spec.L + 1),
                                  softmax_forward=False)
    lines = scalar_lines(engine, printer)
    context = _common_context(spec, "scalar", source, output_code(engine))
    context.update(helpers=helpers, builtins=[h for h in HELPERS if h in printer.helpers_used],
                   reduce="np.mean" if spec.reduction == "mean" else "np.sum",
                   **lines)
    return context


_CONTEXTS = {"vectorized": vectorized_context, "scalar": scalar_context}


def generate(spec: Spec, style: str = "vectorized", *, source: str | None = None,
             force: bool = False) -> GeneratedModule:
    """Generate the NumPy module of ``spec`` (``source``: the spec's path, for the header).

    The scalar style writes a line per weight: a big network is refused before any work
    (:class:`~symprop.budget.TooBigError`) unless ``force``.
    """
    if style not in _CONTEXTS:
        raise InputError(f"unknown style {style!r}", hint=f"Use one of {', '.join(STYLES)}")
    if style == "scalar":
        scalar_estimate(spec).check(force)
    for l in range(1, spec.L + 1):
        if spec.activation_of(l).name == "g":
            raise _generic_error(generic_activation(l)(Z), source or spec.source)
    context = _CONTEXTS[style](spec, source or spec.source)
    text = render(f"codegen/{style}.py.j2", **context)
    return GeneratedModule(spec=spec, style=style, source=text, context=context)
