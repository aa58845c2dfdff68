"""Check hand-derived formulas and hand-written gradient functions against the truth."""

from .diagnosis import CATEGORIES, Finding
from .formula import Counterexample, FormulaCheck, check_formula
from .function import FunctionCheck, ParameterVerdict, check_function

__all__ = ["CATEGORIES", "Counterexample", "Finding", "FormulaCheck", "FunctionCheck",
           "ParameterVerdict", "check_formula", "check_function"]
