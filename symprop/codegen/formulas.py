"""The derivation engine generated code is printed from: the spec's own, with each custom
layer's formula first put in its overflow-free form.

A custom formula is the user's text in SymPy (``sigmoid(u)`` is ``1/(1 + exp(-u))``), and
SymPy's derivative of that overflows where the value does not: d sigma(u)/du comes out as
``exp(-u)/(1 + exp(-u))**2`` (inf/inf at u = -1e3), log(sum_k(exp(u)))' as
``exp(u)/sum_k(exp(u))``.  So before anything is differentiated the formula goes through
the same table of identities the activations go through (:mod:`.stable`: sigmoid, softplus
and log(1 + exp(u)), expm1, logs of sigmoids) and its log-sum-exp over k
(:data:`~.stable.FORMULA_RULES`); the new functions differentiate to stable forms
themselves (sigma' = sigma(1 - sigma), softplus' = sigma, a log-sum-exp's softmax weights
exp(u - logsumexp)).  Derivations and documents keep the formula as the user wrote it: only
the engine built here has the rewritten one.
"""

from __future__ import annotations

import dataclasses

import sympy

from ..derivation import Backprop
from ..graph import build_graph
from ..layers.formula import FormulaLayer
from ..layers.symbolic import GraphContext
from ..spec import Spec
from .stable import FORMULA_RULES, LOG_RULES, REWRITES, rewrite_stable

__all__ = ["codegen_engine", "stable_formula"]


def stable_formula(expr: sympy.Expr) -> sympy.Expr:
    """A custom layer's letter form with the stable-form table applied."""
    return rewrite_stable(expr, REWRITES + LOG_RULES + FORMULA_RULES)


def codegen_engine(spec: Spec) -> Backprop:
    """The engine of ``spec`` whose custom layers derive from their stable formulas."""
    graph = build_graph(spec)
    layers = dict(graph.layers)
    for l, layer in graph.layers.items():
        if layer.kind != "custom":
            continue
        form = stable_formula(layer.output_form)
        if form != layer.output_form:
            layers[l] = FormulaLayer(layer.config, GraphContext(spec, graph.a), form)
    if layers == graph.layers:
        return Backprop(graph)
    return Backprop(dataclasses.replace(graph, layers=layers, _cache={}))
