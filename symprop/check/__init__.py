"""Check hand-derived formulas and hand-written gradient functions against the truth."""

from .diagnosis import CATEGORIES, Finding
from .formula import Counterexample, FormulaCheck, check_formula
from .function import FunctionCheck, ParameterVerdict, check_function
from .layer import LayerCheck, check_layer

__all__ = ["CATEGORIES", "Counterexample", "Finding", "FormulaCheck", "FunctionCheck",
           "LayerCheck", "ParameterVerdict", "check_formula", "check_function", "check_layer"]
