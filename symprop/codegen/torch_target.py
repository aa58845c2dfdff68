"""The ``torch`` target: each layer a ``torch.autograd.Function`` whose backward is the
derivation (``templates/codegen/torch.py.j2``).

The forms are the NumPy target's (:mod:`.rules`: the stable forward, g' through the output
where SymPy finds one, the output layer's delta and loss in their combined stable forms),
printed for tensors by :class:`~.torch_printer.TorchCodePrinter`. A hidden layer whose g' is
written through its output saves a^(l), not z^(l), and evaluates a = g(z) in z's memory.

This first version covers networks of dense layers (every activation and loss); the other
kinds are refused with a message until their array forms are printed for torch.
"""

from __future__ import annotations

from ..derivation import backprop
from ..errors import InputError
from ..spec import Spec
from .context import coefficient_code, common_context, output_helpers
from .rules import A, Z, activation_code, output_code
from .torch_printer import TorchCodePrinter

__all__ = ["torch_context"]

#: a = g(z) written over z's memory, for the forwards torch has an in-place method of.
_IN_PLACE = {"torch.sigmoid(Z)": "Z.sigmoid_()", "torch.tanh(Z)": "Z.tanh_()",
             "torch.exp(Z)": "Z.exp_()", "Z": "Z"}


def _hidden(code, printer: TorchCodePrinter) -> dict:
    """One hidden dense layer: its forward a = g(z), what it saves, and dC/dz from dC/da."""
    printer._settings["symbol_names"] = {Z: "Z", A: "A"}
    forward = printer.doprint(code.forward)
    inplace = _IN_PLACE.get(forward) if code.through_output else None
    prime = None if code.prime == 1 else printer.doprint(code.prime)
    return {"label": code.label, "forward": inplace or forward, "inplace": inplace is not None,
            "saved": "A" if code.through_output else "Z", "prime": prime,
            "formula": f"{code.label}'(z) = {code.prime}"}


def torch_context(spec: Spec, source: str | None = None) -> dict:
    """Everything ``templates/codegen/torch.py.j2`` needs."""
    if not spec.is_dense:
        other = next(c.kind for c in spec.stack if c.kind != "dense")
        raise InputError(f"the torch target does not yet print a {other} layer",
                         where=spec.source, hint="Generate the NumPy module (--target numpy, "
                         "the default), which covers every kind")
    engine = backprop(spec)
    g, L = engine.graph, spec.L
    printer = TorchCodePrinter()
    out = output_code(engine)
    hidden = {l: _hidden(activation_code(g.activation[l]), printer) for l in range(1, L)}
    output = activation_code(g.activation[L])
    printer._settings["symbol_names"] = {Z: "Z"}
    output_forward = printer.doprint(output.forward)
    context = common_context(spec, "torch", source, out)
    context.update(
        hidden=hidden,
        output={"label": output.label, "forward": output_forward},
        helpers=output_helpers(out, printer),
        coefficient=coefficient_code(out, printer),
        target="torch")
    return context
