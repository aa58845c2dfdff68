"""The ``torch`` and ``jax`` targets: each layer a function whose backward is the derivation
(``templates/codegen/torch.py.j2``: a ``torch.autograd.Function``; ``jax.py.j2``: a
``jax.custom_vjp``).

The forms are the NumPy target's, printed for the framework by its printer
(:mod:`.torch_printer`, :mod:`.jax_printer`) and its :class:`~.forms.ArrayForms`:

* a dense layer: the stable forward, g' through the output where SymPy finds one (such a
  hidden layer saves a^(l), not z^(l), and torch evaluates a = g(z) in z's memory);
* any other kind: its derived letter forms (:func:`~.kinds.layer_code`), one function over
  the layers it reads and its parameters, saving what its backward reads;
* the output layer and the loss: delta^(L) and the loss in their combined stable forms,
  from z^(L) (a dense output), from a^(L-1) (an activation layer's input plays z) or from
  a^(L) (any other kind's output meets the loss as it is).

torch's ``loss_and_gradients`` runs the layers' forward and backward functions itself,
without building an autograd graph (:func:`_walk`); JAX's is ``jit(value_and_grad)``
through the custom_vjp functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from sympy.printing.precedence import PRECEDENCE

from ..spec import Spec
from .context import coefficient_code, common_context, learning_below, output_helpers
from .forms import ArrayForms
from .formulas import codegen_engine
from .jax_printer import JaxCodePrinter
from .kinds import MAP_HELPERS, layer_code, param_gradient_name
from .rules import A, Z, activation_code, output_code
from .torch_printer import TorchCodePrinter

__all__ = ["FRAMEWORKS", "Framework", "framework_context"]


@dataclass(frozen=True)
class Framework:
    """What a framework target prints with: its array forms (printer included); a = g(z)
    written over z's memory for the forwards that have an in-place form (an identity
    layer's a is its z in every framework); and dC/dA multiplied by g' in its own memory
    for the g' written through a that have a form without temporaries (torch's fused
    multiply-adds: a (1 - a) g = a g - a (a g))."""

    forms: ArrayForms
    in_place: dict[str, str]
    prime_in_place: dict[str, str]


FRAMEWORKS = {
    "torch": Framework(
        ArrayForms(printer=TorchCodePrinter, total="torch.sum({x}, dim={axis}, keepdim=True)",
                   batch_total="torch.sum({x}, dim={axis})",
                   broadcast=" + {like}.new_zeros({width})",
                   concatenate="torch.cat([{a}, {b}], dim=1)",
                   softmax="torch.softmax({x}, dim=1)", copy="{x}.clone()", param="{key}",
                   logsumexp="torch.logsumexp({x}, dim={axis}, keepdim=True)",
                   einsum="torch.einsum({spec}, {args})",
                   native=(
                       ("conv", ("torch.nn.functional.conv{d}d({x}, {w}, {b}, stride={stride}, "
                                "padding={padding})")),
                       # the input's gradient, dW and db in one call, as eager's backward
                       ("conv_backward", ("torch.ops.aten.convolution_backward({delta}, {x}, "
                                         "{w}, {bias_sizes}, {stride}, {padding}, {ones}, "
                                         "False, {zeros}, 1, (needs_input, True, {bias}))")),
                       ("max_pool", ("torch.nn.functional.max_pool{d}d({x}, {kernel}, {stride}, "
                                    "return_indices=True)")),
                       # relu's backward kernel: one pass, where dA * (Z > 0) casts the
                       # mask to dA's dtype first (40 against 268 us on 64x6x28x28 float32)
                       ("times_step", "torch.ops.aten.threshold_backward({x}, {z}, 0)"))),
        {"torch.sigmoid(Z)": "Z.sigmoid_()", "torch.tanh(Z)": "Z.tanh_()",
         "torch.exp(Z)": "Z.exp_()", "Z": "Z"},
        {"(A*(1 - A))": "dA.mul_(A).addcmul_(dA, A, value=-1)",
         "(1 - A**2)": "dA.addcmul_(dA * A, A, value=-1)"}),
    "jax": Framework(
        ArrayForms(printer=JaxCodePrinter, total="jnp.sum({x}, axis={axis}, keepdims=True)",
                   batch_total="jnp.sum({x}, axis={axis})",
                   broadcast=" + jnp.zeros({width}, {like}.dtype)",
                   concatenate="jnp.concatenate([{a}, {b}], axis=1)",
                   softmax="jax.nn.softmax({x}, axis=1)", copy="{x}", param="{key}",
                   logsumexp="jax.nn.logsumexp({x}, axis={axis}, keepdims=True)",
                   einsum="jnp.einsum({spec}, {args})",
                   native=(("conv", "_conv({x}, {w}, {b}, {stride}, {padding})"),
                           ("conv_weight", ("_conv_weight({x}, {w}.shape, {delta}, {stride}, "
                                           "{padding})")),
                           ("conv_input", ("_conv_input({shape}, {w}, {delta}, {stride}, "
                                          "{padding})")))),
        {"Z": "Z"}, {}),
}


def _dense(spec: Spec, l: int, code, printer, framework: Framework) -> dict:
    """One dense layer: its forward a = g(z), what it saves, and dC/dz from dC/da."""
    printer._settings["symbol_names"] = {Z: "Z", A: "A"}
    forward = printer.doprint(code.forward)
    inplace = framework.in_place.get(forward) if code.through_output else None
    # parenthesised as a factor: (A*(1 - A)), (1 - A**2), but (Z > 0) as it prints
    prime = None if code.prime == 1 else printer.parenthesize(code.prime, PRECEDENCE["Mul"])
    times = prime and framework.forms.times_prime("dA", prime, code, "Z")
    in_place = prime and not times.native and framework.prime_in_place.get(
        prime, f"dA *= {prime}")
    params = [(f"W{l}", "W")] + ([(f"b{l}", "b")] if spec.has_bias(l) else [])
    return {"kind": "dense", "label": code.label, "forward": inplace or forward,
            "inplace": inplace is not None, "saved": "A" if code.through_output else "Z",
            "prime": prime, "prime_in_place": in_place, "times_prime": times and times.code,
            "times_comment": times.comment if times else "",
            "formula": f"{code.label}'(z) = {code.prime}", "inputs": [l - 1],
            "params": params, "bare": set()}


def _output(spec: Spec, engine, printer) -> dict:
    """The output layer and the loss: what the output function reads (z^(L) of a dense
    layer from a^(L-1) through W and b, else the array playing z) and its activation."""
    g, L = engine.graph, engine.graph.L
    kind = g.layers[L].kind
    printer._settings["symbol_names"] = {Z: "Z"}
    if kind in ("dense", "activation"):
        code = activation_code(g.activation[L])
        label, forward = code.label, printer.doprint(code.forward)
    else:
        label, forward = "identity", "Z"
    affine, bias = kind == "dense", kind == "dense" and spec.has_bias(L)
    source = L - 1 if kind in ("dense", "activation") else L
    # the output function's arguments before Y: a^(L-1), W and b of a dense layer, else z
    args = (f'A{source}, params["W{L}"], ' + (f'params["b{L}"]' if bias else "None")
            if affine else f"A{source}")
    return {"affine": affine, "bias": bias, "source": source, "kind": kind, "label": label,
            "forward": forward, "args": args}


def _tuple(names: list[str]) -> str:
    return f"({names[0]},)" if len(names) == 1 else f"({', '.join(names)})"


def _function_parts(code: dict) -> dict:
    """A layer function's arguments at its call and in its definition (the arrays it reads,
    then its parameters); for a kind's functions, what the forward saves and the backward
    returns (dC/dA of each input, then each parameter's gradient)."""
    inputs = [f"A{s}" for s in code["inputs"]]
    parts = {"args": ", ".join(inputs + [f'params["{key}"]' for key, _ in code["params"]]),
             "signature": ", ".join(inputs + [name for _, name in code["params"]])}
    if code["kind"] != "dense":
        returned = ([f"({code['passes'][s]} if needs_input else None)"
                     if code.get("needs_input") else code["passes"][s] for s in code["inputs"]]
                    + [param_gradient_name(key) for key, _ in code["params"]])
        parts.update(saves=_tuple(code["reads"]) if code["reads"] else "()",
                     returns=", ".join(returned) + ("," if len(returned) == 1 else ""),
                     reads_from=" and ".join(f"a^({s})" for s in code["inputs"]))
    return parts


def _walk(layers: dict[int, dict], output: dict, learns: dict[int, bool]) -> list[str]:
    """torch's ``loss_and_gradients`` after the forward pass: the output's backward, then each
    layer's from the top down, each handing dC/dA to the layers it reads.

    The first contribution to a layer's dA assigns it, a later one adds (out of place: a
    residual sum hands its own dA on to both of its inputs, so two names may hold one
    tensor). A dense layer multiplies its dA by g' in place (``owned``) unless that dA is such
    a tensor handed on as it is. What a layer's backward has read is let go at once (``del``),
    as autograd frees saved tensors: a smaller peak, so freed memory is reused rather than
    handed back to the system and faulted in again on the next call. ``learns[r]``: does a
    layer up to r have parameters (a map layer's input gradient is worked out only then)."""
    received: dict[int, list[bool]] = {output["source"]: [False]}
    for l, code in layers.items():
        for s in code["inputs"]:
            received.setdefault(s, []).append(s in code["bare"])
    assigned, lines = set(), []

    def take(s: int, l: int) -> str:
        if not learns[s]:
            return "_"  # X needs no gradient, nor a layer with nothing to learn below it
        if s in assigned:
            return f"dA{s}_{l}"
        assigned.add(s)
        return f"dA{s}"

    def adds(names: list[str], sources: list[int]) -> list[str]:
        return [f"dA{s} = dA{s} + {n}" for n, s in zip(names, sources) if n not in ("_", f"dA{s}")]

    src = output["source"]
    if output["affine"]:
        lines.append(f"{take(src, src + 1)}, grads[\"W{src + 1}\"], "
                     f"{'db' if output['bias'] else '_'} = "
                     f"_output_backward(saved_out, 1.0, {learns[src]})")
        if output["bias"]:
            lines.append(f'grads["b{src + 1}"] = db')
    else:
        lines.append(f"{take(src, src + 1)} = _output_backward(saved_out, 1.0)")
    lines.append("del saved_out")
    for l in sorted(layers, reverse=True):
        code = layers[l]
        if not learns[l]:  # no parameters at or below it: no gradient to work out
            continue
        names = [take(s, l) for s in code["inputs"]]
        grads = [f'grads["{key}"]' for key, _ in code["params"]]
        if code["kind"] == "dense":  # it returns dC/dA^(l-1), dW and db (None without b)
            grads += ["_"] * (3 - len(names + grads))
            owned = received[l] != [True]
            call = f"_layer{l}_backward(saved{l}, dA{l}, {learns[l - 1]}, owned={owned})"
        else:
            # a map layer works out dC/dA^(l-1) only where a layer below has parameters
            asks = f", {learns[l - 1]}" if code.get("needs_input") else ""
            call = f"_layer{l}_backward(saved{l}, dA{l}{asks})"
        targets = names + grads
        lines.append(f"{', '.join(targets)}{',' if len(targets) == 1 else ''} = {call}")
        lines += adds(names, code["inputs"])
        lines.append(f"del saved{l}, dA{l}")
    return lines


def framework_context(spec: Spec, source: str | None, target: str) -> dict:
    """Everything ``templates/codegen/<target>.py.j2`` needs."""
    engine = codegen_engine(spec)
    g, L = engine.graph, spec.L
    framework = FRAMEWORKS[target]
    printer = framework.forms.printer()
    output = _output(spec, engine, printer)
    top = L if output["source"] == L else L - 1
    layers, used = {}, set()
    learns = learning_below(spec)
    for l in range(1, top + 1):
        layer = g.layers[l]
        if layer.kind == "dense":
            layers[l] = _dense(spec, l, activation_code(g.activation[l]), printer, framework)
        else:
            layers[l] = layer_code(layer, used, framework.forms)
            # a map layer reading X: its input's gradient (a full correlation) only on demand
            layers[l]["needs_input"] = target == "torch" and hasattr(layer, "array_code")
            layers[l]["skipped"] = not learns[l]
        layers[l].setdefault("skipped", False)
        layers[l].update(describe=spec.stack[l - 1].describe(), **_function_parts(layers[l]))
    out = output_code(engine)
    printer._settings["symbol_names"] = {Z: "Z"}
    context = common_context(spec, target, source, out)
    context.update(
        per_layer=layers, output=output,
        map_helpers=[h for h in MAP_HELPERS if h in used],
        walk=_walk(layers, output, learns),
        helpers=output_helpers(out, printer),
        coefficient=coefficient_code(out, printer),
        target=target)
    return context
