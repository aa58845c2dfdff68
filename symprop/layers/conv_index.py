"""A conv layer's gradients in letters, as a textbook states them, for the derivation to
print after the worked position (the printer proves each equal to the engine's result at the
target's own indices first, :mod:`symprop.printing.map_sums`):

* every weight at once: the correlation of the layer's deltas with its input;
* every input entry at once (stride 1): the full correlation of the deltas with the kernel
  flipped.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np
import sympy

from .symbolic import general, node

if TYPE_CHECKING:
    from ..notation import Node
    from .conv import ConvLayer

__all__ = ["OFFSET_LETTERS", "POSITION_LETTERS", "index_form"]

#: The spatial letters of a map's positions and of a kernel's offsets, per dimension.
POSITION_LETTERS = "pq"
OFFSET_LETTERS = "uv"


def _shifted(letter: str, stride: int, offset: str, pad: int) -> str:
    """The input index a window reads, as text: ``2p+u-1`` (stride 2, padding 1), ``p+u``."""
    text = f"{stride if stride > 1 else ''}{letter}+{offset}"
    return text + (f"-{pad}" if pad else "")


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
               * general("a", l - 1, "c", *(_shifted(p, s, u, pad) for p, s, u, pad in zip(
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
