"""symprop: symbolic backpropagation.

The pipeline, one stage a value you can inspect::

    spec = Spec.from_toml("net.toml")          # or tutorial_spec(), or Spec(layers=[...])
    graph = build_graph(spec)                  # symbols, layered definitions, composed C_0
    engine = backprop(graph)                   # chain-rule engine
    d = engine.derive("w_{12}^{(L)}")          # Derivation: chain, factors, result
    d.prove()                                  # ProofResult against diff of the composed C_0
    prove_all(engine)                          # every parameter, or against JAX / PyTorch
"""

from .derivation import (
    Backprop,
    BatchAverage,
    ChainRule,
    Derivation,
    Factor,
    Path,
    backprop,
    derive,
)
from .errors import ExpressionError, InputError, NameLookupError, SpecError, SympropError
from .graph import C0, SymbolicGraph, build_graph
from .notation import Node
from .proof import ProofReport, ProofResult, prove, prove_all
from .spec import Spec, tutorial_spec

__version__ = "0.1.0"

__all__ = [
    "C0",
    "Backprop",
    "BatchAverage",
    "ChainRule",
    "Derivation",
    "ExpressionError",
    "Factor",
    "InputError",
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
    "derive",
    "prove",
    "prove_all",
    "tutorial_spec",
]
