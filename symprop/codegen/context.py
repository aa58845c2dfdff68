"""What the generated modules' templates share: the header, the parameters and their
checks, the helper functions of activations and of the output layer."""

from __future__ import annotations

import sympy

from .._version import __version__
from ..derivation import Backprop
from ..spec import Spec
from .helpers import Helper, make_helper
from .printer import NumpyCodePrinter
from .rules import A, OutputCode, Y, Z, activation_code

__all__ = ["activation_helpers", "coefficient_code", "common_context", "learning_below",
           "output_helpers"]


def activation_helpers(engine: Backprop, printer: NumpyCodePrinter, *, prime_layers: range,
                       softmax_forward: bool, written_out: frozenset[int] = frozenset(),
                       kinds: tuple[str, ...] = ("dense",), with_z: bool = False) -> list[Helper]:
    """One forward helper per distinct activation of the network (but none for a layer of
    ``written_out``, whose a = g(z) the module computes without one), and a g' helper for those
    of ``prime_layers`` whose g' is not written through the output (sigma' = a(1 - a) is
    inlined where it is used); no helper a module would not call."""
    g = engine.graph
    helpers, seen = [], set()
    for l, layer in g.layers.items():
        # the others' activations are written out inline; ``with_z``: every layer with a z
        if layer.kind not in kinds and not (with_z and layer.through_activation):
            continue
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


def output_helpers(out: OutputCode, printer: NumpyCodePrinter, z_note: str = ""
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


def coefficient_code(out: OutputCode, printer: NumpyCodePrinter) -> str:
    """How the batch loss applies the loss's constant factor: '', '-' or 'c * '."""
    coefficient = _loss_coefficient(out)[0]
    if coefficient == 1:
        return ""
    return "-" if coefficient == -1 else f"{printer.doprint(coefficient)} * "


def learning_below(spec: Spec) -> dict[int, bool]:
    """r -> does a layer up to r have parameters?  dC/dA^(r) is worked out only then (no
    gradient is handed to a pool in front of every parameter)."""
    first = min((l for l, _ in spec.parameters()), default=spec.L + 1)
    return {r: r >= first for r in range(spec.L + 1)}


def common_context(spec: Spec, style: str, source: str | None, out: OutputCode) -> dict:
    """What both module styles' templates read: the header, the parameters, the checks."""
    parameters = [(f"{p.key}{l}", p) for l, p in spec.parameters()]  # PARAMETER_KEYS' order
    return {
        "cautions": out.cautions,
        "version": __version__, "style": style, "spec": spec, "source": source,
        "layers": list(spec.layers), "L": spec.L,
        "bias": [spec.has_bias(l) for l in range(1, spec.L + 1)],
        "activations": [str(spec.activation_of(l)) for l in range(1, spec.L + 1)],
        "z_names": ", ".join(f"Z{l}" for l in range(1, spec.L + 1)) + ("," if spec.L == 1 else ""),
        "a_names": ", ".join(f"A{l}" for l in range(spec.L + 1)),
        "keys": [key for key, _ in parameters],
        "loss_coefficient": coefficient_code(out, NumpyCodePrinter()),
        "shapes": [p.shape for _, p in parameters],
        "starts": [(key, p.shape, p.init, p.fan_in or spec.layers[l - 1])
                   for (key, p), (l, _) in zip(parameters, spec.parameters())],
        "dense": spec.is_dense, "kinds": [c.describe() for c in spec.stack],
        "input_shape": spec.input_shape, "map_helpers": (),
        "y_order": None,
    }
