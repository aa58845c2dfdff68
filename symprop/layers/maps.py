"""What the kinds that read maps of channels and positions share (conv, pooling): the
check that layer l - 1 is a map of the right dimensions, a key given as one number or one
per axis, PyTorch's output size, and how such keys print."""

from __future__ import annotations

from collections.abc import Mapping

from .base import ParseContext

__all__ = ["axes_text", "map_below", "pair", "short", "window_count"]


def map_below(ctx: ParseContext, kind: str, dims: int) -> tuple[int, ...]:
    """The shape (C, ...) of layer l - 1, which must be a map of ``dims`` spatial axes."""
    below = ctx.below_shape
    if len(below) != dims + 1:
        what = "the input" if ctx.index == 1 else f"layer {ctx.index - 1}"
        want = "[channels, length]" if dims == 1 else "[channels, height, width]"
        raise ctx.error(f"a {kind} layer reads a map {want}, but {what} has shape "
                        f"{list(below)}",
                        hint=f"Give the input as input = {want.replace('channels', 'C')}"
                             if ctx.index == 1 else f"Use the {kind[:-2]} kind of that "
                                                    "layer's dimensions")
    return below


def pair(ctx: ParseContext, table: Mapping, key: str, dims: int, low: int) -> tuple[int, ...]:
    """An int, or one int per spatial dimension (a pair for conv2d)."""
    value = table[key]
    if isinstance(value, list) and dims > 1:
        if len(value) != dims:
            raise ctx.error(f"expected {dims} whole numbers, got {value!r}", key,
                            hint=f"Write {key} = 3 or {key} = [3, 3]")
        return tuple(ctx.integer({key: v}, key, low) for v in value)
    return (ctx.integer(table, key, low),) * dims


def window_count(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """Output positions along one axis: floor((n + 2P - k) / s) + 1, as in PyTorch."""
    return (size + 2 * padding - kernel) // stride + 1




def short(values: tuple[int, ...]):
    """A key as the spec writes it: one number when every axis has it, else the list."""
    return values[0] if len(set(values)) == 1 else list(values)


def axes_text(values: tuple[int, ...]) -> str:
    """``3`` or ``2x3``, for one-line descriptions."""
    return "x".join(map(str, values)) if len(set(values)) > 1 else str(values[0])
