"""The ``scalar`` style: one line per node and per weight, read off the derivation.

Every quantity of seed 000 becomes a NumPy vector over the batch: ``z1_0`` is z_0^(1),
``a1_0`` is a_0^(1), ``delta2_1`` is delta_1^(2).  The backward lines are the engine's
compact results (delta_j^(l) in terms of the next layer's deltas, the derivation's own
common subexpressions) with g' written through the output where SymPy can (sigma' = a (1 - a)),
else a call to the activation's derivative helper; SymPy's ``cse`` then removes what is still
repeated.  Each gradient line is the derivation's dC_0/dw_jk^(l) = delta_j^(l) a_k^(l-1),
reduced over the batch; comments give the seed-notation formula a line implements.
"""

from __future__ import annotations

import sympy

from ..activations import ActivationPrime
from ..derivation import Backprop, backprop
from ..notation import node_of
from ..printing.text import text
from ..spec import Spec
from .context import activation_helpers, common_context
from .printer import HELPERS, NumpyCodePrinter
from .rules import A as A_ROW
from .rules import Z, activation_code, output_code, stable_loss_term, tidy
from .stable import LogSoftmax, SoftmaxRow

__all__ = ["scalar_context", "scalar_lines", "symbol_names"]


def symbol_names(engine: Backprop) -> dict[sympy.Symbol, str]:
    """Python names of every network symbol in the scalar module."""
    g = engine.graph
    names: dict[sympy.Symbol, str] = {}
    names.update({s: f"x_{k}" for k, s in enumerate(g.x)})
    names.update({s: f"y_{j}" for j, s in enumerate(g.y)})
    for l in range(1, g.L + 1):
        for j in range(g.widths[l]):
            names[g.z[l][j]] = f"z{l}_{j}"
            names[g.a[l][j]] = f"a{l}_{j}"
            names[g.delta[l][j]] = f"delta{l}_{j}"
            for k in range(g.widths[l - 1]):
                names[g.w[l][j][k]] = f"W{l}[{j}, {k}]"
            if g.b[l] is not None:
                names[g.b[l][j]] = f"b{l}[{j}]"
    return names


def _specialise_primes(engine: Backprop, expr: sympy.Expr) -> sympy.Expr:
    """g'(z_j^(l)) -> its form through a_j^(l) (visible algebra), else the helper's call."""
    mapping = {}
    for call in expr.atoms(ActivationPrime):
        node = node_of(call.args[0])
        code = activation_code(call.base)
        a_j = engine.graph.a[node.layer][node.j]
        if code.through_output:
            mapping[call] = code.prime.xreplace({A_ROW: a_j})
        else:
            helper = sympy.Function(f"_act_{code.key}_prime")
            mapping[call] = helper(call.args[0], a_j)
    return expr.xreplace(mapping)


def _stable_loss_term(engine: Backprop, j: int, log_softmax: dict) -> sympy.Expr:
    """Node j's loss term with logs of probabilities written through z (see .stable)."""
    g = engine.graph
    a_j, z_j = g.a[g.L][j], g.z[g.L][j]
    code = activation_code(g.activation[g.L])
    if code.forward == SoftmaxRow(Z):  # the row form; its log is node j's column
        stable = stable_loss_term(g.loss_terms[j], a_j, SoftmaxRow(Z), a_j)
        return stable.xreplace({LogSoftmax(Z): log_softmax[j]})
    return stable_loss_term(g.loss_terms[j], a_j, code.forward.xreplace({Z: z_j}), a_j)


def _dependency_order(assignments: list[tuple]) -> list[tuple]:
    """Order assignments so each comes after the ones it uses, otherwise keeping their order."""
    pending = list(assignments)
    defined_later = {s for s, _, _ in pending}
    done: list[tuple] = []
    while pending:
        for n, (symbol, value, _comment) in enumerate(pending):
            if not (value.free_symbols & defined_later):
                done.append(pending.pop(n))
                defined_later.discard(symbol)
                break
        else:  # pragma: no cover - cse output is acyclic
            raise AssertionError("cyclic assignments")
    return done


def scalar_lines(engine_or_spec, printer: NumpyCodePrinter | None = None) -> dict:
    """Forward, loss, backward and gradient lines of the scalar module."""
    engine = engine_or_spec if isinstance(engine_or_spec, Backprop) else backprop(engine_or_spec)
    g, L = engine.graph, engine.graph.L
    names = symbol_names(engine)
    log_softmax = {j: sympy.Symbol(f"logsoftmax_{j}") for j in range(g.widths[L])}
    names.update({s: f"_log_a{L}[:, {j}]" for j, s in log_softmax.items()})
    printer = printer or NumpyCodePrinter()
    printer._settings["symbol_names"] = names
    printer._settings["allow_unknown_functions"] = True

    def line(target: str, expr: sympy.Expr, comment: str = "") -> dict:
        return {"target": target, "code": printer.doprint(expr), "comment": comment}

    def stack(symbols) -> str:
        return "np.stack([" + ", ".join(names[s] for s in symbols) + "], axis=1)"

    forward = []
    for l in range(1, L + 1):
        code = activation_code(g.activation[l])
        forward += [line(names[g.z[l][j]], g.z_def(l, j),
                         f"z_{j}^({l}) = {text(g.z_def(l, j), L, 'absolute')}")
                    for j in range(g.widths[l])]
        if code.forward == SoftmaxRow(Z):
            printer.helpers_used.add("softmax")
            forward.append({"target": f"_a{l}", "code": f"_softmax({stack(g.z[l])})",
                            "comment": f"a^({l}) = softmax(z^({l})) over each sample's nodes"})
            forward += [{"target": names[a], "code": f"_a{l}[:, {j}]", "comment": ""}
                        for j, a in enumerate(g.a[l])]
        else:
            forward += [{"target": names[a], "code": f"_act_{code.key}({names[z]})",
                         "comment": f"a_{j}^({l}) = {code.label}(z_{j}^({l}))"}
                        for j, (z, a) in enumerate(zip(g.z[l], g.a[l]))]

    loss_lines = []
    terms = [_stable_loss_term(engine, j, log_softmax) for j in range(g.widths[L])]
    if any(t.has(*log_softmax.values()) for t in terms):
        printer.helpers_used.add("log_softmax")
        loss_lines.append({"target": f"_log_a{L}", "code": f"_log_softmax({stack(g.z[L])})",
                           "comment": "log a^(L), computed through z (never log 0)"})
    loss_lines.append(line("C_i", sympy.Add(*terms),
                           f"C_i = {text(g.loss, L, 'absolute')}, one per sample"))

    deltas = []
    for l in range(L, 0, -1):
        for j in range(g.widths[l]):
            compact = engine.dC_dz(l, j)
            value = _specialise_primes(engine, compact)
            deltas.append((g.delta[l][j], tidy(value) if l == L else value,
                           f"delta_{j}^({l}) = {text(compact, L, 'absolute')}"))
    replacements, reduced = sympy.cse([v for _, v, _ in deltas],
                                      symbols=sympy.numbered_symbols("t"), order="none")
    for symbol, _ in replacements:
        names[symbol] = str(symbol)
    assignments = [(s, v, "") for s, v in replacements]
    assignments += [(s, r, c) for (s, _, c), r in zip(deltas, reduced)]
    backward = [line(names[s], v, c) for s, v, c in _dependency_order(assignments)]

    gradient_lines = []
    for node in g.parameters():
        delta = g.delta[node.layer][node.j]
        expr = engine.gradient(node).subs(engine.dC_dz(node.layer, node.j), delta)
        key = f"W{node.layer}" if node.kind == "w" else f"b{node.layer}"
        index = f"{node.j}, {node.k}" if node.kind == "w" else f"{node.j}"
        gradient_lines.append(line(f"d{key}[{index}]", expr,
                                   f"dC_0/d{node.text()} = {text(expr, L, 'absolute')}"))

    return {"forward": forward, "loss_lines": loss_lines, "backward": backward,
            "gradient_lines": gradient_lines,
            "inputs": [{"target": names[x], "code": f"X[:, {k}]"} for k, x in enumerate(g.x)],
            "targets": [{"target": names[y], "code": f"Y[:, {j}]"} for j, y in enumerate(g.y)],
            "outputs": [names[a] for a in g.a[L]]}


def scalar_context(spec: Spec, source: str | None = None) -> dict:
    """Everything ``templates/codegen/scalar.py.j2`` needs."""
    engine = backprop(spec)
    printer = NumpyCodePrinter({"allow_unknown_functions": True})
    # one line per node: g' of every layer; softmax is written out, not called
    helpers = activation_helpers(engine, printer, prime_layers=range(1, spec.L + 1),
                                  softmax_forward=False)
    lines = scalar_lines(engine, printer)
    context = common_context(spec, "scalar", source, output_code(engine))
    context.update(helpers=helpers, builtins=[h for h in HELPERS if h in printer.helpers_used],
                   reduce="np.mean" if spec.reduction == "mean" else "np.sum",
                   **lines)
    return context
