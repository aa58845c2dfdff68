"""Printers: SymPy printer subclasses for the seed notation, and what documents show."""

from .text import SeedStrPrinter, text

__all__ = ["SeedStrPrinter", "text"]
