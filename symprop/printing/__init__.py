"""Printers: SymPy printer subclasses for the seed notation, and derivation renderers."""

from .text import SeedStrPrinter, render_derivation, text

__all__ = ["SeedStrPrinter", "render_derivation", "text"]
