"""The architecture spec (design.md section 3): validated, and free of SymPy objects.

A :class:`Spec` is built from a TOML file (:meth:`Spec.from_toml`), from a dict
(:meth:`Spec.from_dict`) or directly in Python::

    Spec(layers=[3, 6, 6, 4], activation="g", loss="sse")          # 3a: a stack of dense layers
    Spec(input=4, stack=[{"kind": "dense", "width": 8, "activation": "tanh"},
                         {"kind": "layernorm"}], loss="sse")        # 3b: a list of layers

Either way the spec holds ``stack``, one validated config per layer (:mod:`symprop.layers`),
and ``layers``, the widths n_0 .. n_L: a 3a spec is the equivalent list of dense layers, so
it and its ``[[layer]]`` twin are equal and give the same outputs.

Every problem is a :class:`~symprop.errors.SpecError` naming the file, the key and the
value, and saying what is expected.  User expressions (custom activations and losses) are
only checked here for safe syntax; :mod:`symprop.graph` turns them into SymPy.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy

from .activations import X
from .errors import SpecError
from .layers import LayerConfig, parse_stack
from .layers.base import (
    MAX_LAYERS,
    MAX_WIDTH,
    ActivationChoice,
    activation_of,
    describe,
    has_bias,
)
from .layers.dense import DenseConfig
from .losses import A_OUT, Y_OUT
from .safe_parse import parse_expression
from .spec_checks import (
    check_activation,
    check_bias,
    check_custom_activations,
    check_input,
    check_layers,
    check_loss,
    check_loss_fits_output,
    check_name,
    check_reduction,
    check_steps,
)

__all__ = ["MAX_LAYERS", "MAX_WIDTH", "ActivationChoice", "Spec", "tutorial_spec"]

_KEYS = ("name", "layers", "activation", "loss", "bias", "reduction", "activations")
#: The keys of a list-of-layers spec (design.md section 3b).
_LIST_KEYS = ("name", "input", "steps", "layer", "loss", "reduction", "activations")


@dataclass(frozen=True)
class Spec:
    """A validated feed-forward architecture; layer 0 is the input, layer L the output."""

    #: The widths n_0 .. n_L (given for a 3a spec, worked out from ``stack`` for a 3b one).
    layers: tuple[int, ...] | None = None
    #: Per layer 1..L: the activation of a dense or activation layer, None for other kinds.
    activation: tuple[ActivationChoice | None, ...] | str | list = "g"
    loss: str = "sse"
    #: Per layer 1..L: whether it has biases.
    bias: tuple[bool, ...] | bool | list = False
    reduction: str = "mean"
    activations: Mapping[str, str] = field(default_factory=dict)
    name: str = "network"
    #: Where the spec came from (a file path), for error messages.
    source: str = field(default="<spec>", compare=False)
    #: n_0, the input's width (3b; for a 3a spec, layers[0]), or its shape: [C, L], [C, H, W].
    input: int | tuple[int, ...] | None = None
    #: One validated config per layer 1..L (3b: the [[layer]] tables, as dicts or configs).
    stack: tuple[LayerConfig, ...] | list | None = None
    #: T, the time steps of a sequence input X (batch, T, n_0) that rnn layers read.
    steps: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if self.stack is not None:
            return self._init_stack()
        if self.steps is not None:
            raise SpecError("steps makes the input a sequence for rnn layers, which a spec of "
                            "layers = [...] does not have", where=f"{self.source}: key 'steps'",
                            hint="Write the network as [[layer]] tables with an rnn layer, or "
                                 "remove steps")
        set_(self, "layers", check_layers(self.layers, self.source))
        n_layers = len(self.layers) - 1
        set_(self, "name", check_name(self.name, self.source))
        set_(self, "activations", check_custom_activations(self.activations, self.source))
        set_(self, "activation", check_activation(self.activation, n_layers, self.activations,
                                                   self.source))
        set_(self, "bias", check_bias(self.bias, n_layers, self.source))
        check_reduction(self.reduction, self.source)
        check_loss(self.loss, self.source)
        set_(self, "input", self.layers[0])
        set_(self, "stack", tuple(DenseConfig(l, self.layers[l], self.activation[l - 1],
                                              self.bias[l - 1]) for l in range(1, n_layers + 1)))
        check_loss_fits_output(self)

    def _init_stack(self) -> None:
        """A list of layers (design.md section 3b)."""
        set_ = object.__setattr__
        if self.layers is not None:
            raise SpecError("a spec has either layers = [...] or [[layer]] tables, not both",
                            where=f"{self.source}: key 'layers'",
                            hint="Keep the [[layer]] tables and give the input's width as "
                                 "input = n")
        set_(self, "name", check_name(self.name, self.source))
        set_(self, "activations", check_custom_activations(self.activations, self.source))
        check_reduction(self.reduction, self.source)
        check_loss(self.loss, self.source)
        set_(self, "input", check_input(self.input, self.source))
        set_(self, "steps", check_steps(self.steps, self.input, self.source))
        tables = [c.to_table() if isinstance(c, LayerConfig) else c for c in self.stack] \
            if isinstance(self.stack, (list, tuple)) else self.stack
        stack = parse_stack(tables, self.input_shape, self.source, self.activations,
                            sequence=self.steps is not None)
        set_(self, "stack", stack)
        set_(self, "layers", (math.prod(self.input_shape), *(c.width for c in stack)))
        set_(self, "activation", tuple(activation_of(c) for c in stack))
        set_(self, "bias", tuple(has_bias(c) for c in stack))
        check_loss_fits_output(self)

    def __hash__(self) -> int:
        return hash((self.layers, self.activation, self.loss, self.bias, self.reduction,
                     tuple(sorted(self.activations.items())), self.name, self.stack))

    # ----------------------------------------------------------------- views
    def _example_name(self) -> str:
        """The first parameter of the network in seed notation (x_0 without parameters)."""
        from .notation import Node

        for l, p in self.parameters():
            return Node(p.kind, l, *[0] * len(p.shape)).latex()
        return Node("x", None, *[0] * len(self.input_shape)).latex()

    def require(self, work: str, command: str) -> None:
        """Refuse, with a :class:`SpecError` (exit 2) naming the first layer, a network with
        a kind that does not do ``work`` yet (``"codegen"``, ``"report"``, ``"interactive"``,
        ``"matrix"``, ``"check"``; see :attr:`LayerConfig.SUPPORTS`); ``command`` is what the user ran."""
        for config in self.stack:
            if work not in config.SUPPORTS:
                hint = ("Use symprop derive --wrt NAME for their gradients, derived and "
                        f"proven, e.g. --wrt '{self._example_name()}'") \
                    if "derive" in config.SUPPORTS else (
                    "Use symprop codegen SPEC -o FILE.py (or symprop verify SPEC) for the "
                    "network's gradients: the generated code is checked against autodiff")
                raise SpecError(f"{command} does not handle {config.kind} layers yet",
                                where=f"{self.source}: layer {config.index} ({config.kind})",
                                hint=hint)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The input's shape: (n_0,), or (C, L) / (C, H, W) for channels and positions."""
        if self.steps is not None:
            return (self.steps, self.input)
        return self.input if isinstance(self.input, tuple) else (self.input,)

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        """Each layer's shape, input first: (n_l,) for a flat layer, (C, L) or (C, H, W)
        for a map of channels and positions (its width is the product, flattened in C
        order)."""
        return (self.input_shape, *(c.shape for c in self.stack))

    @property
    def L(self) -> int:
        """Index of the output layer (the number of layers after the input)."""
        return len(self.layers) - 1

    @property
    def is_dense(self) -> bool:
        """Every layer dense: seed 000's kind of network (a 3a spec, or its twin)."""
        return all(c.kind == "dense" for c in self.stack)

    @property
    def has_maps(self) -> bool:
        """Whether some layer (or the input) is a map of channels and positions."""
        return any(len(shape) > 1 for shape in self.shapes)

    def layer(self, layer: int) -> LayerConfig:
        """The config of layer 1..L."""
        return self.stack[layer - 1]

    def kind_of(self, layer: int) -> str:
        return self.stack[layer - 1].kind

    def activation_of(self, layer: int) -> ActivationChoice | None:
        """The activation of layer 1..L (None for kinds without one)."""
        return self.activation[layer - 1]

    def has_bias(self, layer: int) -> bool:
        return self.bias[layer - 1]

    def with_activations(self, activations: dict[int, str]) -> Spec:
        """The same network with the activation of some layers changed: {layer: name}."""
        tables = [c.to_table() | ({"activation": activations[c.index]}
                                  if c.index in activations else {}) for c in self.stack]
        return Spec(name=self.name, loss=self.loss, reduction=self.reduction,
                    activations=self.activations, source=self.source, input=self.input,
                    steps=self.steps,
                    stack=tables)

    def parameters(self):
        """Every parameter array, layer by layer: (layer, ParamSpec)."""
        return [(c.index, p) for c in self.stack for p in c.parameters(self.layers)]

    @property
    def n_parameters(self) -> int:
        return sum(p.size for _, p in self.parameters())

    def to_dict(self) -> dict[str, Any]:
        """The spec as TOML-ready data (inverse of :meth:`from_dict`)."""
        if not self.is_dense:
            return {"name": self.name, "input": list(self.input) if isinstance(
                        self.input, tuple) else self.input, "loss": self.loss,
                    "reduction": self.reduction, "activations": dict(self.activations),
                    **({"steps": self.steps} if self.steps is not None else {}),
                    "layer": [c.to_table() for c in self.stack]}
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
        if "layer" in data or "input" in data:
            return cls._from_list(data, source)
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
                raise SpecError(f"expected a string, got {describe(kwargs[key])}",
                                where=f"{source}: key '{key}'")
        return cls(**kwargs, source=source)

    @classmethod
    def _from_list(cls, data: Mapping[str, Any], source: str) -> Spec:
        """A spec of ``input`` and ``[[layer]]`` tables (design.md section 3b)."""
        if "layers" in data and "layer" not in data:
            raise SpecError("input = n belongs to a spec of [[layer]] tables; in layers = "
                            "[...] the first entry is the input's width",
                            where=f"{source}: key 'input'",
                            hint=f"Remove input, or write layers = [{data['input']!r}, ...] "
                                 "with the input's width first")
        if "layers" in data:
            raise SpecError("a spec has either layers = [...] or [[layer]] tables, not both",
                            where=f"{source}: key 'layers'",
                            hint="Keep the [[layer]] tables and give the input's width as "
                                 "input = n")
        unknown = sorted(set(data) - set(_LIST_KEYS))
        if unknown:
            per_layer = unknown[0] in ("activation", "bias")
            raise SpecError(f"unknown key {unknown[0]!r}" + (" in a spec of [[layer]] tables"
                                                            if per_layer else ""),
                            where=source,
                            hint=f"Give {unknown[0]} in each [[layer]] table that has one"
                            if per_layer else f"Known keys: {', '.join(_LIST_KEYS)}.")
        for key in ("input", "layer"):
            if key not in data:
                raise SpecError(f"missing key '{key}'", where=source,
                                hint="A spec of [[layer]] tables starts with input = n_0, the "
                                     "input's width, and has one [[layer]] table per layer.")
        for key in ("name", "loss", "reduction"):
            if key in data and not isinstance(data[key], str):
                raise SpecError(f"expected a string, got {describe(data[key])}",
                                where=f"{source}: key '{key}'")
        kwargs = {key: data[key] for key in ("name", "loss", "reduction", "activations")
                  if key in data}
        return cls(**kwargs, source=source, input=data["input"], stack=data["layer"],
                   steps=data.get("steps"))

    @classmethod
    def from_toml_string(cls, text: str, source: str = "<spec>") -> Spec:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"not valid TOML ({exc})", where=source,
                            hint="A spec is TOML such as layers = [3, 6, 6, 4] and loss = \"sse\"; "
                                 "README's section \"The spec\" has every key.") from None
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


def parse_custom_activation(spec: Spec, name: str) -> sympy.Expr:
    """The SymPy expression in X of a spec's custom activation (already validated)."""
    return parse_expression(spec.activations[name], {"x": X})


def parse_custom_loss(spec: Spec) -> sympy.Expr:
    """The SymPy expression in a, y of a spec's custom loss (already validated)."""
    return parse_expression(spec.loss, {"a": A_OUT, "y": Y_OUT})
