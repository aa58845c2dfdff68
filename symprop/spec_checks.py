"""The checks of a spec's keys (design.md section 3): each raises a SpecError that names the
file, the key and the value, and says what is expected.  :mod:`symprop.spec` calls them."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sympy

from .activations import ACTIVATIONS, X
from .errors import SpecError
from .layers.base import MAX_LAYERS, MAX_WIDTH, ActivationChoice, describe, parse_activation
from .losses import A_OUT, LOSSES, Y_OUT
from .safe_parse import parse_expression

if TYPE_CHECKING:
    from .spec import Spec

_REDUCTIONS = ("mean", "sum")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
#: Losses whose output activation must produce probabilities, and the activations that do.
_PROBABILITY_ACTIVATIONS = {"sigmoid", "softmax", "g"}


def check_steps(value: Any, input_: int | tuple[int, ...], source: str) -> int | None:
    """T, the time steps of a sequence input (rnn layers): a whole number from 1, with a flat
    input = n_0 (X then has shape (batch, T, n_0))."""
    if value is None:
        return None
    where = f"{source}: key 'steps'"
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WIDTH:
        raise SpecError(f"expected the number of time steps, a whole number from 1, got "
                        f"{describe(value)}", where=where, hint="Write e.g. steps = 8")
    if isinstance(input_, tuple):
        raise SpecError(f"steps = {value} makes the input a sequence of vectors, but input is "
                        f"the map {list(input_)}", where=where,
                        hint="Give input = n_0, the width of one time step's vector")
    if value * input_ > MAX_WIDTH:
        raise SpecError(f"a sequence of {value} x {input_} entries is more than the "
                        f"{MAX_WIDTH} supported", where=where)
    return value


def check_input(value: Any, source: str) -> int | tuple[int, ...]:
    """n_0, or the shape [C, L] / [C, H, W] of an input of channels and positions."""
    where = f"{source}: key 'input'"
    if isinstance(value, (list, tuple)):
        shape = tuple(value)
        if not 2 <= len(shape) <= 3 or any(isinstance(v, bool) or not isinstance(v, int)
                                           or v < 1 for v in shape):
            raise SpecError(f"expected [channels, length] or [channels, height, width] of "
                            f"whole numbers from 1, got {describe(value)}", where=where,
                            hint="Write e.g. input = [1, 8, 8], or input = n_0 for a flat input")
        if math.prod(shape) > MAX_WIDTH:
            raise SpecError(f"the input {list(shape)} has {math.prod(shape)} entries, more "
                            f"than the {MAX_WIDTH} supported", where=where)
        return shape
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"expected the input's width, got {describe(value)}", where=where)
    if not 1 <= value <= MAX_WIDTH:
        raise SpecError(f"the input's width must be from 1 to {MAX_WIDTH}, got {value}",
                        where=where)
    return value


def check_reduction(reduction: Any, source: str) -> None:
    if reduction not in _REDUCTIONS:
        raise SpecError(f"unknown reduction {reduction!r}", where=f"{source}: key 'reduction'",
                        hint="Use \"mean\" (the default) or \"sum\".")


def check_layers(layers: Any, source: str) -> tuple[int, ...]:
    where = f"{source}: key 'layers'"
    if not isinstance(layers, (list, tuple)):
        raise SpecError(f"expected a list of widths, got {describe(layers)}", where=where,
                        hint="Write e.g. layers = [3, 6, 6, 4], input first.")
    if len(layers) < 2:
        raise SpecError(f"needs at least 2 layers (input and output), got {len(layers)}",
                        where=where)
    if len(layers) > MAX_LAYERS + 1:
        raise SpecError(f"{len(layers)} layers is more than the {MAX_LAYERS + 1} supported",
                        where=where)
    for i, width in enumerate(layers):
        if isinstance(width, bool) or not isinstance(width, int):
            raise SpecError(f"width of layer {i} must be a whole number, got {describe(width)}",
                            where=where)
        if width < 1:
            raise SpecError(f"width of layer {i} must be at least 1, got {width}", where=where)
        if width > MAX_WIDTH:
            raise SpecError(f"width of layer {i} is {width}, more than the {MAX_WIDTH} "
                            "supported", where=where)
    return tuple(layers)


def check_name(name: Any, source: str) -> str:
    if not isinstance(name, str):
        raise SpecError(f"expected a string, got {describe(name)}", where=f"{source}: key 'name'")
    if not 1 <= len(name) <= 80 or not all(ch.isprintable() for ch in name):
        raise SpecError("the name must be 1 to 80 printable characters",
                        where=f"{source}: key 'name'")
    return name


def check_custom_activations(defs: Any, source: str) -> dict[str, str]:
    where = f"{source}: table [activations]"
    if not isinstance(defs, Mapping):
        raise SpecError(f"expected a table of name = \"expression\", got {describe(defs)}",
                        where=where)
    for name, text in defs.items():
        key = f"{where}, key '{name}'"
        if not _NAME.fullmatch(name) or name.startswith("_"):
            raise SpecError("a custom activation's name must be letters, digits and _, "
                            "starting with a letter", where=key)
        if name in ACTIVATIONS:
            raise SpecError(f"'{name}' is a built-in activation", where=key,
                            hint="Choose another name for your definition.")
        if not isinstance(text, str):
            raise SpecError(f"expected an expression in x as a string, got {describe(text)}",
                            where=key)
        expr = parse_or_raise(text, {"x": X}, key)
        if X not in expr.free_symbols:
            raise SpecError("the activation does not depend on x", where=key)
    return dict(defs)


def check_activation(value: Any, n_layers: int, custom: Mapping[str, str],
                      source: str) -> tuple[ActivationChoice, ...]:
    where = f"{source}: key 'activation'"
    if isinstance(value, tuple) and all(isinstance(v, ActivationChoice) for v in value):
        choices = value
    elif isinstance(value, (list, tuple)):
        if len(value) != n_layers:
            raise SpecError(f"has {len(value)} entries but the network has {n_layers} weight "
                            f"layer(s)", where=where,
                            hint=f"Give one activation per layer 1..{n_layers}, or a single "
                                 "string for all.")
        choices = tuple(parse_activation(v, custom, f"{where}, entry {i + 1}")
                        for i, v in enumerate(value))
    else:
        choices = (parse_activation(value, custom, where),) * n_layers
    for layer, choice in enumerate(choices[:-1], start=1):
        if choice.name == "softmax":
            raise SpecError(f"softmax is only supported on the output layer, not layer {layer}",
                            where=where)
    return tuple(choices)


def check_bias(value: Any, n_layers: int, source: str) -> tuple[bool, ...]:
    where = f"{source}: key 'bias'"
    if isinstance(value, bool):
        return (value,) * n_layers
    if isinstance(value, (list, tuple)):
        if len(value) != n_layers:
            raise SpecError(f"has {len(value)} entries but the network has {n_layers} weight "
                            "layer(s)", where=where,
                            hint=f"Give one true/false per layer 1..{n_layers}, or one for all.")
        for i, v in enumerate(value):
            if not isinstance(v, bool):
                raise SpecError(f"entry {i + 1} must be true or false, got {describe(v)}",
                                where=where)
        return tuple(value)
    raise SpecError(f"expected true, false or a list of them, got {describe(value)}",
                    where=where)


def check_loss(loss: str, source: str) -> None:
    where = f"{source}: key 'loss'"
    if loss in LOSSES:
        return
    if _NAME.fullmatch(loss) and loss not in ("a", "y"):
        raise SpecError(f"unknown loss {loss!r}", where=where,
                        hint=f"Use one of {', '.join(LOSSES)}, or an expression in a and y "
                             "such as \"(a - y)**4\".")
    expr = parse_or_raise(loss, {"a": A_OUT, "y": Y_OUT}, where)
    if A_OUT not in expr.free_symbols:
        raise SpecError("the loss does not depend on the output a", where=where)


def check_loss_fits_output(spec: Spec) -> None:
    rule = LOSSES.get(spec.loss)
    choice = spec.activation[-1]
    if choice is None:  # a kind without an activation ends the network
        if rule and rule.needs_probabilities:
            raise SpecError(f"the loss '{spec.loss}' takes log(a), but the output layer is a "
                            f"{spec.kind_of(spec.L)} layer, which does not give probabilities",
                            where=f"{spec.source}: key 'loss'",
                            hint="End with an activation layer (softmax or sigmoid), or use a "
                                 "squared-error loss.")
        return
    out = choice.name
    if out == "softmax" and spec.layers[-1] == 1:
        raise SpecError("softmax over a single output node is the constant 1, so nothing can "
                        "be learned", where=f"{spec.source}: key 'activation'",
                        hint="Use sigmoid for one output, or give the output layer 2 or more "
                             "nodes.")
    if rule and rule.needs_probabilities and out in ACTIVATIONS \
            and out not in _PROBABILITY_ACTIVATIONS:
        raise SpecError(f"the loss '{spec.loss}' takes log(a), but the output activation "
                        f"'{out}' does not give probabilities", where=f"{spec.source}: key 'loss'",
                        hint="Use softmax or sigmoid on the output layer, or a squared-error "
                             "loss.")


def parse_or_raise(text: str, variables: dict[str, sympy.Expr], where: str) -> sympy.Expr:
    return parse_expression(text, variables, where=where)
