"""A conv layer's gradients in letters, as a textbook states them, for the derivation to
print after the worked position (the printer proves each equal to the engine's result at the
target's own indices first, :mod:`symprop.printing.map_sums`):

* every weight at once: the correlation of the layer's deltas with its input;
* every input entry at once (stride 1): the full correlation of the deltas with the kernel
  flipped.

and the layer's general equations for the report (:mod:`symprop.equations`, which checks
each at concrete nodes): its definition, what it passes back to its input, its parameters'
gradients.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np
import sympy

from .maps import (
    OFFSET_LETTERS,
    OUTPUT_LETTERS,
    POSITION_LETTERS,
    shifted_text,
    sums,
    window_reads,
)
from .symbolic import general, node

if TYPE_CHECKING:
    from ..notation import Node
    from .conv import ConvLayer

__all__ = ["general_contribution", "general_definitions", "general_parameters", "index_form"]

def index_form(layer: ConvLayer, target: Node) -> dict | None:
    """The gradient of every weight, or of every input entry, of a conv layer in letters:

    * a weight: dC_0/dw_{o,c,u,v} = sum_{p,q} delta_{o,p,q} a_{c, sp+u-P, sq+v-P}, the
      correlation of delta^(l) with the layer's input (zero outside it);
    * an input entry, stride 1: dC_0/da_{c,p,q}^(l-1) = sum_{o,u,v} delta_{o, p+u-(k-1-P), ...}
      w_{o,c,k-1-u, ...}, the full correlation of delta^(l) with the flipped kernel (delta
      zero outside its map).

    Returns the letters summed over, the general left and right sides (general nodes), the
    words that name it, and ``concrete``: the same sum at ``target``'s own indices (in delta
    symbols), which the printer proves equal to the engine's result before showing it.
    """
    c = layer.config
    l, dims = layer.index, c.DIMS
    positions, offsets = POSITION_LETTERS[:dims], OFFSET_LETTERS[:dims]
    delta_shape = c.out_shape
    if target.kind == "w" and target.layer == l:
        rhs = (general("delta", l, "o", *positions)
               * general("a", l - 1, "c", *(shifted_text(p, s, u, pad) for p, s, u, pad in zip(
                   positions, c.stride, offsets, c.padding))))
        o, ch, *offset = target.indices
        terms = []
        for position in itertools.product(*(range(n) for n in delta_shape[1:])):
            at = layer.geometry.input_position(position, tuple(offset))
            if at is not None:
                k = int(np.ravel_multi_index((ch, *at), c.in_shape))
                terms.append(node("delta", l, o, *position) * layer.below[k])
        return {"letters": positions, "lhs": general("w", l, "o", "c", *offsets), "rhs": rhs,
                "words": "every weight of the layer at once, the correlation of its deltas "
                         "with its input (zero outside it)", "concrete": sympy.Add(*terms)}
    reads_input = (target.kind == "x" and l == 1) or (target.kind == "a" and target.layer == l - 1)
    if not reads_input or set(c.stride) != {1}:
        return None
    flip = [k - 1 for k in c.kernel]
    rhs = (general("delta", l, "o", *(f"{p}+{u}" + (f"-{k - pad}" if k - pad else "")
                                      for p, u, k, pad in zip(positions, offsets, flip, c.padding)))
           * general("w", l, "o", "c", *(f"{k}-{u}" for k, u in zip(flip, offsets))))
    ch, *at = target.indices
    terms = []
    for o in range(delta_shape[0]):
        for offset in layer.geometry.offsets:
            out = tuple(a + u - (k - pad) for a, u, k, pad in zip(at, offset, flip, c.padding))
            if all(0 <= x < n for x, n in zip(out, delta_shape[1:])):
                kernel = tuple(k - u for k, u in zip(flip, offset))
                terms.append(node("delta", l, o, *out) * node("w", l, o, ch, *kernel))
    return {"letters": ("o", *offsets), "lhs": general("a", l - 1, "c", *positions), "rhs": rhs,
            "words": "every entry of the layer's input at once, the full correlation of the "
                     "layer's deltas with its kernel flipped (the deltas zero outside their "
                     "map)", "concrete": sympy.Add(*terms)}


def _window_input(layer: ConvLayer, positions: str) -> sympy.Symbol:
    """a_{c, s p+u-P, ...}^(l-1): the input entry the window at ``positions`` reads."""
    c = layer.config
    return general("a", layer.index - 1, "c", *(shifted_text(p, s, u, pad) for p, s, u, pad in zip(
        positions, c.stride, OFFSET_LETTERS, c.padding)))


def general_definitions(layer: ConvLayer) -> list[tuple[sympy.Expr, sympy.Expr]]:
    """z_{o,p,q}^(l) = sum_{c,u,v} w_{o,c,u,v}^(l) a_{c,sp+u-P,sq+v-P}^(l-1) (+ b_o^(l)), the
    input zero outside its map; a_{o,p,q}^(l) = g(z_{o,p,q}^(l))."""
    c, l = layer.config, layer.index
    positions, offsets = POSITION_LETTERS[:c.DIMS], OFFSET_LETTERS[:c.DIMS]
    z = general("z", l, "o", *positions)
    rhs = sums(general("w", l, "o", "c", *offsets) * _window_input(layer, positions),
               ("c", c.in_shape[0]), *zip(offsets, c.kernel))
    if c.bias:
        rhs = rhs + general("b", l, "o")
    return [(z, rhs), (general("a", l, "o", *positions), layer.activation(z))]


def general_contribution(layer: ConvLayer) -> sympy.Expr:
    """dC_0/da_{c,p,q}^(l-1) from this layer: with stride 1 the full correlation of the deltas
    with the flipped kernel, sum_{o,u,v} delta_{o,p+u-(k-1-P),...} w_{o,c,k-1-u,...}; with a
    larger stride every window position (r, t) whose offset reads (p, q):
    sum_{o,r,t,u,v} [p = s r+u-P] ... delta_{o,r,t} w_{o,c,u,v}.  Deltas are zero outside
    their map."""
    c, l = layer.config, layer.index
    positions, offsets = POSITION_LETTERS[:c.DIMS], OFFSET_LETTERS[:c.DIMS]
    channels = ("o", c.channels)
    if set(c.stride) == {1}:
        flip = [k - 1 for k in c.kernel]
        delta = general("delta", l, "o", *(f"{p}+{u}" + (f"{pad - k:+d}" if k - pad else "")
                                           for p, u, k, pad in zip(positions, offsets, flip,
                                                                   c.padding)))
        weight = general("w", l, "o", "c", *(f"{k}-{u}" for k, u in zip(flip, offsets)))
        return sums(delta * weight, channels, *zip(offsets, c.kernel))
    outputs = OUTPUT_LETTERS[:c.DIMS]
    body = window_reads(c) * general("delta", l, "o", *outputs) \
        * general("w", l, "o", "c", *offsets)
    return sums(body, channels, *zip(outputs, c.out_shape[1:]), *zip(offsets, c.kernel))


def general_parameters(layer: ConvLayer) -> list[tuple[sympy.Expr, sympy.Expr]]:
    """dC_0/dw_{o,c,u,v}^(l) = sum_{p,q} delta_{o,p,q}^(l) a_{c,sp+u-P,sq+v-P}^(l-1): the
    weight is shared, so its gradient sums over every position; dC_0/db_o = sum_{p,q}
    delta_{o,p,q}."""
    c, l = layer.config, layer.index
    positions, offsets = POSITION_LETTERS[:c.DIMS], OFFSET_LETTERS[:c.DIMS]
    delta = general("delta", l, "o", *positions)
    every = tuple(zip(positions, c.out_shape[1:]))
    out = [(general("w", l, "o", "c", *offsets),
            sums(delta * _window_input(layer, positions), *every))]
    return out + ([(general("b", l, "o"), sums(delta, *every))] if c.bias else [])
