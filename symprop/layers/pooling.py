"""``maxpool1d``, ``maxpool2d``, ``avgpool1d``, ``avgpool2d``: each channel's windows, the
maximum or the mean of each, a_{c,p,q}^(l) = max_{u,v} a_{c, p s+u, q s+v}^(l-1) (or the mean).

No parameters and no z: the entries are the outputs, with dC_0/da_{c,p,q}^(l).  Max pooling
routes the gradient to the window's maximum (the first, row-major, on ties, as PyTorch's
argmax does); average pooling spreads it evenly, 1/(kernel size) to each entry of the window.
Windows may overlap (stride below the kernel): an input entry then collects from every
window that reads it.  Output size floor((n - kernel)/stride) + 1 along each axis, as in
PyTorch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import sympy

from .base import LayerConfig, ParseContext
from .maps import (
    OFFSET_LETTERS,
    OUTPUT_LETTERS,
    POSITION_LETTERS,
    MaxOver,
    input_shape_of,
    letter,
    map_below,
    pair,
    shifted_text,
    short,
    sums,
    window_count,
    window_geometry,
    window_reads,
    windows_of,
)
from .maps import axes_text as text
from .mistakes import BackwardMistake, pool_backward
from .symbolic import GraphContext, SymbolicLayer, general, node

__all__ = ["AvgPool1dConfig", "AvgPool2dConfig", "MaxPool1dConfig", "MaxPool2dConfig",
           "PoolLayer"]


@dataclass(frozen=True)
class PoolConfig(LayerConfig):
    """The keys and shape checks of the four pooling kinds."""

    KEYS: ClassVar[dict] = {"kernel": None, "stride": 0}
    READS_FLAT: ClassVar[bool] = False
    DIMS: ClassVar[int] = 2
    #: "max" or "mean".
    REDUCE: ClassVar[str] = "max"

    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()

    @property
    def padding(self) -> tuple[int, ...]:
        return (0,) * self.DIMS

    @classmethod
    def parse(cls, table: Mapping[str, Any], ctx: ParseContext) -> PoolConfig:
        table = cls.check_keys(table, ctx)
        below = map_below(ctx, cls.kind, cls.DIMS)
        kernel = pair(ctx, table, "kernel", cls.DIMS, 1)
        stride = kernel if table["stride"] == 0 else pair(ctx, table, "stride", cls.DIMS, 1)
        sizes = below[1:]
        if any(k > n for k, n in zip(kernel, sizes)):
            raise ctx.error(f"the window {list(kernel)} does not fit in the input "
                            f"{list(sizes)} (shape {list(below)})", "kernel",
                            hint="Use a window no larger than the map")
        out = (below[0], *(window_count(n, k, s) for n, k, s in zip(sizes, kernel, stride)))
        return cls(ctx.index, math.prod(out), below, out, kernel, stride)

    @classmethod
    def from_torch(cls, module, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """nn.MaxPool*/AvgPool* without padding, dilation or ceil_mode."""
        from ..errors import InputError

        def axes(value):
            return tuple(value) if isinstance(value, tuple | list) else (value,) * cls.DIMS
        padding = axes(module.padding)
        dilation = axes(getattr(module, "dilation", 1))
        if set(padding) != {0} or set(dilation) != {1} or module.ceil_mode \
                or getattr(module, "return_indices", False) \
                or getattr(module, "divisor_override", None) is not None:
            raise InputError(f"{where} ({type(module).__name__}): padding, dilation, ceil_mode "
                             "or a divisor override is not symprop's pooling",
                             hint="symprop's pooling takes a kernel and a stride only")
        return ({"kind": cls.kind, "kernel": short(axes(module.kernel_size)),
                 "stride": short(axes(module.stride))}, {})

    @property
    def shape(self) -> tuple[int, ...]:
        return self.out_shape

    def to_table(self) -> dict[str, Any]:
        return {"kind": self.kind, "kernel": short(self.kernel), "stride": short(self.stride)}

    def describe(self) -> str:
        return (f"{self.kind} {text(self.kernel)}"
                + (f", stride {text(self.stride)}" if self.stride != self.kernel else ""))

    def backward_mistakes(self) -> tuple[BackwardMistake, ...]:
        rows = []
        if any(s < k for s, k in zip(self.stride, self.kernel)):
            words = ("assigned (=) instead of added (+=) where windows overlap: a node read by "
                     "several windows gets the sum of what each passes back")
            rows = [BackwardMistake(words, lambda pt, how=how: {
                "A": pool_backward(self, pt.A, pt.dOut, assign=how)}) for how in ("window", "entry")]
        if self.REDUCE == "max":
            rows.append(BackwardMistake(
                "ties sent to every maximum of a window: dOut goes to the first maximum only "
                "(row-major), as in PyTorch", lambda pt: {
                    "A": pool_backward(self, pt.A, pt.dOut, every_max=True)}))
        return tuple(rows)

    def notation(self) -> list[tuple[str, str]]:
        what = "maximum" if self.REDUCE == "max" else "mean"
        return [(r"a_{c,p,q}^{(l)}", (f"the {what} of channel $c$'s window at position "
                                     "$(p, q)$ of layer $l-1$"))]

    def composed_size(self, sizes: Mapping[int, int], spec) -> int:
        return math.prod(self.kernel) * (sizes[self.index - 1] + 1)

    def reached(self, source: int, ks: set[int]) -> set[int]:
        if source != self.index - 1:
            return set()
        return {i for k in ks for i in _windows(self).readers[k]}

    def build(self, ctx: GraphContext) -> PoolLayer:
        return PoolLayer(self, ctx)

    def reference(self, ops, params: dict, outputs: dict):
        """The library's own pooling (torch's max_pool/avg_pool, lax.reduce_window)."""
        a = outputs[self.index - 1]
        a = a.reshape((a.shape[0], *self.in_shape))
        if ops.name == "jax":
            import jax

            window, strides = (1, 1, *self.kernel), (1, 1, *self.stride)
            if self.REDUCE == "max":
                out = jax.lax.reduce_window(a, -ops.xp.inf, jax.lax.max, window, strides,
                                            "VALID")
            else:
                out = jax.lax.reduce_window(a, 0.0, jax.lax.add, window, strides, "VALID")
                out = out / math.prod(self.kernel)
        else:
            pool = getattr(ops.xp.nn.functional, f"{self.REDUCE.replace('mean', 'avg')}_pool"
                                                  f"{self.DIMS}d")
            out = pool(a, self.kernel, self.stride)
        return out.reshape((out.shape[0], -1))


@dataclass(frozen=True)
class MaxPool1dConfig(PoolConfig):
    kind = "maxpool1d"
    DIMS: ClassVar[int] = 1
    TORCH_MODULES: ClassVar[tuple[str, ...]] = ("MaxPool1d",)


@dataclass(frozen=True)
class MaxPool2dConfig(PoolConfig):
    kind = "maxpool2d"
    TORCH_MODULES: ClassVar[tuple[str, ...]] = ("MaxPool2d",)


@dataclass(frozen=True)
class AvgPool1dConfig(PoolConfig):
    kind = "avgpool1d"
    DIMS: ClassVar[int] = 1
    REDUCE: ClassVar[str] = "mean"
    TORCH_MODULES: ClassVar[tuple[str, ...]] = ("AvgPool1d",)


@dataclass(frozen=True)
class AvgPool2dConfig(PoolConfig):
    kind = "avgpool2d"
    REDUCE: ClassVar[str] = "mean"
    TORCH_MODULES: ClassVar[tuple[str, ...]] = ("AvgPool2d",)


@dataclass(frozen=True)
class _Windows:
    #: members[i]: the flat input entries of output i's window, row-major.
    members: tuple[tuple[int, ...], ...]
    #: readers[k]: the outputs whose window holds input entry k.
    readers: tuple[tuple[int, ...], ...]


@functools.lru_cache(maxsize=64)
def _windows(config: PoolConfig) -> _Windows:
    geometry = window_geometry(config)
    members, readers = [], [[] for _ in range(math.prod(config.in_shape))]
    for i in range(math.prod(config.out_shape)):
        c, *position = np.unravel_index(i, config.out_shape)
        window = tuple(int(np.ravel_multi_index(
            (c, *geometry.input_position(tuple(position), offset)), config.in_shape))
            for offset in geometry.offsets)
        members.append(window)
        for k in window:
            readers[k].append(i)
    return _Windows(tuple(members), tuple(map(tuple, readers)))


class PoolLayer(SymbolicLayer):
    """a_i = Max (or the mean) of output i's window; the entries are the outputs."""

    def __init__(self, config: PoolConfig, ctx: GraphContext):
        super().__init__(config, ctx)
        self.kind = config.kind
        self.below = tuple(self.sources_of[self.index - 1])
        self.windows = _windows(config)
        self.entries = self.outputs
        self.adjoints = tuple(node("adj", self.index, *node_indices)
                              for node_indices in _indices(config.out_shape))

    @property
    def node_kinds(self) -> dict[str, int]:
        return {"a": len(self.config.out_shape)}

    def sources(self, i: int):
        return tuple(self.below[k] for k in self.windows.members[i])

    def readers(self, source: sympy.Symbol) -> tuple[int, ...]:
        return self.windows.readers[self._below_index[source]]

    def local(self, i: int, wrt: sympy.Symbol) -> sympy.Expr:
        """1/(window size) for the mean; for the max, 1 where ``wrt`` is the window's first
        maximum (greater than the entries before it, at least the entries after), else 0."""
        window = self.sources(i)
        if wrt not in window:
            return sympy.S.Zero
        if self.config.REDUCE == "mean":
            return sympy.Rational(1, len(window))
        return FirstMax(wrt, *window)

    def param_entries(self, param):
        return ()

    def array_code(self, code) -> dict:
        """The layer in a target's array code (``code``: a :class:`~symprop.codegen.kinds.
        MapCode`): the windows of the input as a view; the maximum of each and where it is
        (the first, row-major), whose entry alone receives dA; or the mean, which spreads
        dA / (window size) over the window.  Overlapping windows add up (``_add_windows``)."""
        c, l = self.config, self.index
        size = math.prod(c.kernel)
        windows = windows_of(code, c, f"A{l - 1}")
        shape = input_shape_of(c, f"dA{l}")
        native = code.native("max_pool", d=c.DIMS, x=f"A{l - 1}", kernel=c.kernel,
                             stride=c.stride) if c.REDUCE == "max" else None
        if native is not None:  # First: where in the map each window's first maximum is
            forward = [f"A{l}, First{l} = {native}"]
            back = code.call("_unpool_max", f"dA{l}", f"First{l}", shape)
            return {"forward": forward, "passes": {l - 1: back}, "saved": [f"First{l}"],
                    "reads": [f"First{l}"]}
        if c.REDUCE == "max":
            note = "  # the maximum of each window, and where it is (the first)"
            forward = [f"A{l}, First{l} = {code.call('_window_max', windows, c.DIMS)}{note}"]
            shares = code.call("_to_window_max", f"dA{l}", f"First{l}", c.kernel)
            saved = [f"First{l}"]
        else:
            axes = tuple(range(-c.DIMS, 0))
            forward = [f"A{l} = {code.total(windows, axes)} / {size}  # each window's mean"]
            shares = code.call("_spread", f"dA{l} / {size}", c.kernel)
            saved = []
        back = code.call("_add_windows", shares, shape, c.stride, c.padding)
        return {"forward": forward, "passes": {l - 1: back}, "saved": saved, "reads": saved}

    def window_definition(self, i: int) -> sympy.Expr:
        """Max(window) (unevaluated: SymPy would compare every pair of entries) or the
        mean."""
        window = self.sources(i)
        return sympy.Max(*window, evaluate=False) if self.config.REDUCE == "max" else \
            sympy.Add(*window) / len(window)

    @functools.cached_property
    def _output_index(self) -> dict[sympy.Symbol, int]:
        return {a: i for i, a in enumerate(self.outputs)}

    def definition(self, symbol: sympy.Symbol) -> sympy.Expr | None:
        i = self._output_index.get(symbol)
        return None if i is None else self.window_definition(i)

    def definitions(self) -> dict[sympy.Symbol, sympy.Expr]:
        return {a: self.window_definition(i) for i, a in enumerate(self.outputs)}

    # ------------------------------------------------ general equations (letters)
    def _window(self, positions: str) -> sympy.Expr:
        """max_{u,v} a_{c,sp+u,sq+v}^(l-1), or the window's mean, at ``positions``."""
        c = self.config
        offsets = OFFSET_LETTERS[:c.DIMS]
        entry = general("a", self.index - 1, "c", *(shifted_text(p, s, u, pad) for p, s, u, pad
                                                     in zip(positions, c.stride, offsets,
                                                            c.padding)))
        ranges = [(letter(u), 0, k - 1) for u, k in zip(offsets, c.kernel)]
        if c.REDUCE == "max":
            return MaxOver(entry, *ranges)
        return sums(entry, *zip(offsets, c.kernel)) / math.prod(c.kernel)

    def general_definitions(self) -> list[tuple[sympy.Expr, sympy.Expr]]:
        """a_{c,p,q}^(l) = max_{u,v} a_{c,sp+u,sq+v}^(l-1), or the window's mean."""
        positions = POSITION_LETTERS[:self.config.DIMS]
        return [(general("a", self.index, "c", *positions), self._window(positions))]

    def general_contribution(self, source: int) -> sympy.Expr:
        """dC_0/da_{c,p,q}^(l-1) from this layer: the sum over the windows (r, t) of
        dC_0/da_{c,r,t}^(l) times [a_{c,p,q}^(l-1) is the window's first maximum] (0 outside
        it), or times 1/(window size) for each offset (u, v) that reads (p, q)."""
        c, l = self.config, self.index
        positions, outputs = POSITION_LETTERS[:c.DIMS], OUTPUT_LETTERS[:c.DIMS]
        incoming = general("adj", l, "c", *outputs)
        every = tuple(zip(outputs, c.out_shape[1:]))
        if c.REDUCE == "max":
            first = FirstMax(general("a", l - 1, "c", *positions), self._window(outputs))
            return sums(incoming * first, *every)
        offsets = OFFSET_LETTERS[:c.DIMS]
        return sums(window_reads(c) * incoming / math.prod(c.kernel), *every,
                    *zip(offsets, c.kernel))


class FirstMax(sympy.Function):
    """[u is the window's maximum]: 1 where ``u`` (the first argument) is the first maximum
    of the window (the other arguments, in row-major order), else 0 -- the derivative of
    max pooling by one entry of its window, ties to the first as PyTorch's argmax.

    Prints as an Iverson bracket, [u = max(window)]; constant wherever it is defined, so
    its own derivative is 0."""

    def fdiff(self, argindex=1):
        return sympy.S.Zero

    def numeric(self, ev):
        u, *window = self.args
        values = [ev(s) for s in window]
        top = max(values)
        return ev.backend.number(int(window.index(u) == values.index(top)))

    def write_out(self, instantiate, binding: dict[str, int]) -> sympy.Expr:
        """At concrete indices (a general equation's [a_{c,p,q} = max_{u,v} ...]): the
        window's entries written out; 0 where the entry is not in the window."""
        u = instantiate(self.args[0], binding)
        window = [t for w in self.args[1:] for t in (
            w.terms(instantiate, binding) if isinstance(w, MaxOver) else [instantiate(w, binding)])]
        return FirstMax(u, *window) if u in window else sympy.S.Zero

    def _latex(self, printer):
        u, *window = self.args
        if len(window) == 1 and isinstance(window[0], MaxOver):  # a general window
            return rf"\left[{printer._print(u)} = {printer._print(window[0])}\right]"
        shown = ", ".join(printer._print(s) for s in window)
        return rf"\left[{printer._print(u)} = \max\left({shown}\right)\right]"

    def _sympystr(self, printer):
        u, *window = self.args
        if len(window) == 1 and isinstance(window[0], MaxOver):
            return f"[{printer._print(u)} = {printer._print(window[0])}]"
        return f"[{printer._print(u)} = max({', '.join(printer._print(s) for s in window)})]"


class WindowMax(sympy.Function):
    """max(entries) with the entries in the order written (row-major for a window), as a
    user's ``\\max(a, b, ...)`` or ``\\max_{u,v} ...`` reads: SymPy's Max sorts its arguments
    by name (a_{0,10} before a_{0,9}), which would move the first of tied entries."""

    def numeric(self, ev):
        return max(ev(s) for s in self.args)

    def _latex(self, printer):
        return rf"\max\left({', '.join(printer._print(s) for s in self.args)}\right)"

    def _sympystr(self, printer):
        return f"max({', '.join(printer._print(s) for s in self.args)})"


def _indices(shape: tuple[int, ...]):
    return [tuple(map(int, idx)) for idx in np.ndindex(*shape)]
