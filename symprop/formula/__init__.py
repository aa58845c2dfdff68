"""Formulas in seed notation: parse (:mod:`.parser`) and give them meaning (:mod:`.meaning`)."""

from .meaning import AtSample, BatchSum, FreeIndexError, Meaning, Scope, is_batch_formula
from .parser import FormulaError, parse_formula

__all__ = ["AtSample", "BatchSum", "FormulaError", "FreeIndexError", "Meaning", "Scope",
           "is_batch_formula", "parse_formula"]
