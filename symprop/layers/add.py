"""``add``: a_j^(l) = a_j^(l-1) + a_j^(m), a residual connection from layer m (``from``)."""

from __future__ import annotations

from dataclasses import dataclass

from .base import TwoInputConfig

__all__ = ["AddConfig"]


@dataclass(frozen=True)
class AddConfig(TwoInputConfig):
    kind = "add"
