"""``conv1d``, ``conv2d``: z_{o,p,q}^(l) = sum_{c,u,v} w_{o,c,u,v}^(l) a_{c, p s+u-P, q s+v-P}^(l-1)
(+ b_o^(l)), a_{o,p,q}^(l) = g^(l)(z_{o,p,q}^(l)), zero outside the input (padding P).

A layer with a z, as dense is: its accumulated gradient is delta_{o,p,q}^(l) =
dC_0/dz_{o,p,q}^(l).  One weight w_{o,c,u,v} appears in z_{o,p,q} for every position (p, q)
whose window reads an input entry through it, so its gradient is a sum over those positions.
Parameters W{l} (C_out, C_in, kh[, kw]) and b{l} (C_out,) in PyTorch's layout; the input and
output are maps (C, L) or (C, H, W), flattened in C order as every layer's nodes are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import sympy

from ..notation import Node, node_of
from ..numeric import Products
from .base import (
    IDENTITY,
    ActivationChoice,
    LayerConfig,
    ParamSpec,
    ParseContext,
    parse_activation,
    torch_array,
)
from .conv_index import general_contribution, general_definitions, general_parameters, index_form
from .maps import (
    OFFSET_LETTERS,
    POSITION_LETTERS,
    input_shape_of,
    map_below,
    pair,
    short,
    window_count,
    window_geometry,
    windows_of,
)
from .maps import axes_text as text
from .mistakes import BackwardMistake, conv_mistakes
from .symbolic import GraphContext, LazyRows, SymbolicLayer, WithZ, activation_function, node

__all__ = ["Conv1dConfig", "Conv2dConfig", "ConvLayer"]



@dataclass(frozen=True)
class ConvConfig(LayerConfig):
    """The keys and shape checks of conv1d and conv2d (``DIMS`` spatial dimensions)."""

    KEYS: ClassVar[dict] = {"channels": None, "kernel": None, "stride": 1, "padding": 0,
                            "activation": "identity", "bias": False}
    READS_FLAT: ClassVar[bool] = False
    DIMS: ClassVar[int] = 2

    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()
    activation: ActivationChoice = IDENTITY
    bias: bool = False

    @classmethod
    def parse(cls, table: Mapping[str, Any], ctx: ParseContext) -> ConvConfig:
        table = cls.check_keys(table, ctx)
        below = map_below(ctx, cls.kind, cls.DIMS)
        channels = ctx.integer(table, "channels", 1)
        kernel = pair(ctx, table, "kernel", cls.DIMS, 1)
        stride = pair(ctx, table, "stride", cls.DIMS, 1)
        padding = pair(ctx, table, "padding", cls.DIMS, 0)
        sizes = below[1:]
        for axis, (n, k, s, p) in enumerate(zip(sizes, kernel, stride, padding)):
            if k > n + 2 * p:
                raise ctx.error(f"the kernel {list(kernel)} is larger than the padded input "
                                f"{[m + 2 * q for m, q in zip(sizes, padding)]} (input shape "
                                f"{list(below)}, padding {list(padding)})", "kernel",
                                hint="Use a smaller kernel or more padding")
            if p >= k:
                raise ctx.error(f"padding {list(padding)} leaves windows at the border that "
                                f"read only zeros (kernel {list(kernel)})", "padding",
                                hint="Use a padding smaller than the kernel")
        out = (channels, *(window_count(n, k, s, p)
                           for n, k, s, p in zip(sizes, kernel, stride, padding)))
        activation = parse_activation(table["activation"], ctx.activations,
                                      ctx.where("activation"))
        if activation.name == "softmax":
            raise ctx.error("a conv layer's activation acts node by node; softmax is not one",
                            "activation", hint="Flatten, then use a dense or activation "
                                               "layer with softmax")
        return cls(ctx.index, math.prod(out), below, out, kernel, stride, padding,
                   activation, ctx.boolean(table, "bias"))

    @classmethod
    def from_torch(cls, module, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """nn.Conv1d/Conv2d with zero padding given as numbers, no dilation, no groups: W and
        b are its weight and bias as they are (PyTorch's layout is symprop's)."""
        from ..errors import InputError

        name = type(module).__name__
        if isinstance(module.padding, str) or module.padding_mode != "zeros" \
                or set(module.dilation) != {1} or module.groups != 1:
            raise InputError(f"{where} ({name}): padding={module.padding!r}, padding_mode="
                             f"{module.padding_mode!r}, dilation={module.dilation}, groups="
                             f"{module.groups} is not a plain convolution with zero padding",
                             hint="symprop's conv takes kernel, stride and a zero padding "
                                  "given as numbers; no dilation, no groups")
        params = {"W": torch_array(module.weight)}
        if module.bias is not None:
            params["b"] = torch_array(module.bias)
        return ({"kind": cls.kind, "channels": module.out_channels,
                 "kernel": short(tuple(module.kernel_size)), "stride": short(tuple(module.stride)),
                 "padding": short(tuple(module.padding)), "activation": "identity",
                 "bias": module.bias is not None}, params)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.out_shape

    @property
    def channels(self) -> int:
        return self.out_shape[0]

    def parameters(self, widths: tuple[int, ...]) -> tuple[ParamSpec, ...]:
        fan_in = self.in_shape[0] * math.prod(self.kernel)
        letters = "oc" + OFFSET_LETTERS[:self.DIMS]
        weights = ParamSpec("W", "w", letters, (self.channels, self.in_shape[0], *self.kernel),
                            "fan_in", fan_in)  # PyTorch's default bound, 1/sqrt(C_in kh kw)
        return (weights, ParamSpec("b", "b", "o", (self.channels,), "zeros")) if self.bias \
            else (weights,)

    def to_table(self) -> dict[str, Any]:
        return {"kind": self.kind, "channels": self.channels, "kernel": short(self.kernel),
                "stride": short(self.stride), "padding": short(self.padding),
                "activation": str(self.activation), "bias": self.bias}

    def describe(self) -> str:
        """``conv2d, 4 channels, kernel 3x3, stride 2, padding 1, relu, bias``."""
        channels = f"{self.channels} channel" + ("s" if self.channels > 1 else "")
        return (f"{self.kind}, {channels}, kernel {text(self.kernel)}"
                + (f", stride {text(self.stride)}" if set(self.stride) != {1} else "")
                + (f", padding {text(self.padding)}" if set(self.padding) != {0} else "")
                + f", {self.activation}" + (", bias" if self.bias else ""))

    def backward_mistakes(self) -> tuple[BackwardMistake, ...]:
        return conv_mistakes(self.padding, self.kernel)

    def notation(self) -> list[tuple[str, str]]:
        return [(r"w_{o,c,u,v}^{(l)}", ("weight from channel $c$ of layer $l-1$ at kernel "
                                       "offset $(u, v)$ to channel $o$ of layer $l$")),
                (r"z_{o,p,q}^{(l)}", "the weighted sum of channel $o$ at position $(p, q)$")]

    def composed_size(self, sizes: Mapping[int, int], spec) -> int:
        reads = self.in_shape[0] * math.prod(self.kernel)
        return reads * (sizes[self.index - 1] + 2) + self.bias + 1

    def reached(self, source: int, ks: set[int]) -> set[int]:
        if source != self.index - 1:
            return set()
        layer = window_geometry(self)
        return {i for k in ks for i in layer.readers_of(k)}

    def build(self, ctx: GraphContext) -> ConvLayer:
        return ConvLayer(self, ctx)

    def reference(self, ops, params: dict, outputs: dict):
        """The library's own convolution (jax.lax.conv_general_dilated, torch's conv1d or
        conv2d) on the flat nodes reshaped to (batch, C, ...), g, then flat again."""
        a = outputs[self.index - 1]
        a = a.reshape((a.shape[0], *self.in_shape))
        W = params["W"]
        if ops.name == "jax":
            import jax

            spatial = "HW"[:self.DIMS] if self.DIMS == 2 else "H"
            z = jax.lax.conv_general_dilated(
                a, W, self.stride, [(p, p) for p in self.padding],
                dimension_numbers=(f"NC{spatial}", f"OI{spatial}", f"NC{spatial}"),
                precision=jax.lax.Precision.HIGHEST)
        else:
            conv = getattr(ops.xp.nn.functional, f"conv{self.DIMS}d")
            z = conv(a, W, stride=self.stride, padding=self.padding)
        if self.bias:
            z = z + params["b"].reshape((-1,) + (1,) * self.DIMS)
        z = z.reshape((z.shape[0], -1))
        return ops.activation(self.activation, self.index)(z)


@dataclass(frozen=True)
class Conv1dConfig(ConvConfig):
    kind = "conv1d"
    DIMS: ClassVar[int] = 1
    TORCH_MODULES: ClassVar[tuple[str, ...]] = ("Conv1d",)


@dataclass(frozen=True)
class Conv2dConfig(ConvConfig):
    kind = "conv2d"
    DIMS: ClassVar[int] = 2
    TORCH_MODULES: ClassVar[tuple[str, ...]] = ("Conv2d",)


class ConvLayer(WithZ, SymbolicLayer):
    """z_{o,p,q} = sum of w a over the window (+ b_o), a = g(z): the interface of a layer with
    a z (entries z, deltas, ``z_terms``, ``term_of``, ``a_def``), as the dense layer has."""

    def __init__(self, config: ConvConfig, ctx: GraphContext):
        super().__init__(config, ctx)
        self.kind = config.kind
        l = self.index
        self.geometry = window_geometry(config)
        self.below = tuple(self.sources_of[l - 1])
        shape = config.out_shape
        self.z = tuple(node("z", l, *map(int, idx)) for idx in np.ndindex(*shape))
        self.entries = self.z
        self.adjoints = self.delta = tuple(node("delta", l, *map(int, idx))
                                           for idx in np.ndindex(*shape))
        self.b = tuple(node("b", l, o) for o in range(config.channels)) if config.bias \
            else None
        choice = config.activation
        self.activation = activation_function(choice.name, choice.params, l,
                                              dict(ctx.spec.activations))
        self.a_def = tuple(self.activation(z) for z in self.z)
        self.z_terms = LazyRows(len(self.z), self._terms)
        self._term_index = LazyRows(len(self.z), self._index_of_terms)

    def weight(self, index: tuple[int, ...]) -> sympy.Symbol:
        return node("w", self.index, *index)

    def _terms(self, i: int) -> tuple[sympy.Expr, ...]:
        terms = [self.weight(w) * self.below[k] for w, k in self.geometry.terms(i)]
        return tuple(terms + ([self.b[int(np.unravel_index(i, self.config.out_shape)[0])]]
                              if self.b else []))

    def _index_of_terms(self, i: int) -> dict[sympy.Symbol, tuple[int, sympy.Expr]]:
        """Each symbol z_i reads -> (its term's position, the term's derivative by it: the
        other factor, or 1 for the bias), read off the indices without building the terms."""
        out: dict[sympy.Symbol, tuple[int, sympy.Expr]] = {}
        terms = self.geometry.terms(i)
        for n, (w, k) in enumerate(terms):
            weight, a = self.weight(w), self.below[k]
            out[weight] = (n, a)
            out.setdefault(a, (n, weight))
        if self.b:
            out[self.b[int(np.unravel_index(i, self.config.out_shape)[0])]] = \
                (len(terms), sympy.S.One)
        return out

    @property
    def node_kinds(self) -> dict[str, int]:
        """The number of indices of each of the layer's names (w_{o,c,u,v}, z_{o,p,q})."""
        dims = len(self.config.out_shape)
        return {"w": dims + 1, "b": 1, "z": dims, "a": dims, "delta": dims}

    @property
    def parameters(self) -> list[Node]:
        c = self.config
        out = [Node("w", self.index, *map(int, idx))
               for idx in np.ndindex(c.channels, c.in_shape[0], *c.kernel)]
        return out + ([Node("b", self.index, o) for o in range(c.channels)] if self.b else [])

    def term_of(self, i: int, symbol: sympy.Symbol) -> int | None:
        """The one term of z_i that contains ``symbol``, or None (the symbol is not read)."""
        found = self._term_index[i].get(symbol)
        return None if found is None else found[0]

    def sources(self, i: int):
        return tuple(self.below[k] for _, k in self.geometry.terms(i))

    def readers(self, source: sympy.Symbol) -> list[int]:
        return self.geometry.readers_of(self._below_index[source])

    def local(self, i: int, wrt: sympy.Symbol) -> sympy.Expr:
        """dz_i/d(wrt): the other factor of the one term holding ``wrt`` (d(w a)/dw = a,
        d(w a)/da = w, db/db = 1), what SymPy's diff of the term returns."""
        found = self._term_index[i].get(wrt)
        return sympy.S.Zero if found is None else found[1]

    def param_entries(self, param: Node) -> list[int]:
        if param.kind == "b":
            size = math.prod(self.config.out_shape[1:])
            return list(range(param.j * size, (param.j + 1) * size))
        o, c, *offset = param.indices
        return self.geometry.weight_entries(o, c, tuple(offset))

    def index_form(self, target: Node) -> dict | None:
        """The gradient of every weight or input entry in letters (see :func:`index_form`)."""
        return index_form(self, target)

    def general_definitions(self) -> list[tuple[sympy.Expr, sympy.Expr]]:
        return general_definitions(self)

    def general_contribution(self, source: int) -> sympy.Expr:
        return general_contribution(self)

    def general_parameters(self) -> list[tuple[sympy.Expr, sympy.Expr]]:
        return general_parameters(self)

    def position(self, found: Node) -> int:
        return int(np.ravel_multi_index(found.indices, self.config.out_shape))

    def array_code(self, code) -> dict:
        """The layer in a target's array code (``code``: a :class:`~symprop.codegen.kinds.
        MapCode`): its index forms, each a comment, as contractions over the windows of
        the padded input V[i, c, p, q, u, v] = x_(c, ps+u-P, qs+v-P) of sample i -- z one
        einsum over (c, u, v), dW the correlation of Delta with the windows, the input's
        gradient each window's share w Delta added back where it was read (a loop over
        kernel offsets) -- or the target's own correlation calls where it has them."""
        c, l = self.config, self.index
        pos, off = POSITION_LETTERS[:c.DIMS], OFFSET_LETTERS[:c.DIMS]
        W, x, delta = code.param("W"), f"A{l - 1}", f"Delta{l}"
        b = code.param("b") if c.bias else "None"
        reads_at = ",".join(f"{p}s+{u}-P" for p, u in zip(pos, off))
        forms = {"z": f"  # z_(o,{','.join(pos)}) = sum over c,{','.join(off)} of "
                      f"w_(o,c,{','.join(off)}) x_(c,{reads_at})",
                 "dW": f"  # sum over i,{','.join(pos)} of delta_(o,{','.join(pos)}) "
                       f"x_(c,{reads_at})"}
        fields = {"d": c.DIMS, "x": x, "w": W, "b": b, "stride": c.stride,
                  "padding": c.padding, "delta": delta, "shape": input_shape_of(c, delta),
                  "bias_sizes": [c.channels] if c.bias else None, "ones": (1,) * c.DIMS,
                  "zeros": (0,) * c.DIMS, "bias": c.bias}
        z = code.native("conv", **fields)
        together = code.native("conv_backward", **fields)
        if z is not None:
            forward, window = [f"Z{l} = {z}{forms['z']}"], x
            if together is None:  # the target's correlation calls, one for each gradient
                dW = code.native("conv_weight", **fields)
                back = code.native("conv_input", **fields)
        else:
            window = f"V{l}"
            z = code.einsum(f"ic{pos}{off},oc{off}->io{pos}", window, W)
            forward = [(f"{window} = {windows_of(code, c, x)}  # (batch, C, "
                       f"{', '.join(pos + off)}) windows, zero in the padding"),
                       f"Z{l} = {z}" + (f" + {b}[:, {', '.join(['None'] * c.DIMS)}]"
                                       if c.bias else "") + forms["z"]]
            dW = code.einsum(f"io{pos},ic{pos}{off}->oc{off}", delta, window)
            shares = code.einsum(f"io{pos},oc{off}->ic{pos}{off}", delta, W)
            back = code.call("_add_windows", shares, fields["shape"], c.stride, c.padding)
        g, _, reads = code.activation(self.activation, f"Z{l}", f"A{l}")
        forward.append(f"A{l} = {g or f'Z{l}'}")
        times = code.times_prime(f"dA{l}", self.activation, f"Z{l}", f"A{l}")
        backward = [f"{delta} = {times.code}{times.comment}"]
        if together is not None:  # one call for the input's gradient, dW and db, as eager
            back = f"dX{l}"
            backward += [f"{forms['dW'].strip()} (dW), the full correlation of Delta "
                         "with the flipped kernel (dX)" + (", Delta's sums (db)" if c.bias
                                                            else ""),
                         f"{back}, dW{l}, {f'db{l}' if c.bias else '_'} = {together}"]
        else:
            backward.append(f"dW{l} = {dW}{forms['dW']}")
            if c.bias:
                backward.append(f"db{l} = {code.total(delta, (0, *range(2, 2 + c.DIMS)))}")
        saved = ([window] if window != x else []) + ([reads] if reads == f"Z{l}" else [])
        return {"forward": forward, "backward": backward, "passes": {l - 1: back},
                "saved": saved, "reads": sorted({window, W, *([reads] if reads else [])})}

    def numeric_definition(self, symbol: sympy.Symbol):
        """z as its products w a (+ b), evaluated without building the sum."""
        found = node_of(symbol)
        if found is not None and found.layer == self.index and found.kind == "z":
            i = self.position(found)
            bias = self.b[found.j] if self.b else None
            return Products([(self.weight(w), self.below[k])
                             for w, k in self.geometry.terms(i)], bias)
        return self.definition(symbol)

    def definition(self, symbol: sympy.Symbol) -> sympy.Expr | None:
        found = node_of(symbol)
        if found is None or found.layer != self.index or found.kind not in ("z", "a"):
            return None
        i = self.position(found)
        return self.z_def(i) if found.kind == "z" else self.a_def[i]

