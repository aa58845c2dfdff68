"""What the kinds that read maps of channels and positions share (conv, pooling): the
check that layer l - 1 is a map of the right dimensions, a key given as one number or one
per axis, PyTorch's output size, and how such keys print."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping

import numpy as np
import sympy
from sympy.concrete.expr_with_limits import ExprWithLimits

from .base import ParseContext

__all__ = ["MAP_LETTERS", "OFFSET_LETTERS", "OUTPUT_LETTERS", "POSITION_LETTERS", "MaxOver",
           "WindowGeometry", "axes_text", "bindings", "flat_index_text", "input_shape_of",
           "letter", "map_below", "pair", "shifted_text", "short", "sums", "window_count",
           "window_geometry", "window_reads", "windows_of"]


#: The letters of a map's node (channel, positions), of a layer's own positions and of its
#: windows' outputs, and of a kernel's offsets, per spatial dimension.
MAP_LETTERS = "cpq"
POSITION_LETTERS = "pq"
OUTPUT_LETTERS = "rt"
OFFSET_LETTERS = "uv"


def letter(name: str) -> sympy.Symbol:
    """A summation letter of the general equations (an integer symbol)."""
    return sympy.Symbol(name, integer=True)


def bindings(limits, binding: dict[str, int]) -> list[dict[str, int]]:
    """Every binding of a sum's letters, ``limits`` as SymPy's (letter, low, high), the
    bounds read with the letters bound before them."""
    out = [dict(binding)]
    for var, low, high in limits:
        def bound(e, b):
            return int(sympy.sympify(e).xreplace({letter(k): v for k, v in b.items()}))
        out = [{**b, str(var): v} for b in out for v in range(bound(low, b), bound(high, b) + 1)]
    return out


def window_reads(config) -> sympy.Expr:
    """[p = s r+u-P] [q = s t+v-P]: 1 where the window at output position (r, t) reads input
    position (p, q) through offset (u, v), else 0 (a conv or pooling config's stride and
    padding)."""
    dims = len(config.stride)
    return sympy.Mul(*[sympy.KroneckerDelta(letter(p), s * letter(r) + letter(u) - pad)
                       for p, r, u, s, pad in zip(POSITION_LETTERS[:dims], OUTPUT_LETTERS[:dims],
                                                  OFFSET_LETTERS[:dims], config.stride,
                                                  config.padding)])


def sums(body: sympy.Expr, *ranges: tuple[str, int]) -> sympy.Expr:
    """``body`` summed over each (letter, size), the first outermost: one \\sum per letter,
    as a textbook writes a sum over channels and positions."""
    for name, size in reversed(ranges):
        body = sympy.Sum(body, (letter(name), 0, size - 1))
    return body


def shifted_text(position: str, stride: int, offset: str, pad: int) -> str:
    """The input index a window reads, as text: ``2p+u-1`` (stride 2, padding 1), ``p+u``."""
    text = f"{stride if stride > 1 else ''}{position}+{offset}"
    return text + (f"-{pad}" if pad else "")


def flat_index_text(shape: tuple[int, ...]) -> str:
    """Node (c, p, q) of a map of ``shape`` in C order, as text: ``12c+4p+q`` for [2, 3, 4]."""
    parts = []
    for axis, name in enumerate(MAP_LETTERS[:len(shape)]):
        step = int(np.prod(shape[axis + 1:]))
        parts.append(f"{step if step > 1 else ''}{name}")
    return "+".join(parts)


class MaxOver(ExprWithLimits):
    """The max of ``function`` over its letters' ranges, as a general equation writes a max
    pooling window: max_{u,v} a_{c,2p+u,2q+v}^{(l-1)}; written out at concrete indices as
    the layer's own unevaluated Max of the window, row-major."""

    def terms(self, instantiate, binding: dict[str, int]) -> list[sympy.Expr]:
        return [instantiate(self.function, b) for b in bindings(self.limits, binding)]

    def write_out(self, instantiate, binding: dict[str, int]) -> sympy.Expr:
        return sympy.Max(*self.terms(instantiate, binding), evaluate=False)

    def _latex(self, printer):
        letters = ",".join(printer._print(var) for var, *_ in self.limits)
        return rf"\max_{{{letters}}} {printer._print(self.function)}"

    def _sympystr(self, printer):
        letters = ",".join(printer._print(var) for var, *_ in self.limits)
        return f"max_({letters}) [ {printer._print(self.function)} ]"


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


def windows_of(code, config, source: str) -> str:
    """The array code of every window of ``source`` (a map kind's input) as a view (batch, C,
    *positions, *kernel): entry [i, c, p, q, u, v] = a_{c, p s+u-P, q s+v-P} of sample i."""
    return code.call("_windows", source, config.kernel, config.stride, config.padding)


def input_shape_of(config, like: str) -> str:
    """The array code of a map kind's input shape, the batch size read from ``like``."""
    return f"({like}.shape[0], {', '.join(map(str, config.in_shape))})"


def short(values: tuple[int, ...]):
    """A key as the spec writes it: one number when every axis has it, else the list."""
    return values[0] if len(set(values)) == 1 else list(values)


def axes_text(values: tuple[int, ...]) -> str:
    """``3`` or ``2x3``, for one-line descriptions."""
    return "x".join(map(str, values)) if len(set(values)) > 1 else str(values[0])


class WindowGeometry:
    """Which input entry each window reads, for a conv or pooling config (in_shape,
    out_shape, kernel, stride, padding): index arithmetic on the flat nodes."""

    def __init__(self, config):
        self.config = config
        self.in_shape, self.out_shape = config.in_shape, config.out_shape
        self.offsets = tuple(itertools.product(*(range(k) for k in config.kernel)))

    def input_position(self, position: tuple[int, ...], offset: tuple[int, ...]):
        """The input position a window at ``position`` reads through ``offset``, or None in
        the padding."""
        c = self.config
        at = tuple(p * s + u - pad for p, s, u, pad in zip(position, c.stride, offset,
                                                             c.padding))
        return at if all(0 <= x < n for x, n in zip(at, self.in_shape[1:])) else None

    @functools.cache  # noqa: B019 - one geometry per config, kept for the process (_geometry)
    def terms(self, i: int) -> list[tuple[tuple[int, ...], int]]:
        """(weight index (o, c, u, v), flat input index) of each term of z_i, in order c, u,
        v; terms in the padding are absent (they are zero)."""
        o, *position = np.unravel_index(i, self.out_shape)
        out = []
        for c in range(self.in_shape[0]):
            for offset in self.offsets:
                at = self.input_position(tuple(position), offset)
                if at is not None:
                    flat = int(np.ravel_multi_index((c, *at), self.in_shape))
                    out.append(((int(o), c, *offset), flat))
        return out

    def readers_of(self, k: int) -> list[int]:
        """The entries z_i whose window reads input entry k, in order."""
        _c, *at = np.unravel_index(k, self.in_shape)
        found = set()
        for position in itertools.product(*(range(n) for n in self.out_shape[1:])):
            for offset in self.offsets:
                if self.input_position(position, offset) == tuple(at):
                    found.update(int(np.ravel_multi_index((o, *position), self.out_shape))
                                 for o in range(self.out_shape[0]))
        return sorted(found)

    def weight_entries(self, o: int, c: int, offset: tuple[int, ...]) -> list[int]:
        """The entries z_i of channel o whose window reads a real input entry through
        weight (o, c, offset)."""
        out = []
        for position in itertools.product(*(range(n) for n in self.out_shape[1:])):
            if self.input_position(position, offset) is not None:
                out.append(int(np.ravel_multi_index((o, *position), self.out_shape)))
        return out


@functools.lru_cache(maxsize=64)
def window_geometry(config) -> WindowGeometry:
    return WindowGeometry(config)
