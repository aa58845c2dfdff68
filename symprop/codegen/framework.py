"""The ``torch`` and ``jax`` targets: each layer a function whose backward is the derivation
(``templates/codegen/torch.py.j2``: a ``torch.autograd.Function``; ``jax.py.j2``: a
``jax.custom_vjp``).

The forms are the NumPy target's (:mod:`.rules`: the stable forward, g' through the output
where SymPy finds one, the output layer's delta and loss in their combined stable forms),
printed for the framework by its printer (:mod:`.torch_printer`, :mod:`.jax_printer`). A
hidden layer whose g' is written through its output saves a^(l), not z^(l); torch evaluates
a = g(z) in z's memory (XLA decides memory itself).

This first version covers networks of dense layers (every activation and loss); the other
kinds are refused with a message until their array forms are printed for the frameworks.
"""

from __future__ import annotations

from sympy.printing.precedence import PRECEDENCE

from ..derivation import backprop
from ..errors import InputError
from ..spec import Spec
from .context import coefficient_code, common_context, output_helpers
from .jax_printer import JaxCodePrinter
from .rules import A, Z, activation_code, output_code
from .torch_printer import TorchCodePrinter

__all__ = ["FRAMEWORKS", "framework_context"]

#: target -> (its printer, a = g(z) written over z's memory for the forwards that have an
#: in-place form; an identity layer's a is its z in every framework).
FRAMEWORKS = {
    "torch": (TorchCodePrinter, {"torch.sigmoid(Z)": "Z.sigmoid_()", "torch.tanh(Z)":
                                 "Z.tanh_()", "torch.exp(Z)": "Z.exp_()", "Z": "Z"}),
    "jax": (JaxCodePrinter, {"Z": "Z"}),
}


def _hidden(code, printer, in_place: dict) -> dict:
    """One hidden dense layer: its forward a = g(z), what it saves, and dC/dz from dC/da."""
    printer._settings["symbol_names"] = {Z: "Z", A: "A"}
    forward = printer.doprint(code.forward)
    inplace = in_place.get(forward) if code.through_output else None
    # parenthesised as a factor: (A*(1 - A)), (1 - A**2), but (Z > 0) as it prints
    prime = None if code.prime == 1 else printer.parenthesize(code.prime, PRECEDENCE["Mul"])
    return {"label": code.label, "forward": inplace or forward, "inplace": inplace is not None,
            "saved": "A" if code.through_output else "Z", "prime": prime,
            "formula": f"{code.label}'(z) = {code.prime}"}


def framework_context(spec: Spec, source: str | None, target: str) -> dict:
    """Everything ``templates/codegen/<target>.py.j2`` needs."""
    if not spec.is_dense:
        other = next(c.kind for c in spec.stack if c.kind != "dense")
        raise InputError(f"the {target} target does not yet print a {other} layer",
                         where=spec.source, hint="Generate the NumPy module (--target numpy, "
                         "the default), which covers every kind")
    engine = backprop(spec)
    g, L = engine.graph, spec.L
    printer_class, in_place = FRAMEWORKS[target]
    printer = printer_class()
    out = output_code(engine)
    hidden = {l: _hidden(activation_code(g.activation[l]), printer, in_place)
              for l in range(1, L)}
    output = activation_code(g.activation[L])
    printer._settings["symbol_names"] = {Z: "Z"}
    output_forward = printer.doprint(output.forward)
    context = common_context(spec, target, source, out)
    context.update(
        hidden=hidden,
        output={"label": output.label, "forward": output_forward},
        helpers=output_helpers(out, printer),
        coefficient=coefficient_code(out, printer),
        target=target)
    return context
