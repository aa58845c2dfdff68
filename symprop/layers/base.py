"""What every layer kind shares: its validated config, its parameters, and the checks of a
``[[layer]]`` table (design.md section 3b).

A kind's config (a frozen dataclass, no SymPy) is read from its table by
:meth:`LayerConfig.parse` with a :class:`ParseContext` that knows the layer's number, the
widths before it and where the spec came from, so every error names the layer and the key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..activations import ACTIVATIONS
from ..errors import SpecError

__all__ = ["IDENTITY", "MAX_LAYERS", "MAX_WIDTH", "ActivationChoice", "LayerConfig", "ParamSpec",
           "ParseContext", "TwoInputConfig", "activation_of", "describe", "has_bias",
           "parse_activation", "relative_layer"]

#: The widest layer and the most layers a spec may have.
MAX_WIDTH = 100_000
MAX_LAYERS = 200
_ACTIVATION = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*")
_RELATIVE = re.compile(r"\s*L\s*(?:-\s*([0-9]+))?\s*")


def relative_layer(text: str, count: int) -> int | None:
    """``"L"`` or ``"L-n"`` (spaces allowed) -> ``count - n``; None for any other text."""
    match = _RELATIVE.fullmatch(text)
    return None if match is None else count - int(match[1] or 0)


def describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


@dataclass(frozen=True)
class ActivationChoice:
    """The activation of one layer: a built-in or custom name and its numeric parameters."""

    name: str
    params: tuple[float, ...] = ()

    def __str__(self) -> str:
        return f"{self.name}({', '.join(map(str, self.params))})" if self.params else self.name


IDENTITY = ActivationChoice("identity")


def parse_activation(text: Any, custom: Mapping[str, str], where: str) -> ActivationChoice:
    """``"tanh"``, ``"leaky_relu(0.2)"`` or a name defined under ``[activations]``."""
    if isinstance(text, ActivationChoice):
        text = str(text)
    if not isinstance(text, str):
        raise SpecError(f"expected an activation name, got {describe(text)}", where=where)
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


def one_axis(module, where: str) -> None:
    """A torch normalisation over the last axis alone, as symprop's normalise each sample's
    nodes; else an InputError naming the module's path."""
    from ..errors import InputError

    if len(module.normalized_shape) != 1:
        raise InputError(f"{where} ({type(module).__name__}): normalized_shape="
                         f"{tuple(module.normalized_shape)} spans several axes",
                         hint="Normalise the last axis alone: symprop's normalisations run "
                              "over each sample's nodes")


def torch_array(tensor):
    """A torch parameter's current value as a NumPy float64 array (for ``symprop import``)."""
    import numpy as np

    return np.array(tensor.detach().cpu().double().numpy())


@dataclass(frozen=True)
class ParamSpec:
    """One parameter array of a layer: its module key (without the layer number), the node
    kind of its entries (w, b, gamma, c), their index letters, its shape and its start."""

    key: str
    kind: str
    letters: str
    shape: tuple[int, ...]
    #: "glorot", "zeros", "ones", "fan_in" (uniform in +-1/sqrt(n_{l-1})) or a constant.
    init: str | float
    #: The inputs one output reads, where it is not n_{l-1} (a conv weight: C_in kh kw).
    fan_in: int | None = None

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class ParseContext:
    """Where a table is read: its layer number, the widths of layers 0..l-1, the spec's L."""

    index: int
    count: int
    widths: tuple[int, ...]
    source: str
    activations: Mapping[str, str]
    kind: str = ""
    #: The shapes of layers 0..l-1: (n,) for a flat layer, (C, L) or (C, H, W) for a map.
    shapes: tuple[tuple[int, ...], ...] = ()

    def where(self, key: str | None = None) -> str:
        head = f"{self.source}: layer {self.index}" + (f" ({self.kind})" if self.kind else "")
        return f"{head}, key '{key}'" if key else head

    def error(self, what: str, key: str | None = None, hint: str | None = None) -> SpecError:
        return SpecError(what, where=self.where(key), hint=hint)

    def width(self, table: Mapping, key: str = "width") -> int:
        return self.integer(table, key, 1, MAX_WIDTH)

    @property
    def below(self) -> int:
        """The width of layer l - 1, which this layer reads."""
        return self.widths[-1]

    @property
    def below_shape(self) -> tuple[int, ...]:
        """The shape of layer l - 1: (n,) when flat, (C, L) or (C, H, W) for a map."""
        return self.shapes[-1] if self.shapes else (self.widths[-1],)

    def integer(self, table: Mapping, key: str, low: int = 1, high: int | None = None) -> int:
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"expected a whole number, got {describe(value)}", key)
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise self.error(f"must be {bound}, got {value}", key)
        return value

    def boolean(self, table: Mapping, key: str) -> bool:
        value = table[key]
        if not isinstance(value, bool):
            raise self.error(f"expected true or false, got {describe(value)}", key)
        return value

    def number(self, table: Mapping, key: str, positive: bool = False,
               label: str | None = None) -> float:
        """A finite float from ``table[key]``; errors name ``label`` (a dotted key) or key."""
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or (positive and value <= 0):
            what = "a positive number" if positive else "a finite number"
            raise self.error(f"expected {what}, got {describe(value)}", label or key)
        return float(value)

    def earlier_layer(self, table: Mapping, key: str = "from") -> int:
        """``from``: an earlier layer by number (0 is the input) or relative, ``"L-2"``."""
        value = table[key]
        hint = (f"Name an earlier layer: a number 0..{self.index - 1} or L-{self.count - self.index + 1}"
                f" .. L-{self.count}")
        if isinstance(value, str):
            number = relative_layer(value, self.count)
            if number is None:
                raise self.error(f"cannot read the layer {value!r}", key, hint)
            value = number
        elif isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"expected a layer number or \"L-n\", got {describe(value)}", key,
                             hint)
        if not 0 <= value < self.index:
            raise self.error(f"layer {value} is not an earlier layer than {self.index}", key,
                             hint)
        return value


@dataclass(frozen=True)
class LayerConfig:
    """A validated ``[[layer]]`` table: layer ``index`` of the network, ``width`` nodes.

    Kinds with an activation or biases (dense, activation) have ``activation`` and ``bias``
    fields; :func:`activation_of` and :func:`has_bias` read them for any kind.
    """

    #: The kind's name in specs, and its keys with their defaults (None: required).
    kind: ClassVar[str]
    KEYS: ClassVar[dict[str, Any]] = {}
    #: The torch.nn module classes ``symprop import`` maps to this kind (by class name).
    TORCH_MODULES: ClassVar[tuple[str, ...]] = ()
    #: Whether the kind reads a flat layer (n nodes) only; a map of channels and positions
    #: must pass through a flatten layer first.  Kinds that read maps set this False.
    READS_FLAT: ClassVar[bool] = True
    #: What symprop does with the kind beyond deriving its gradients (``symprop derive``):
    #: a kind still being built lists fewer, and a command it lacks refuses the network.
    SUPPORTS: ClassVar[frozenset[str]] = frozenset(
        {"derive", "worked", "report", "interactive", "matrix", "codegen", "scalar", "check",
         "check_function", "import"})

    @classmethod
    def from_torch(cls, module, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ``[[layer]]`` table of a torch module of :data:`TORCH_MODULES` and its current
        parameters under the module keys without the layer number (``{"W": ..., "b":
        ...}``, NumPy float64); what the kind cannot express raises
        :class:`~symprop.errors.InputError` naming ``where`` (the module's path)."""
        raise NotImplementedError

    index: int
    width: int

    @property
    def shape(self) -> tuple[int, ...]:
        """The layer's shape: (width,) for a flat layer; a map's (C, L) or (C, H, W)."""
        return (self.width,)

    @classmethod
    def parse(cls, table: Mapping[str, Any], ctx: ParseContext) -> LayerConfig:
        raise NotImplementedError

    @classmethod
    def check_keys(cls, table: Mapping[str, Any], ctx: ParseContext) -> dict[str, Any]:
        """The table's keys with defaults filled in; unknown or missing keys are errors."""
        unknown = sorted(set(table) - set(cls.KEYS) - {"kind"})
        if unknown:
            known = ", ".join(["kind", *cls.KEYS]) if cls.KEYS else "kind"
            raise ctx.error(f"unknown key {unknown[0]!r} for a {cls.kind} layer",
                            hint=f"A {cls.kind} layer takes {known}")
        missing = [k for k, v in cls.KEYS.items() if v is None and k not in table]
        if missing:
            raise ctx.error(f"missing key {missing[0]!r}",
                            hint=f"A {cls.kind} layer needs {', '.join(missing)}")
        return {**{k: v for k, v in cls.KEYS.items() if v is not None}, **table}

    @property
    def source_layer(self) -> int | None:
        """The ``from`` layer of kinds that read a second, earlier layer."""
        return None

    @property
    def inputs(self) -> tuple[int, ...]:
        """The layers this one reads: l - 1, and the ``from`` layer when it has one."""
        m = self.source_layer
        return (self.index - 1,) if m is None else (self.index - 1, m)

    def parameters(self, widths: tuple[int, ...]) -> tuple[ParamSpec, ...]:
        """The layer's parameter arrays (``widths``: every layer's width, input first)."""
        return ()

    def to_table(self) -> dict[str, Any]:
        """The ``[[layer]]`` table this config reads back from."""
        return {"kind": self.kind}

    def notation(self) -> list[tuple[str, str]]:
        """The report's notation rows of this kind: (LaTeX symbol, meaning; the meaning's
        maths between $ signs)."""
        return [(r"\frac{\partial C_{0}}{\partial a_{j}^{(l)}}",
                 ("the accumulated gradient at node $j$ of a layer without a $z$ (every kind "
                  "but dense)"))]

    def reached(self, source: int, ks: set[int]) -> set[int]:
        """The drawing: the nodes of this layer that read any node ``ks`` of layer
        ``source`` (by default every node reads every node of layer l-1)."""
        return set(range(self.width)) if source == self.index - 1 and ks else set()

    def connects(self, source: int, k: int, j: int) -> bool:
        """Does node j of this layer read node k of layer ``source``?"""
        return j in self.reached(source, {k})

    def composed_size(self, sizes: Mapping[int, int], spec) -> int:
        """Symbols in one output node written out in the layers below, given the size of one
        node of each input layer (``sizes``) and the spec; see
        :func:`symprop.budget.composed_size`."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for tables and headers: ``dense, tanh, bias``, ``add from 1``."""
        return self.kind

    def backward_mistakes(self) -> tuple:
        """The usual mistakes in a hand-written backward of this layer, most common first
        (:class:`~symprop.layers.mistakes.BackwardMistake`; ``check --layer``'s hints)."""
        return ()


def activation_of(config: LayerConfig) -> ActivationChoice | None:
    """The activation of a dense or activation layer, None for other kinds."""
    return getattr(config, "activation", None)


def has_bias(config: LayerConfig) -> bool:
    return bool(getattr(config, "bias", False))


@dataclass(frozen=True)
class TwoInputConfig(LayerConfig):
    """A layer that reads layer l - 1 and an earlier layer m, named by ``from``."""

    KEYS: ClassVar[dict] = {"from": None}
    #: Whether layer m must be as wide as layer l - 1 (add, multiply; not concat).
    SAME_WIDTH: ClassVar[bool] = True

    source: int = 0
    #: The width of layer l - 1 (where a concat's nodes from layer m start).
    split: int = 0

    @classmethod
    def parse(cls, table: Mapping[str, Any], ctx: ParseContext) -> TwoInputConfig:
        table = cls.check_keys(table, ctx)
        m = ctx.earlier_layer(table)
        below, other = ctx.below, ctx.widths[m]
        if cls.SAME_WIDTH and other != below:
            raise ctx.error(f"{cls.kind} needs equal widths, but layer {ctx.index - 1} has "
                            f"{below} node(s) and layer {m} has {other}", "from",
                            hint="Name a layer of the same width, or make the widths equal")
        return cls(ctx.index, below + other if not cls.SAME_WIDTH else below, m, below)

    @property
    def source_layer(self) -> int | None:
        return self.source

    def to_table(self) -> dict[str, Any]:
        return {"kind": self.kind, "from": self.source}

    def reached(self, source: int, ks: set[int]) -> set[int]:
        """Node j reads node j of layer l-1 and of the ``from`` layer."""
        return {k for k in ks if k < self.width} if source in (self.index - 1, self.source) \
            else set()

    def composed_size(self, sizes: Mapping[int, int], spec) -> int:
        below, other = sizes[self.index - 1], sizes[self.source]
        return below + other + 1 if self.SAME_WIDTH else max(below, other)

    def describe(self) -> str:
        return f"{self.kind} from {self.source}"
