"""A PyTorch model as a spec and its current weights (``symprop import``, design.md section 9).

:func:`from_torch` reads an ``nn.Sequential`` (nested ones too) or a module whose forward is a
straight chain of submodules and activation calls (read with ``torch.fx``), maps each module
through the layer kind that names it in ``TORCH_MODULES`` (a kind's mapping lives in its own
module: ``DenseConfig.from_torch`` for ``nn.Linear``), folds an activation into the dense
layer before it, and adds what torch's loss means (``CrossEntropyLoss`` takes logits: a
softmax output is added).  Before anything is returned, the generated module's forward pass
at the imported weights is compared with the model's on a random batch in float64.
"""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .layers import KINDS
from .self_check import SelfCheckFailed
from .spec import Spec

__all__ = ["LOSSES", "from_torch", "import_model", "toml_text"]

#: torch.nn class name -> the kind's config that maps it.
TORCH_KINDS = {name: config for config in KINDS.values() for name in config.TORCH_MODULES}
#: Modules that do nothing to a flat (batch, n) input.
_PASS_THROUGH = ("Identity", "Flatten")
#: torch's functional activations (call_function / call_method in a traced forward) -> the
#: module that means the same.
_FUNCTIONS = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "softplus": "Softplus",
              "silu": "SiLU", "elu": "ELU", "leaky_relu": "LeakyReLU", "softmax": "Softmax"}
#: How far the imported forward pass may be from the model's (float64).
FORWARD_RTOL = 1e-10


def _cross_entropy(loss) -> tuple[str, str]:
    if getattr(loss, "label_smoothing", 0.0) or getattr(loss, "weight", None) is not None:
        raise InputError("CrossEntropyLoss with weight or label_smoothing has no symprop loss",
                         hint="Use nn.CrossEntropyLoss() with its defaults")
    return "cross_entropy", "softmax"


def _mse(loss) -> tuple[str, str | None]:
    # torch's mean runs over every element: 1/n over samples and 1/m over the outputs
    return ("mse" if loss.reduction == "mean" else "sse"), None


def _bce(output: str | None):
    def rule(loss) -> tuple[str, str | None]:
        if getattr(loss, "weight", None) is not None or getattr(loss, "pos_weight", None) \
                is not None:
            raise InputError(f"{type(loss).__name__} with weight or pos_weight has no symprop "
                             "loss", hint=f"Use nn.{type(loss).__name__}() with its defaults")
        return "binary_cross_entropy", output
    return rule


#: torch loss name -> rule(loss object) -> (symprop loss, activation torch applies first).
LOSSES = {"CrossEntropyLoss": _cross_entropy, "MSELoss": _mse,
          "BCEWithLogitsLoss": _bce("sigmoid"), "BCELoss": _bce(None)}
_REFUSED_LOSSES = {"L1Loss": "|a - y| has no derivative where a = y; symprop derives smooth "
                             "losses (MSELoss, CrossEntropyLoss, BCEWithLogitsLoss, BCELoss)"}


def _loss_object(loss):
    """A loss given by torch's name ('CrossEntropyLoss') or as an nn loss module."""
    import torch

    if isinstance(loss, str):
        if loss in _REFUSED_LOSSES:
            raise InputError(f"{loss} is not supported: {_REFUSED_LOSSES[loss]}")
        if loss not in LOSSES:
            raise InputError(f"unknown torch loss {loss!r}",
                             hint=f"Use one of {', '.join(LOSSES)}")
        return getattr(torch.nn, loss)()
    name = type(loss).__name__
    if name not in LOSSES:
        raise InputError(f"{name} is not supported: " + _REFUSED_LOSSES.get(
            name, f"symprop maps {', '.join(LOSSES)}"))
    return loss


def _chain(module) -> list[tuple[str, Any]]:
    """The model's modules in the order its forward runs them, with their paths."""
    import torch

    if isinstance(module, torch.nn.Sequential):
        out = []
        for name, child in module.named_children():
            nested = _chain(child)
            out += [(name if path == type(child).__name__ and m is child else f"{name}.{path}",
                     m) for path, m in nested]
        return out
    if type(module).__module__.startswith("torch.nn."):  # a layer of torch's own: mapped
        return [(type(module).__name__, module)]           # or refused by its name
    return _traced_chain(module)  # a model class of the user's


#: The chain's mark for ``out[:, -1]`` after an nn.RNN: the rnn layer outputs its last step.
LAST_STEP = "last step"


def _sequence_step(node, chain: list) -> str | None:
    """What a getitem after an nn.RNN reads: its output sequence (``out, _ = rnn(x)``, item
    0: "sequence") or that sequence's last step (``out[:, -1]``: "last"); None otherwise."""
    import operator

    if node.op != "call_function" or node.target is not operator.getitem or not chain:
        return None
    last = chain[-1][1]
    index = node.args[1]
    if type(last).__name__ == "RNN" and index == 0:
        return "sequence"
    if type(last).__name__ == "RNN" and index == (slice(None), -1):
        return "last"
    return None


def _traced_chain(module) -> list[tuple[str, Any]]:
    """A module whose forward is a straight chain, read with torch.fx."""
    import torch
    from torch import fx

    try:
        graph = fx.symbolic_trace(module).graph
    except Exception as exc:  # noqa: BLE001 -- tracing a user's forward may raise anything
        raise InputError(f"cannot read the forward of {type(module).__name__} with torch.fx "
                         f"({type(exc).__name__}: {exc})",
                         hint="Write the model as nn.Sequential, or a forward that calls its "
                              "submodules one after another") from None
    out, previous = [], None
    for node in graph.nodes:
        if node.op == "placeholder":
            if previous is not None:
                raise InputError(f"{type(module).__name__}.forward takes more than one input")
            previous = node
            continue
        if node.op == "output":
            break
        step = _sequence_step(node, out)
        if not node.users and step is None and node.op == "call_function":
            continue  # a value nothing reads (h_n in out, _ = rnn(x))
        inputs = list(node.all_input_nodes)
        if inputs != [previous]:
            raise InputError(f"{node.name} in {type(module).__name__}.forward reads "
                             f"{', '.join(str(a) for a in inputs) or 'no earlier value'}: not "
                             "a straight chain (each step must read only the step before)",
                             hint="Import a chain of layers; write a skip connection as a "
                                  "spec's add layer")
        if node.op == "call_module":
            out.append((str(node.target), module.get_submodule(node.target)))
        elif step is not None:
            if step == "last":
                out.append((node.name, LAST_STEP))
        else:
            name = node.target if isinstance(node.target, str) else node.target.__name__
            if name not in _FUNCTIONS:
                raise InputError(f"{node.name} in {type(module).__name__}.forward calls "
                                 f"{name}, which symprop does not map",
                                 hint=f"Use modules or one of {', '.join(_FUNCTIONS)}")
            kwargs = dict(node.kwargs)
            extra = node.args[1:]
            if name == "softmax":
                kwargs = {"dim": kwargs.get("dim", extra[0] if extra else None)}
            elif extra or kwargs:
                raise InputError(f"{node.name} in {type(module).__name__}.forward calls {name} "
                                 "with options", hint=f"Use the module nn.{_FUNCTIONS[name]}")
            out.append((node.name, getattr(torch.nn, _FUNCTIONS[name])(**kwargs)))
        previous = node
    return out


def require_torch():
    """torch, or an InputError saying how to install it (exit 2, not a traceback)."""
    try:
        import torch
    except ImportError:
        raise InputError("symprop import needs PyTorch, which is not installed",
                         hint="Install it first: pip install torch==2.13.0, then pip install "
                              "'symprop[verify]'") from None
    return torch


def from_torch(module, input_shape, loss, name: str = "imported"
               ) -> tuple[Spec, dict[str, np.ndarray]]:
    """A torch model as a spec and its parameters under the generated module's keys."""
    require_torch()
    width = _input_shape(input_shape)
    loss_module = _loss_object(loss)
    symprop_loss, added = LOSSES[type(loss_module).__name__](loss_module)
    tables, params = [], {}
    chain = _chain(module)
    for n, (path, child) in enumerate(chain):
        if child is LAST_STEP:  # out[:, -1]: the rnn before it gives its last step only
            tables[-1] = {**tables[-1], "sequence": False}
            continue
        kind_name = type(child).__name__
        flat = not isinstance(width, tuple) or any(t["kind"] == "flatten" for t in tables)
        if kind_name in _PASS_THROUGH and (flat or kind_name != "Flatten"):
            continue
        if kind_name not in TORCH_KINDS:
            raise InputError(f"{path} ({kind_name}) has no symprop layer kind",
                             hint=f"The modules symprop maps: {', '.join(sorted(TORCH_KINDS))}")
        table, own = TORCH_KINDS[kind_name].from_torch(child, path)
        last = n == len(chain) - 1
        if _folds(tables, table, last):
            tables[-1] = {**tables[-1], "activation": table["activation"]}
            continue
        tables.append(table)
        params |= {f"{key}{len(tables)}": value for key, value in own.items()}
    if not tables:
        raise InputError("the model has no layers symprop maps")
    if added is not None:  # torch's loss applies it to the model's output
        output = {"kind": "activation", "activation": added}
        if _folds(tables, output, True):
            tables[-1] = {**tables[-1], "activation": added}
        else:
            tables.append(output)
    sequence = {}
    if tables[0]["kind"] == "rnn":  # X (batch, T, n_0): the input's shape is T, n_0
        if not isinstance(width, tuple) or len(width) != 2:
            raise InputError(f"an nn.RNN reads (batch, T, n_0), but --input is {input_shape}",
                             hint="Give the steps and the width of one step: --input T,n_0")
        width, sequence = width[1], {"steps": width[0]}
    spec = Spec.from_dict({"name": name, "input": width, "loss": symprop_loss,
                           "reduction": loss_module.reduction, "layer": tables, **sequence},
                          source="the imported model")
    _hold_forward(module, spec, params, added)
    return spec, params


def _folds(tables: list[dict], table: dict, last: bool) -> bool:
    """An activation joins the layer before it when that layer has an activation of its own
    still the identity (dense, conv); a softmax only a dense one, at the output."""
    if table["kind"] != "activation" or not tables:
        return False
    before = tables[-1]
    if before["kind"] == "activation" or before.get("activation") != "identity":
        return False
    return table["activation"] != "softmax" or (last and before["kind"] == "dense")


def _input_shape(shape) -> int | tuple[int, ...]:
    """n for a flat input, (C, L) or (C, H, W) for a map (without the batch axis)."""
    dims = [shape] if isinstance(shape, int) else list(shape)
    if not 1 <= len(dims) <= 3 or not all(isinstance(d, int) and d >= 1 for d in dims):
        raise InputError(f"input shape {shape!r}: give the input's width n, or its channels "
                         "and positions C,L or C,H,W (without the batch)",
                         hint="e.g. --input 784 or --input 1,28,28")
    return dims[0] if len(dims) == 1 else tuple(dims)


def _hold_forward(module, spec: Spec, params: dict, added: str | None) -> None:
    """The generated module's forward at the imported weights equals the model's output
    (with the activation torch's loss adds) on a random batch, in float64."""
    import torch

    from .codegen import generate

    model = copy.deepcopy(module).double().eval()
    for part in model.modules():  # a batchnorm as symprop reads it: the batch's statistics
        if getattr(TORCH_KINDS.get(type(part).__name__), "TORCH_TRAINING", False):
            part.train()
    X = torch.randn(7, *spec.input_shape, dtype=torch.float64, generator=torch.Generator()
                    .manual_seed(0))
    with torch.no_grad():
        want = model(X)
        if added == "softmax":
            want = torch.softmax(want, dim=-1)
        elif added == "sigmoid":
            want = torch.sigmoid(want)
    if all("codegen" in c.SUPPORTS for c in spec.stack):
        got = generate(spec).load().forward(params, X.numpy())
    else:  # a kind with no module yet: each layer's own reference forward pass
        from .reference import forward

        got = forward("torch", spec, params, X.numpy())
    want = want.numpy()
    if got.shape != want.shape or not np.allclose(got, want, rtol=FORWARD_RTOL, atol=1e-12):
        raise SelfCheckFailed("the imported spec's forward pass differs from the model's on a "
                              "random batch; nothing was written")


def toml_text(data: dict) -> str:
    """A spec's data (:meth:`Spec.to_dict`) as TOML: top-level keys, then [[layer]] tables."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in data.items()
             if key != "layer" and value not in ({}, None)]
    for table in data.get("layer", []):
        lines += ["", "[[layer]]", *(f"{k} = {_toml_value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def import_model(reference: str, input_shape, loss: str, output: str | Path,
                 weights: str | Path | None = None) -> tuple[Path, Path | None]:
    """``symprop import FILE.py:NAME``: the model (a module, or a function of no arguments
    returning one) as a spec file, and its weights as an .npz under the module's keys."""
    from .check.function import load_function
    from .io import write_atomic

    torch = require_torch()

    made = load_function(reference, flag="import", example="model.py:make")
    model = made if isinstance(made, torch.nn.Module) else made()
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"{reference} is not an nn.Module nor returns one "
                         f"(it returned {type(model).__name__})")
    spec, params = from_torch(model, input_shape, loss, name=Path(output).stem)
    spec_path = write_atomic(output, toml_text(spec.to_dict()))
    if weights is None:
        return spec_path, None
    buffer = io.BytesIO()
    np.savez(buffer, **params)
    return spec_path, write_atomic(weights, buffer.getvalue())
