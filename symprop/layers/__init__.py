"""Layer kinds (design.md section 3b): one module each, one entry in :data:`KINDS`.

A kind's module holds everything about it: its ``[[layer]]`` keys and checks (the config),
its symbols and definitions for the chain rule, its array forms, its drawing and its
reference forward pass for JAX and PyTorch.  The rest of symprop walks layers through that
interface and never asks which kind it has.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import SpecError
from .activation import ActivationConfig
from .add import AddConfig
from .base import MAX_LAYERS, MAX_WIDTH, LayerConfig, ParseContext, describe
from .batchnorm import BatchNormConfig
from .concat import ConcatConfig
from .conv import Conv1dConfig, Conv2dConfig
from .custom import CustomConfig
from .dense import DenseConfig
from .flatten import FlattenConfig
from .layernorm import LayerNormConfig
from .multiply import MultiplyConfig
from .pooling import AvgPool1dConfig, AvgPool2dConfig, MaxPool1dConfig, MaxPool2dConfig
from .rmsnorm import RMSNormConfig
from .rnn import RnnConfig

__all__ = ["KINDS", "LayerConfig", "parse_stack"]

#: kind name -> its config class.
KINDS: dict[str, type[LayerConfig]] = {c.kind: c for c in (
    DenseConfig, ActivationConfig, LayerNormConfig, RMSNormConfig, AddConfig, MultiplyConfig,
    ConcatConfig, CustomConfig, Conv1dConfig, Conv2dConfig, MaxPool1dConfig, MaxPool2dConfig,
    AvgPool1dConfig, AvgPool2dConfig, FlattenConfig, RnnConfig, BatchNormConfig)}


def parse_stack(tables: Any, input_width: int | tuple[int, ...], source: str,
                activations: Mapping[str, str], sequence: bool = False
                ) -> tuple[LayerConfig, ...]:
    """Every ``[[layer]]`` table of a spec, validated in order (each sees the widths and
    shapes before it); ``input_width`` is n_0 or the input's shape (C, L) / (C, H, W), or
    (T, n_0) for a ``sequence`` (``steps = T``: rnn layers read it)."""
    if not isinstance(tables, Sequence) or isinstance(tables, str) or not tables:
        raise SpecError(f"expected one or more [[layer]] tables, got {describe(tables)}",
                        where=f"{source}: key 'layer'",
                        hint="Write each layer as a [[layer]] table with a kind, "
                             "e.g. kind = \"dense\"")
    if len(tables) > MAX_LAYERS:
        raise SpecError(f"{len(tables)} layers is more than the {MAX_LAYERS} supported",
                        where=f"{source}: key 'layer'")
    shapes = [input_width if isinstance(input_width, tuple) else (input_width,)]
    widths, configs = [math.prod(shapes[0])], []
    sequences = [sequence]  # does layer l output one vector per time step?
    for index, table in enumerate(tables, start=1):
        ctx = ParseContext(index, len(tables), tuple(widths), source, activations)
        if not isinstance(table, Mapping):
            raise ctx.error(f"expected a table of keys, got {describe(table)}")
        kind = table.get("kind")
        if kind not in KINDS:
            known = ", ".join(KINDS)
            raise ctx.error(f"unknown kind {kind!r}" if kind is not None else "missing key 'kind'",
                            "kind" if kind is not None else None, hint=f"Use one of {known}")
        ctx = ParseContext(index, len(tables), tuple(widths), source, activations, kind,
                           tuple(shapes))
        check_sequence(ctx, KINDS[kind], sequences[-1])
        if KINDS[kind].READS_FLAT and len(shapes[-1]) > 1:
            below = "the input" if index == 1 else f"layer {index - 1}"
            raise ctx.error(f"{with_article(kind)} layer reads a flat layer, but {below} is a map "
                            "of shape "
                            f"{list(shapes[-1])} (channels, positions)",
                            hint="Put a flatten layer before it: [[layer]] kind = \"flatten\"")
        config = KINDS[kind].parse(table, ctx)
        if config.width > MAX_WIDTH:
            raise ctx.error(f"the layer has {config.width} nodes (shape {list(config.shape)}), "
                            f"more than the {MAX_WIDTH} supported",
                            hint="Use fewer channels or a smaller input")
        if index == len(tables) and len(config.shape) > 1:
            what = "sequence" if getattr(config, "is_sequence", False) else "map"
            raise ctx.error(f"the last layer meets the loss and must be flat, but it is a {what} "
                            f"of shape {list(config.shape)}",
                            hint="End with a flatten layer (and a dense layer)")
        check_second_input(ctx, config, shapes, sequences)
        configs.append(config)
        widths.append(config.width)
        shapes.append(config.shape)
        sequences.append(getattr(config, "is_sequence", False))
    if sequence and not any(c.kind == "rnn" for c in configs):
        raise SpecError("steps makes the input a sequence, but no layer is an rnn",
                        where=f"{source}: key 'steps'",
                        hint="Add an rnn layer first, or remove steps for a flat input")
    return tuple(configs)


def with_article(kind: str) -> str:
    """The kind with its article: "a dense", "an add", "an rnn" (said "ar-en-en")."""
    return f"{'an' if kind[0] in 'aeiou' or kind.startswith(('rnn', 'rms')) else 'a'} {kind}"


def check_second_input(ctx: ParseContext, config: LayerConfig, shapes: list,
                       sequences: list) -> None:
    """The ``from`` layer of add, multiply and concat is flat, as the layer below must be."""
    m = config.source_layer
    if m is None:
        return
    what = "the input" if m == 0 else f"layer {m}"
    if sequences[m] or len(shapes[m]) > 1:
        kind = "sequence" if sequences[m] else "map"
        raise ctx.error(f"{with_article(config.kind)} layer reads flat layers, but {what} "
                        "(its 'from') "
                        f"is a {kind} of shape {list(shapes[m])}", "from",
                        hint="Name a flat layer, or put a flatten layer after that one and "
                             "name the flatten")


def check_sequence(ctx: ParseContext, kind: type[LayerConfig], below_is_sequence: bool) -> None:
    """An rnn reads a sequence (the input with steps = T, or an rnn with sequence = true);
    any other kind but flatten reads no sequence."""
    below = "the input" if ctx.index == 1 else f"layer {ctx.index - 1}"
    reads = getattr(kind, "READS_SEQUENCE", False)
    if reads and not below_is_sequence:
        raise ctx.error(f"an rnn layer reads a sequence (one vector per time step), but {below} "
                        "is not one",
                        hint="Give steps = T at the top of the spec and put the rnn layers "
                             "first, with sequence = true on an rnn layer another rnn reads")
    if below_is_sequence and not reads and kind.kind != "flatten":
        source = "the input (steps = T)" if ctx.index == 1 else \
            f"layer {ctx.index - 1} (an rnn with sequence = true)"
        raise ctx.error(f"{with_article(kind.kind)} layer cannot read the sequence of {source}",
                        hint="Put an rnn layer with sequence = false (its last step) or a "
                             "flatten layer before it")
