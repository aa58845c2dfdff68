"""``concat``: the nodes of layer l-1, then those of layer m (``from``): a_j^(l) = a_j^(l-1)
for j < n_{l-1}, else a_{j - n_{l-1}}^(m)."""

from __future__ import annotations

from dataclasses import dataclass

from .base import TwoInputConfig

__all__ = ["ConcatConfig"]


@dataclass(frozen=True)
class ConcatConfig(TwoInputConfig):
    kind = "concat"
    SAME_WIDTH = False
