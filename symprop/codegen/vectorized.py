"""The ``vectorized`` style: seed 001's matrix form, one matmul per step of a dense layer,
each other kind's array forms printed from its letter forms (:mod:`.kinds`).

The backward pass walks the layers from the output down; each passes back to the layers it
reads (the one before it, and a skip connection's earlier layer), the first contribution
assigning the gradient of that layer's output, the others adding to it.
"""

from __future__ import annotations

from dataclasses import replace

import sympy

from ..derivation import Backprop
from ..spec import Spec
from .context import activation_helpers, common_context, learning_below, output_helpers
from .formulas import codegen_engine
from .kinds import MAP_HELPERS, layer_code, param_gradient_name
from .printer import HELPERS, NumpyCodePrinter, inplace_statements
from .rules import A, ActivationCode, OutputCode, Z, activation_code, output_code
from .stable import LogSoftmax, Sigmoid, SoftmaxRow

__all__ = ["vectorized_context"]


def _layer_steps(spec: Spec, engine: Backprop, printer: NumpyCodePrinter
                 ) -> dict[int, dict]:
    """Per layer of the vectorized module: how the forward step evaluates a = g(z) and what
    the backward step multiplies Delta by.

    A hidden layer whose g' is written through its output (sigma' = a(1 - a)) never needs
    Z^(l) again, so a = g(z) is evaluated into Z^(l)'s own memory (``inplace``: ufuncs with
    ``out=``) and the backward step uses A^(l) as its scratch once it is done reading it.
    A softmax output is computed transposed in memory (``transposed``): its row reductions
    then run along contiguous memory, which matters for a narrow output and a big batch.
    """
    g = engine.graph
    steps = {}
    for l, layer in g.layers.items():
        if layer.kind != "dense":
            continue
        code = activation_code(g.activation[l])
        printer._settings["symbol_names"] = {Z: f"Z{l}"}
        inplace = (inplace_statements(code.forward, f"Z{l}", printer)
                   if l < g.L and code.through_output else None)
        scratch = f"A{l}" if inplace is not None else f"Z{l}"
        # a sigmoid adds the bias in its own first pass (one pass over Z^(l) fewer)
        folded = spec.has_bias(l) and inplace is not None and code.forward == Sigmoid(Z)
        if folded:
            inplace = [f'_sigmoid(Z{l}, out=Z{l}, shift=params["b{l}"])']
        steps[l] = {"forward": f"_act_{code.key}", "label": code.label, "inplace": inplace,
                    "note": "", "bias_folded": folded,
                    "transposed": l == g.L and not g.is_elementwise(l),
                    "prime_factors": _prime_factors(code, l, printer, scratch)
                    if l < g.L else [], "kind": "dense",
                    "passes": {l - 1: _dense_pass(l)}}
    return steps


def _dense_pass(layer: int, out: str | None = None) -> str:
    """What dense layer l passes back, Delta^(l) W^(l), into ``out`` when given."""
    into = f", out={out}" if out else ""
    return f'Delta{layer}.dot(params["W{layer}"]{into})'


def _prime_factors(code: ActivationCode, layer: int, printer: NumpyCodePrinter,
                   scratch: str) -> list[dict]:
    """What Delta^(l) is multiplied by, in place, factor by factor (nothing for g' = 1).

    A g' written through the output (sigma' = a (1 - a)) no longer needs Z^(l), so each
    composite factor is evaluated into ``scratch`` (Z^(l), or A^(l) itself when Z^(l)'s
    memory became A^(l)) and the backward step allocates no temporary array; any other g'
    is one call of its helper.  With A^(l) as the scratch, the factors that read A^(l) go
    first and one composite factor last (it overwrites A^(l)).
    """
    if code.prime == 1:
        return []
    if not code.through_output:
        return [{"setup": [], "value": f"_act_{code.key}_prime(Z{layer}, A{layer})"}]
    printer._settings["symbol_names"] = {A: f"A{layer}", Z: f"Z{layer}"}
    def composite(f):
        return not (f.is_Symbol or f.is_Number)

    factors = sorted(sympy.Mul.make_args(code.prime), key=composite)
    if scratch == f"A{layer}" and sum(map(composite, factors)) > 1:
        factors = [sympy.expand(code.prime)]
    steps = []
    for f in factors:
        setup = inplace_statements(f, scratch, printer) if composite(f) else None
        if setup is None:
            steps.append({"setup": [], "value": printer.doprint(f)})
        else:
            steps.append({"setup": setup, "value": scratch})
    return steps


def _through_log_softmax(out: OutputCode) -> OutputCode | None:
    """The output forms for a forward pass that leaves Z^(L) = log softmax(Z^(L)), or None.

    softmax and log softmax do not change when a row is shifted by a constant, and
    log softmax(z) = z - logsumexp(z) is such a shift: with Z^(L) replaced by its log
    softmax, LogSoftmax(z) is z itself and softmax(z) is the forward output a.  Valid only
    when z appears nowhere else in delta^(L) and the loss (checked here).
    """
    done = {LogSoftmax(Z): Z, SoftmaxRow(Z): A}
    hidden = sympy.Dummy()
    if any(Z in e.xreplace(dict.fromkeys(done, hidden)).free_symbols
           for e in (out.delta, out.loss)):
        return None
    return replace(out, delta=out.delta.xreplace(done), loss=out.loss.xreplace(done))


def _dense_buffers(spec: Spec, per_layer: dict[int, dict]) -> list[tuple[str, str]]:
    """The arrays a step of the dense layers writes with ``out=``, as (name, shape in terms
    of the batch n): each Z^(l) (the output's transposed when it is computed so), dW^(l)
    and db^(l).  Kept in a caller's workspace they are made once; without one NumPy
    allocates each as usual."""
    names = []
    for l, step in sorted(per_layer.items()):
        if step["kind"] != "dense":
            continue
        n_out, n_in = spec.layers[l], spec.layers[l - 1]
        names.append((f"Z{l}T", f"({n_out}, n)") if step["transposed"] else
                     (f"Z{l}", f"(n, {n_out})"))
        names.append((f"dW{l}", f"({n_out}, {n_in})"))
        if spec.has_bias(l):
            names.append((f"db{l}", f"({n_out},)"))
    return names


def _into_dead_output(spec: Spec, layer: int, reads: int, scratch: frozenset[int]) -> bool:
    """Can dense layer ``layer`` write the gradient it passes back to layer ``reads`` into
    the memory of its own A^(l)?  Yes when A^(l) served as the scratch of g' (``scratch``:
    nothing reads it any more) and the two have one shape: one allocation of (batch, n)
    fewer per step, which is what a hand-written step does (in float64 at batch 256, every
    fresh 512 KiB array costs 128 page faults: glibc returns freed memory of that size to
    the system)."""
    return layer in scratch and reads == layer - 1 and spec.layers[reads] == spec.layers[layer]


def _gradient_name(graph, layer: int) -> str:
    """The array of dC/dA^(l): Delta^(l) for a dense layer (its g' is applied in place),
    dA^(l) for any other."""
    return f"Delta{layer}" if layer and graph.layers[layer].kind == "dense" else f"dA{layer}"


def vectorized_context(spec: Spec, source: str | None = None, with_input: bool = False) -> dict:
    """Everything ``templates/codegen/vectorized.py.j2`` needs; ``with_input``: gradients
    also returns dC/dX under "X" (how ``check --layer`` gets a layer's input gradient)."""
    engine = codegen_engine(spec)
    g, L = engine.graph, spec.L
    out = output_code(engine)
    printer = NumpyCodePrinter()
    per_layer = _layer_steps(spec, engine, printer)
    inplace = frozenset(l for l, step in per_layer.items() if step["inplace"] is not None)
    output = g.layers[L].kind
    normalized = None if output != "dense" or g.is_elementwise(L) else _through_log_softmax(out)
    if normalized is not None:
        # one pass gives a = softmax(z) and turns Z^(L) into log softmax(z) for the loss
        out = normalized
        printer.helpers_used.add("softmax_keep_log")
        per_layer[L].update(forward="_softmax_keep_log",
                            note=f"Z{L} is now log softmax(Z{L}): the loss reads it")
    for l, layer in g.layers.items():
        if layer.kind != "dense":
            per_layer[l] = layer_code(layer, printer.helpers_used)
    # the backward pass: who passes back to whom, the first assigning, the others adding
    assigned = set()
    buffers = _dense_buffers(spec, per_layer)
    if output == "activation":  # its activation meets the loss: the combined stable form
        assigned.add(L - 1)
        per_layer[L]["passes"] = {}
    # dC/dA^(r) is worked out only where a layer up to r has parameters (never for X, r = 0)
    learns = dict.fromkeys(range(L + 1), True) if with_input else learning_below(spec)
    for l in range(L, 0, -1):
        lines = []
        passes = {reads: expr for reads, expr in per_layer[l]["passes"].items()
                  if learns[reads]}
        # dA^(l) passed on as it is (a residual sum's): nothing reads it after these lines, so
        # the last layer that starts from it takes the array itself, the others a copy (a
        # later step changes each in place)
        starting = [r for r in passes if r in per_layer[l].get("bare", ()) and r not in assigned]
        for reads, expr in passes.items():
            if reads in starting[:-1]:
                expr += ".copy()"
            name = _gradient_name(g, reads)
            if reads not in assigned and per_layer[l]["kind"] == "dense":
                # the first pass to that layer writes into memory that is already there
                if _into_dead_output(spec, l, reads, inplace):
                    expr = f"{_dense_pass(l, f'A{l}')}  # into A{l}'s memory: it is not read again"
                else:
                    expr = _dense_pass(l, f'buf.get("{name}")')
                    buffers.append((name, f"(n, {spec.layers[reads]})"))
            lines.append(f"{name} {'+=' if reads in assigned else '='} {expr}")
            assigned.add(reads)
        per_layer[l]["contributions"] = lines
    # the backward pass calls g' of hidden layers; the output's is in _output_delta
    helpers = (activation_helpers(engine, printer, prime_layers=range(1, L),
                                  softmax_forward=True,
                                  written_out=inplace | ({L} if normalized else set()))
               + output_helpers(out, printer, "" if normalized is None else
                                ", z being log softmax(z^(L)) after the forward pass"))
    context = common_context(spec, "vectorized", source, out)
    # what the backward pass reads besides the A: the pre-activations still needed after the
    # forward pass (the rest became A^(l)) and the other kinds' saved quantities
    kept = []
    for l, step in sorted(per_layer.items()):
        kept += step["saved"] if step["kind"] != "dense" else (
            [] if l in inplace else [f"Z{l}"])
    start = {"dense": (f"Delta{L}", f"Z{L}"),
             "activation": (_gradient_name(g, L - 1) if L > 1 or with_input else None, f"A{L - 1}")}.get(
        output, (f"dA{L}", f"A{L}"))
    context.update(gradient_names={key: param_gradient_name(key) for key in context["keys"]},
                   z_names=", ".join(kept) + ("," if len(kept) == 1 else ""),
                   y_order="F" if output == "dense" and per_layer[L]["transposed"] else None,
                   per_layer=per_layer, helpers=helpers, output_kind=output,
                   start=start, loss_z={"dense": "Zs[-1]", "activation": "As[-2]"}.get(
                       output, "As[-1]"),
                   builtins=[h for h in HELPERS if h in printer.helpers_used],
                   map_helpers=[h for h in MAP_HELPERS if h in printer.helpers_used],
                   backward_a_names=None, backward_z_names=None,
                   # db^(l) = ones^T Delta^(l) of a dense layer (other kinds sum their own)
                   dense_bias=any(step["kind"] == "dense" and spec.has_bias(l)
                                  for l, step in per_layer.items()),
                   buffers=buffers, input_gradient=_gradient_name(g, 0) if with_input else None)
    return context
