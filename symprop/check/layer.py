"""``symprop check SPEC --function FILE.py:NAME --layer l``: one layer's hand-written backward.

``NAME(params, A, dOut)`` gets layer l's parameters under their keys without the layer number
(``{"W": ..., "b": ...}``), the layer's input A and the upstream gradient dOut = dC/da^(l),
both batch-first in the layer's shape, and returns ``{"A": dC/dA, "W": ..., ...}``.

The truth is the generated NumPy module of a network of layer l alone whose loss is
C = sum of a^(l) * dOut (so dC/da^(l) = dOut exactly), with the input's gradient returned too;
it is proven at a random point by central differences of its own forward pass before the
user's function is judged.  For a wrong entry the kind's usual mistakes
(:meth:`LayerConfig.backward_mistakes`) are each made in the truth and kept when the user's
array equals the result: that is the hint.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..errors import InputError
from ..layers.base import relative_layer
from ..self_check import SelfCheckFailed
from ..spec import Spec
from .arrays import INPUT, WEIGHT, Batch, as_numbers, close, compare
from .function import FunctionCheck, batch_size, call_user, load_function

__all__ = ["LayerCheck", "LayerPoint", "check_layer", "layer_number"]


def layer_number(spec: Spec, text: str | int) -> int:
    """``3``, ``"3"``, ``"L"``, ``"L-1"`` -> the layer's number 1..L (exit 2 otherwise)."""
    text = str(text)
    number = int(text) if re.fullmatch(r"\s*[0-9]+\s*", text) else relative_layer(text, spec.L)
    if number is None or not 1 <= number <= spec.L:
        raise InputError(f"--layer {text}: the network has layers 1..{spec.L}",
                         where=spec.source,
                         hint=f"Give a layer's number 1..{spec.L}, or L, L-1, ...; layer 0 is "
                              "the input, which has no backward")
    return number


class _Truth:
    """The generated module of layer ``l`` alone (a flatten after a map), its loss linear in
    the output: ``truth(params, A, dOut)`` -> {"A": dC/dA, key: dC/dparam}.  ``changes``
    re-makes the layer with some keys of its table changed (a mistake made in the truth)."""

    def __init__(self, spec: Spec, l: int, changes: dict | None = None,
                 shape: tuple[int, ...] | None = None):
        from ..codegen import generate

        config = spec.layer(l)
        shape = shape or spec.shapes[l - 1]
        table = config.to_table() | (changes or {})
        sequence = getattr(config, "READS_SEQUENCE", False)  # (T, n): steps = T, input = n
        self.network = Spec(name=f"{spec.name}_layer{l}", loss="a*y", reduction="sum",
                            activations=spec.activations, source=spec.source,
                            input=shape[-1] if sequence else shape if len(shape) > 1
                            else shape[0], steps=shape[0] if sequence else None,
                            stack=[table] + ([{"kind": "flatten"}] if len(config.shape) > 1
                                             else []))
        self.module = generate(self.network, "vectorized", with_input=True).load()
        self.keys = [p.key for p in self.network.layer(1).parameters(self.network.layers)]

    def __call__(self, params: dict, A: np.ndarray, dOut: np.ndarray) -> dict:
        got = self.module.gradients({f"{k}1": params[k] for k in self.keys}, A,
                                    dOut.reshape(len(dOut), -1))
        return {"A": got["X"], **{k: got[f"{k}1"] for k in self.keys}}

    def output(self, params: dict, A: np.ndarray) -> np.ndarray:
        return self.module.forward({f"{k}1": params[k] for k in self.keys}, A)

    def prove(self, params: dict, shape: tuple[int, ...], seed: int, tries: int = 4) -> None:
        """Central differences of the module's own loss along a random direction of the
        parameters and A, at a random point, against the gradients' inner product with it
        (exit 3 if not).  A max pool's or a relu's kink between the two sides of a
        difference is possible: the next random point is taken, ``tries`` in all."""
        for attempt in range(tries):
            exact, estimate = self._directional(params, shape, np.random.default_rng(
                [seed, attempt]))
            if abs(estimate - exact) <= 1e-6 * max(1.0, abs(exact)):
                return
        raise SelfCheckFailed(f"the true backward of {self.network.name} disagrees with "
                              f"differences of its forward pass ({exact!r} against "
                              f"{estimate!r}); this is a bug in symprop")

    def _directional(self, params: dict, shape: tuple[int, ...], rng) -> tuple[float, float]:
        A, dOut = rng.normal(size=shape), rng.normal(size=(shape[0], self.network.layers[-1]))
        grads = self(params, A, dOut)
        step = {k: rng.normal(size=np.shape(v)) for k, v in grads.items()}

        def loss(t: float) -> float:
            moved = {f"{k}1": params[k] + t * step[k] for k in self.keys}
            return self.module.loss(moved, A + t * step["A"], dOut)

        h = 1e-6
        return (sum(float(np.sum(grads[k] * step[k])) for k in grads),
                (loss(h) - loss(-h)) / (2 * h))


@dataclass
class LayerPoint:
    """Where a layer's backward is checked, for the kind's mistakes: the layer, its
    parameters (keys without the layer number), A, dOut, the true gradients, and the
    truth re-run with a mistake made (``rerun({"padding": 0}, A=...)``)."""

    spec: Spec
    layer: int
    params: dict[str, np.ndarray]
    A: np.ndarray
    dOut: np.ndarray
    truth: dict[str, np.ndarray]
    output: np.ndarray
    _made: dict = field(default_factory=dict, repr=False)

    def rerun(self, changes: dict, A: np.ndarray | None = None,
              dOut: np.ndarray | None = None) -> dict[str, np.ndarray]:
        shape = (self.A if A is None else A).shape[1:]
        key = repr((sorted(changes.items()), shape))
        if key not in self._made:
            self._made[key] = _Truth(self.spec, self.layer, changes, shape)
        return self._made[key](self.params, self.A if A is None else A,
                               self.dOut if dOut is None else dOut)


@dataclass
class LayerCheck(FunctionCheck):
    """The verdict on one layer's hand-written backward: a :class:`FunctionCheck` of the
    layer's dict, and which layer."""

    template: ClassVar[str] = "layer"

    layer: int = 0

    @property
    def described(self) -> str:
        return self.spec.layer(self.layer).describe()


def _point(spec: Spec, l: int, truth: _Truth, batch: int, seed: int) -> LayerPoint:
    """A random point: parameters near their start, A on a grid of 0.1 (so a max pool's
    window can hold ties) shifted off 0 (no relu kink), dOut normal."""
    rng = np.random.default_rng(seed)
    params = {k: v + rng.normal(scale=0.3, size=v.shape) for k, v in
              truth.module.init_params(seed, np.float64).items()}
    params = {k[:-1]: v for k, v in params.items()}
    A = np.round(rng.normal(size=(batch, *spec.shapes[l - 1])), 1) + 0.05
    dOut = rng.normal(size=(batch, *spec.layer(l).shape))
    return LayerPoint(spec, l, params, A, dOut, truth(params, A, dOut),
                      truth.output(params, A).reshape(dOut.shape))


def check_layer(spec: Spec, function: Callable | str, layer: int | str, *, seed: int = 0
                ) -> LayerCheck:
    """Call ``function(params, A, dOut)`` for layer ``layer`` and compare its dict with the
    layer's true backward; each wrong entry says how it differs and, when one of the kind's
    usual mistakes gives exactly it, which."""
    spec.require("check_function", "symprop check --function --layer")
    start = time.perf_counter()
    l = layer_number(spec, layer)
    config = spec.layer(l)
    if len(config.inputs) > 1:
        raise InputError(f"layer {l} ({config.describe()}) reads two layers; --layer checks "
                         "a layer that reads one", where=spec.source,
                         hint="Check the whole network's gradient with --function alone")
    keys = [p.key for p in config.parameters(spec.layers)]
    if "A" in keys:
        raise InputError(f"layer {l} ({config.describe()}) has a parameter named A, the key "
                         "--layer gives the input's gradient", where=spec.source,
                         hint="Rename the parameter (its key in the layer's params)")
    label = function if isinstance(function, str) else getattr(function, "__name__", "function")
    if isinstance(function, str):
        function = load_function(function, example="mylayer.py:backward")
    truth = _Truth(spec, l)
    batch = batch_size(spec)
    point = _point(spec, l, truth, batch, seed)
    truth.prove(point.params, point.A.shape, seed)
    result = LayerCheck(label, spec, batch, layer=l)
    got, result.problem = call_user(function, {k: v.copy() for k, v in point.params.items()},
                                    point.A.copy(), point.dOut.copy(), keys=list(point.truth))
    if not result.problem:
        mistakes = config.backward_mistakes()
        for name, want in point.truth.items():
            verdict = compare(name, want, got.get(name), Batch(batch, None),
                              INPUT if name == "A" else WEIGHT)
            if not verdict.right and got.get(name) is not None:
                verdict.findings += _hints(mistakes, point, name, got[name])
            result.parameters.append(verdict)
        extra = sorted(set(map(str, got)) - set(point.truth))
        if extra:
            result.problem = (f"it returned keys layer {l} does not have: {', '.join(extra)} "
                              f"(its keys: {', '.join(point.truth)})")
    result.seconds = time.perf_counter() - start
    return result


def _hints(mistakes, point: LayerPoint, name: str, got) -> list[str]:
    """The words of the first usual mistake, in the kind's order, whose result equals the
    user's ``name`` array (two mistakes can give the same array: a same-padding conv's
    "valid" correlation is its padding removed twice; one hint is said)."""
    got, _ = as_numbers(got)
    for mistake in mistakes if got is not None else ():
        made = mistake.make(point).get(name)
        if made is not None and close(got, np.asarray(made)):
            return [f"the usual mistake: {mistake.words}"]
    return []
