"""The architecture spec (design.md section 3): validated, and free of SymPy objects.

A :class:`Spec` is built from a TOML file (:meth:`Spec.from_toml`), from a dict
(:meth:`Spec.from_dict`) or directly in Python::

    Spec(layers=[3, 6, 6, 4], activation="g", loss="sse")

Every problem is a :class:`~symprop.errors.SpecError` naming the file, the key and the
value, and saying what is expected.  User expressions (custom activations and losses) are
only checked here for safe syntax; :mod:`symprop.graph` turns them into SymPy.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy

from .activations import ACTIVATIONS, X
from .errors import SpecError
from .losses import A_OUT, LOSSES, Y_OUT
from .safe_parse import parse_expression

__all__ = ["MAX_LAYERS", "MAX_WIDTH", "ActivationChoice", "Spec", "tutorial_spec"]

MAX_WIDTH = 100_000
MAX_LAYERS = 200
_KEYS = ("name", "layers", "activation", "loss", "bias", "reduction", "activations")
_REDUCTIONS = ("mean", "sum")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_ACTIVATION = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*")
#: Losses whose output activation must produce probabilities, and the activations that do.
_PROBABILITY_ACTIVATIONS = {"sigmoid", "softmax", "g"}


@dataclass(frozen=True)
class ActivationChoice:
    """The activation of one layer: a built-in or custom name and its numeric parameters."""

    name: str
    params: tuple[float, ...] = ()

    def __str__(self) -> str:
        return f"{self.name}({', '.join(map(str, self.params))})" if self.params else self.name


@dataclass(frozen=True)
class Spec:
    """A validated feed-forward architecture; layer 0 is the input, layer L the output."""

    layers: tuple[int, ...]
    activation: tuple[ActivationChoice, ...] | str | list = "g"
    loss: str = "sse"
    bias: tuple[bool, ...] | bool | list = False
    reduction: str = "mean"
    activations: Mapping[str, str] = field(default_factory=dict)
    name: str = "network"
    #: Where the spec came from (a file path), for error messages.
    source: str = field(default="<spec>", compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "layers", _check_layers(self.layers, self.source))
        n_layers = len(self.layers) - 1
        set_(self, "name", _check_name(self.name, self.source))
        set_(self, "activations", _check_custom_activations(self.activations, self.source))
        set_(self, "activation", _check_activation(self.activation, n_layers, self.activations,
                                                   self.source))
        set_(self, "bias", _check_bias(self.bias, n_layers, self.source))
        if self.reduction not in _REDUCTIONS:
            raise SpecError(f"unknown reduction {self.reduction!r}",
                            where=f"{self.source}: key 'reduction'",
                            hint="Use \"mean\" (the default) or \"sum\".")
        _check_loss(self.loss, self.source)
        _check_loss_fits_output(self)

    def __hash__(self) -> int:
        return hash((self.layers, self.activation, self.loss, self.bias, self.reduction,
                     tuple(sorted(self.activations.items())), self.name))

    # ----------------------------------------------------------------- views
    @property
    def L(self) -> int:
        """Index of the output layer (number of weight layers)."""
        return len(self.layers) - 1

    def activation_of(self, layer: int) -> ActivationChoice:
        """The activation of layer 1..L."""
        return self.activation[layer - 1]

    def has_bias(self, layer: int) -> bool:
        return self.bias[layer - 1]

    @property
    def n_parameters(self) -> int:
        return sum(self.layers[l] * self.layers[l - 1] + (self.layers[l] if self.has_bias(l)
                                                           else 0) for l in range(1, self.L + 1))

    def to_dict(self) -> dict[str, Any]:
        """The spec as TOML-ready data (inverse of :meth:`from_dict`)."""
        acts = [str(a) for a in self.activation]
        return {
            "name": self.name,
            "layers": list(self.layers),
            "activation": acts[0] if len(set(acts)) == 1 else acts,
            "loss": self.loss,
            "bias": self.bias[0] if len(set(self.bias)) == 1 else list(self.bias),
            "reduction": self.reduction,
            "activations": dict(self.activations),
        }

    # ----------------------------------------------------------------- readers
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<spec>") -> Spec:
        if not isinstance(data, Mapping):
            raise SpecError("the spec must be a table of keys", where=source)
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise SpecError(f"unknown key {unknown[0]!r}", where=source,
                            hint=f"Known keys: {', '.join(_KEYS)}.")
        if "layers" not in data:
            raise SpecError("missing key 'layers'", where=source,
                            hint="Add the widths, input first, e.g. layers = [3, 6, 6, 4].")
        kwargs = {key: data[key] for key in _KEYS if key in data}
        for key in ("name", "loss", "reduction"):
            if key in kwargs and not isinstance(kwargs[key], str):
                raise SpecError(f"expected a string, got {_describe(kwargs[key])}",
                                where=f"{source}: key '{key}'")
        return cls(**kwargs, source=source)

    @classmethod
    def from_toml_string(cls, text: str, source: str = "<spec>") -> Spec:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"not valid TOML ({exc})", where=source,
                            hint="See design.md section 3 for the format.") from None
        return cls.from_dict(data, source)

    @classmethod
    def from_toml(cls, path: str | Path) -> Spec:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError("no such file", where=str(path)) from None
        except IsADirectoryError:
            raise SpecError("is a directory, not a spec file", where=str(path)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read the file ({exc.__class__.__name__}: {exc})",
                            where=str(path)) from None
        return cls.from_toml_string(text, str(path))


def tutorial_spec() -> Spec:
    """Seed 000's network: two hidden layers, 6 nodes in L-1, 4 outputs, generic g, sse."""
    return Spec(layers=(3, 6, 6, 4), activation="g", loss="sse", bias=False,
                name="tutorial")


# --------------------------------------------------------------------- checks
def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _check_layers(layers: Any, source: str) -> tuple[int, ...]:
    where = f"{source}: key 'layers'"
    if not isinstance(layers, (list, tuple)):
        raise SpecError(f"expected a list of widths, got {_describe(layers)}", where=where,
                        hint="Write e.g. layers = [3, 6, 6, 4], input first.")
    if len(layers) < 2:
        raise SpecError(f"needs at least 2 layers (input and output), got {len(layers)}",
                        where=where)
    if len(layers) > MAX_LAYERS + 1:
        raise SpecError(f"{len(layers)} layers is more than the {MAX_LAYERS + 1} supported",
                        where=where)
    for i, width in enumerate(layers):
        if isinstance(width, bool) or not isinstance(width, int):
            raise SpecError(f"width of layer {i} must be a whole number, got {_describe(width)}",
                            where=where)
        if width < 1:
            raise SpecError(f"width of layer {i} must be at least 1, got {width}", where=where)
        if width > MAX_WIDTH:
            raise SpecError(f"width of layer {i} is {width}, more than the {MAX_WIDTH} "
                            "supported", where=where)
    return tuple(layers)


def _check_name(name: Any, source: str) -> str:
    if not isinstance(name, str):
        raise SpecError(f"expected a string, got {_describe(name)}", where=f"{source}: key 'name'")
    if not 1 <= len(name) <= 80 or not all(ch.isprintable() for ch in name):
        raise SpecError("the name must be 1 to 80 printable characters",
                        where=f"{source}: key 'name'")
    return name


def _check_custom_activations(defs: Any, source: str) -> dict[str, str]:
    where = f"{source}: table [activations]"
    if not isinstance(defs, Mapping):
        raise SpecError(f"expected a table of name = \"expression\", got {_describe(defs)}",
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
            raise SpecError(f"expected an expression in x as a string, got {_describe(text)}",
                            where=key)
        expr = _parse_or_raise(text, {"x": X}, key)
        if X not in expr.free_symbols:
            raise SpecError("the activation does not depend on x", where=key)
    return dict(defs)


def _parse_activation(text: Any, custom: Mapping[str, str], where: str) -> ActivationChoice:
    if isinstance(text, ActivationChoice):
        text = str(text)
    if not isinstance(text, str):
        raise SpecError(f"expected an activation name, got {_describe(text)}", where=where)
    match = _ACTIVATION.fullmatch(text)
    known = sorted(ACTIVATIONS) + sorted(custom)
    if not match:
        raise SpecError(f"cannot read the activation {text!r}", where=where,
                        hint=f"Use one of {', '.join(known)}, e.g. \"leaky_relu(0.2)\".")
    name, arg_text = match.groups()
    if name not in ACTIVATIONS and name not in custom:
        raise SpecError(f"unknown activation {name!r}", where=where,
                        hint=f"Use one of {', '.join(known)}, or define it under [activations].")
    params: tuple[float, ...] = ()
    if arg_text is not None:
        rule = ACTIVATIONS.get(name)
        if rule is None or not rule.defaults:
            raise SpecError(f"the activation '{name}' takes no parameters", where=where)
        try:
            params = tuple(float(p) for p in arg_text.split(","))
        except ValueError:
            raise SpecError(f"the parameters of '{name}' must be numbers, got {arg_text!r}",
                            where=where) from None
        if len(params) != len(rule.defaults) or not all(math.isfinite(p) for p in params):
            raise SpecError(f"'{name}' takes {len(rule.defaults)} finite number(s), "
                            f"got {arg_text!r}", where=where)
        if params == rule.defaults:
            params = ()
    return ActivationChoice(name, params)


def _check_activation(value: Any, n_layers: int, custom: Mapping[str, str],
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
        choices = tuple(_parse_activation(v, custom, f"{where}, entry {i + 1}")
                        for i, v in enumerate(value))
    else:
        choices = (_parse_activation(value, custom, where),) * n_layers
    for layer, choice in enumerate(choices[:-1], start=1):
        if choice.name == "softmax":
            raise SpecError(f"softmax is only supported on the output layer, not layer {layer}",
                            where=where)
    return tuple(choices)


def _check_bias(value: Any, n_layers: int, source: str) -> tuple[bool, ...]:
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
                raise SpecError(f"entry {i + 1} must be true or false, got {_describe(v)}",
                                where=where)
        return tuple(value)
    raise SpecError(f"expected true, false or a list of them, got {_describe(value)}",
                    where=where)


def _check_loss(loss: str, source: str) -> None:
    where = f"{source}: key 'loss'"
    if loss in LOSSES:
        return
    if _NAME.fullmatch(loss) and loss not in ("a", "y"):
        raise SpecError(f"unknown loss {loss!r}", where=where,
                        hint=f"Use one of {', '.join(LOSSES)}, or an expression in a and y "
                             "such as \"(a - y)**4\".")
    expr = _parse_or_raise(loss, {"a": A_OUT, "y": Y_OUT}, where)
    if A_OUT not in expr.free_symbols:
        raise SpecError("the loss does not depend on the output a", where=where)


def _check_loss_fits_output(spec: Spec) -> None:
    rule = LOSSES.get(spec.loss)
    out = spec.activation[-1].name
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


def _parse_or_raise(text: str, variables: dict[str, sympy.Expr], where: str) -> sympy.Expr:
    return parse_expression(text, variables, where=where)


def parse_custom_activation(spec: Spec, name: str) -> sympy.Expr:
    """The SymPy expression in X of a spec's custom activation (already validated)."""
    return parse_expression(spec.activations[name], {"x": X})


def parse_custom_loss(spec: Spec) -> sympy.Expr:
    """The SymPy expression in a, y of a spec's custom loss (already validated)."""
    return parse_expression(spec.loss, {"a": A_OUT, "y": Y_OUT})
