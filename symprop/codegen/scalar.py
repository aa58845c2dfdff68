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

import re

import numpy as np
import sympy

from ..activations import ActivationPrime
from ..derivation import Backprop
from ..notation import node_of
from ..printing.text import text
from ..spec import Spec
from .context import activation_helpers, common_context
from .formulas import codegen_engine
from .printer import HELPERS, NumpyCodePrinter
from .rules import A as A_ROW
from .rules import Z, activation_code, output_code, stable_loss_term, tidy
from .stable import LogSoftmax, SoftmaxRow, join_exponentials, rewrite_stable

__all__ = ["scalar_context", "scalar_lines", "symbol_names"]


def symbol_names(engine: Backprop) -> dict[sympy.Symbol, str]:
    """Python names of every network symbol in the scalar module."""
    g = engine.graph
    names: dict[sympy.Symbol, str] = {}
    names.update({s: f"x_{k}" for k, s in enumerate(g.x)})
    names.update({s: f"y_{j}" for j, s in enumerate(g.y)})
    for l, layer in g.layers.items():
        names.update({a: f"a{l}_{j}" for j, a in enumerate(layer.outputs)})
        keys = {p.kind: p.key for p in g.spec.layer(l).parameters(g.widths)}
        for param in layer.parameters:  # W2[1, 0], a conv's W1[o, c, u, v], gamma3[2]
            index = ", ".join(map(str, param.indices))
            names[param.symbol] = f"{keys[param.kind]}{l}[{index}]"
        if layer.through_activation:  # a layer with a z: z and delta node by node
            names.update({z: f"z{l}_{j}" for j, z in enumerate(layer.z)})
            names.update({d: f"delta{l}_{j}" for j, d in enumerate(layer.adjoints)})
            continue
        names.update({s: f"dC_da{l}_{j}" for j, s in enumerate(layer.adjoints)})
        for s in layer.named:
            node = node_of(s)
            names[s] = f"{node.kind}{l}" + (f"_{node.j}" if node.indices else "")
    return names


def _specialise_primes(engine: Backprop, expr: sympy.Expr) -> sympy.Expr:
    """g'(u) -> its form through the output a = g(u) (visible algebra), else the helper's
    call."""
    from ..derivation import _output_of

    mapping = {}
    for call in expr.atoms(ActivationPrime):
        code = activation_code(call.base)
        a_j = _output_of(engine.graph, call)
        if code.through_output:
            mapping[call] = code.prime.xreplace({A_ROW: a_j})
        else:
            helper = sympy.Function(f"_act_{code.key}_prime")
            mapping[call] = helper(call.args[0], a_j)
    return expr.xreplace(mapping)


def _pre(graph) -> tuple[sympy.Symbol, ...] | None:
    """What the output's activation reads (z^(L), or an activation layer's input), if the
    output layer has an activation."""
    layer = graph.layers[graph.L]
    return {"dense": lambda: graph.z[graph.L], "activation": lambda: layer.below}.get(
        layer.kind, lambda: None)()


def _stable_loss_term(engine: Backprop, j: int, log_softmax: dict) -> sympy.Expr:
    """Node j's loss term with logs of probabilities written through z (see .stable)."""
    g = engine.graph
    a_j, pre = g.a[g.L][j], _pre(g)
    if pre is None:
        return g.loss_terms[j]
    code = activation_code(g.activation[g.L])
    if code.forward == SoftmaxRow(Z):  # the row form; its log is node j's column
        stable = stable_loss_term(g.loss_terms[j], a_j, SoftmaxRow(Z), a_j)
        return stable.xreplace({LogSoftmax(Z): log_softmax[j]})
    return stable_loss_term(g.loss_terms[j], a_j, code.forward.xreplace({Z: pre[j]}), a_j)


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
    engine = engine_or_spec if isinstance(engine_or_spec, Backprop) else \
        codegen_engine(engine_or_spec)
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
    for l, layer in g.layers.items():
        forward += _forward_lines(engine, layer, names, line, stack, printer)

    loss_lines = []
    terms = [_stable_loss_term(engine, j, log_softmax) for j in range(g.widths[L])]
    if any(t.has(*log_softmax.values()) for t in terms):
        printer.helpers_used.add("log_softmax")
        loss_lines.append({"target": f"_log_a{L}", "code": f"_log_softmax({stack(_pre(g))})",
                           "comment": "log a^(L), computed through z (never log 0)"})
    loss_lines.append(line("C_i", sympy.Add(*terms),
                           f"C_i = {text(g.loss, L, 'absolute')}, one per sample"))

    deltas = []
    combined = g.layers[L].kind == "activation"  # its activation meets the loss at L-1
    outputs = {s: engine.dC_da(L, j) for j, s in enumerate(g.layers[L].adjoints)}
    for l in range(L, 0, -1):
        layer = g.layers[l]
        if combined and l == L:
            continue
        for j, symbol in enumerate(layer.adjoints):
            compact = engine.entry_gradient(l, j)
            value = _specialise_primes(engine, compact)
            if combined and l == L - 1:
                value = tidy(_specialise_primes(engine, compact.xreplace(outputs)))
            lhs = node_of(symbol).text()
            value = join_exponentials(value)
            deltas.append((symbol, tidy(value) if l == L else value,
                           f"{lhs} = {text(compact, L, 'absolute')}"))
    # SymPy's temporaries are t0, t1, ...: _t0, ... when a parameter array is named like them
    prefix = "_t" if any(re.match(r"t[0-9]+\[", k) for k in names.values()) else "t"
    replacements, reduced = sympy.cse([v for _, v, _ in deltas],
                                      symbols=sympy.numbered_symbols(prefix), order="none")
    for symbol, _ in replacements:
        names[symbol] = str(symbol)
    assignments = [(s, v, "") for s, v in replacements]
    assignments += [(s, r, c) for (s, _, c), r in zip(deltas, reduced)]
    ordered = _dependency_order(assignments)
    needed = set().union(*(engine.gradient(n).free_symbols for n in g.parameters()))
    needed |= {s for l, layer in g.layers.items() for s in layer.adjoints
               if any(n.layer == l for n in g.parameters())}
    live = []  # from the end: an assignment nothing reads (a gradient of the input) goes
    for symbol, value, comment in reversed(ordered):
        if symbol in needed:
            live.append((symbol, value, comment))
            needed |= value.free_symbols
    backward = [line(names[s], v, c) for s, v, c in reversed(live)]

    gradient_lines = []
    for node in g.parameters():
        layer = g.layers[node.layer]
        entries = layer.param_entries(node)
        if layer.through_activation and len(entries) == 1:  # a dense w_jk: delta_j a_k
            delta = layer.adjoints[entries[0]]
            expr = engine.gradient(node).subs(engine.dC_dz(node.layer, entries[0]), delta)
        else:  # sum over the entries it enters of (their symbol) d entry / d node
            expr = join_exponentials(sympy.Add(*[
                layer.adjoints[i] * engine.local(node.layer, i, node.symbol)
                for i in entries]))
        target = names[node.symbol]
        gradient_lines.append(line(f"d{target}", expr,
                                   f"dC_0/d{node.text()} = {text(expr, L, 'absolute')}"))

    inputs = [{"target": names[x], "code": f"X[:, {', '.join(map(str, index))}]"}
              for x, index in zip(g.x, np.ndindex(*g.spec.shapes[0]))]
    inputs, forward = _read_only(inputs, forward, [*loss_lines, *backward, *gradient_lines],
                                 [names[a] for a in g.a[L]])
    return {"forward": forward, "loss_lines": loss_lines, "backward": backward,
            "gradient_lines": gradient_lines, "inputs": inputs,
            "targets": [{"target": names[y], "code": f"Y[:, {j}]"} for j, y in enumerate(g.y)],
            "outputs": [names[a] for a in g.a[L]]}


def _read_only(inputs: list[dict], forward: list[dict], later: list[dict],
               outputs: list[str]) -> tuple[list[dict], list[dict]]:
    """The input and forward lines something reads: a map's entries that no window reaches
    (the last row of an odd map under a 2 x 2 pool) are left out, and so is what only they
    read, until every name assigned is used (ruff's F841)."""
    while True:
        code = " ".join([*(d["code"] for d in [*inputs, *forward, *later]), *outputs])
        used = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", code))
        kept_in = [d for d in inputs if d["target"] in used]
        kept = [d for d in forward if d["target"] in used or not d["target"].isidentifier()]
        if (len(kept_in), len(kept)) == (len(inputs), len(forward)):
            return inputs, forward
        inputs, forward = kept_in, kept


def _forward_lines(engine: Backprop, layer, names, line, stack, printer) -> list[dict]:
    """One line per node of a layer: a dense layer's z_j and a_j, an activation layer's
    a_j, every other kind's named quantities and a_j from their definitions."""
    g, l, L = engine.graph, layer.index, engine.graph.L
    if layer.kind == "concat":
        return [{"target": names[a], "code": names[s], "comment": ""}
                for a, s in zip(layer.outputs, layer.copied)]
    if not layer.through_activation and layer.kind != "activation":
        return [line(names[s], rewrite_stable(rhs), f"{text(s, L, 'absolute')} = "
                                                      f"{text(rhs, L, 'absolute')}")
                for s, rhs in layer.definitions().items()]
    out = []
    pre = layer.z if layer.through_activation else layer.below
    if layer.through_activation:  # z_j (a conv's z_{o,p,q}) as the sum of its terms
        out += [line(names[z], layer.z_def(j),
                     f"{node_of(z).text()} = {text(layer.z_def(j), L, 'absolute')}")
                for j, z in enumerate(layer.z)]
    code = activation_code(g.activation[l])
    if code.forward == SoftmaxRow(Z):
        printer.helpers_used.add("softmax")
        out.append({"target": f"_a{l}", "code": f"_softmax({stack(pre)})",
                    "comment": f"a^({l}) = softmax(z^({l})) over each sample's nodes"})
        out += [{"target": names[a], "code": f"_a{l}[:, {j}]", "comment": ""}
                for j, a in enumerate(g.a[l])]
    else:
        out += [{"target": names[a], "code": f"_act_{code.key}({names[z]})",
                 "comment": f"{node_of(a).text()} = {code.label}({text(z, None)})"}
                for z, a in zip(pre, g.a[l])]
    return out


def scalar_context(spec: Spec, source: str | None = None) -> dict:
    """Everything ``templates/codegen/scalar.py.j2`` needs."""
    engine = codegen_engine(spec)
    printer = NumpyCodePrinter({"allow_unknown_functions": True})
    # one line per node: g' of every layer; softmax is written out, not called
    helpers = activation_helpers(engine, printer, prime_layers=range(1, spec.L + 1),
                                 softmax_forward=False, kinds=("activation",),
                                 with_z=True)
    lines = scalar_lines(engine, printer)
    context = common_context(spec, "scalar", source, output_code(engine))
    context.update(helpers=helpers, builtins=[h for h in HELPERS if h in printer.helpers_used],
                   reduce="np.mean" if spec.reduction == "mean" else "np.sum",
                   **lines)
    return context
