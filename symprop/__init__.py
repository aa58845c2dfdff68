"""symprop: symbolic backpropagation.

The pipeline, one stage a value you can inspect::

    spec = Spec.from_toml("net.toml")          # or tutorial_spec(), or Spec(layers=[...])
    graph = build_graph(spec)                  # symbols, layered definitions, composed C_0
    engine = backprop(graph)                   # chain-rule engine
    d = engine.derive("w_{12}^{(L)}")          # Derivation: chain, factors, result
    d.prove()                                  # ProofResult against diff of the composed C_0
    prove_all(engine)                          # every parameter, or against JAX / PyTorch
    check_formula(spec, "2(a_1^(L) - y_1) g'^(L)(z_1^(L)) a_2^(L-1)", wrt="w_12^(L)")
    check_function(spec, "mygrad.py:gradients")  # a hand-written NumPy gradient
    check_layer(spec, "mylayer.py:backward", 2)     # one layer's hand-written backward
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__ as __version__

#: Public name -> the module that defines it.  Modules are imported when a name is first
#: used (PEP 562), so ``import symprop`` is instant and the command line can catch a Ctrl-C
#: that comes while SymPy is still loading.
_EXPORTS = {
    **dict.fromkeys(["FormulaCheck", "FunctionCheck", "LayerCheck", "check_formula",
                     "check_function", "check_layer"],
                    "check"),
    **dict.fromkeys(["BatchAverage", "ChainRule", "Factor", "Path"], "chain"),
    **dict.fromkeys(["Backprop", "Derivation", "backprop", "derive", "prove_all"], "derivation"),
    **dict.fromkeys(["ExpressionError", "InputError", "NameLookupError", "SpecError",
                     "SympropError"], "errors"),
    **dict.fromkeys(["C0", "SymbolicGraph", "build_graph"], "graph"),
    "Node": "notation",
    "from_torch": "importing",
    **dict.fromkeys(["ProofReport", "ProofResult", "prove"], "proof"),
    **dict.fromkeys(["Spec", "tutorial_spec"], "spec"),
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'symprop' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # the same names, for type checkers and editors
    from .chain import BatchAverage, ChainRule, Factor, Path
    from .check import (
        FormulaCheck,
        FunctionCheck,
        LayerCheck,
        check_formula,
        check_function,
        check_layer,
    )
    from .derivation import Backprop, Derivation, backprop, derive, prove_all
    from .errors import ExpressionError, InputError, NameLookupError, SpecError, SympropError
    from .graph import C0, SymbolicGraph, build_graph
    from .importing import from_torch
    from .notation import Node
    from .proof import ProofReport, ProofResult, prove
    from .spec import Spec, tutorial_spec

__all__ = [
    "C0",
    "Backprop",
    "BatchAverage",
    "ChainRule",
    "Derivation",
    "ExpressionError",
    "Factor",
    "FormulaCheck",
    "FunctionCheck",
    "InputError",
    "LayerCheck",
    "NameLookupError",
    "Node",
    "Path",
    "ProofReport",
    "ProofResult",
    "Spec",
    "SpecError",
    "SymbolicGraph",
    "SympropError",
    "backprop",
    "build_graph",
    "check_formula",
    "check_function",
    "check_layer",
    "derive",
    "from_torch",
    "prove",
    "prove_all",
    "tutorial_spec",
]
