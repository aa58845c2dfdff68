"""``rnn``: h_{t,j}^(l) = g(z_{t,j}^(l)), z_{t,j}^(l) = sum_k w_jk^(l) x_{t,k} + sum_k u_jk^(l)
h_{t-1,k}^(l) (+ b_j^(l)), h_0 = 0, t = 1..T; X of shape (batch, T, n_0) with ``steps = T`` at
the top of the spec.  The layer outputs h_T, or with ``sequence = true`` every h_t (shape
(T, n)), which a following rnn layer reads.

Parameters W{l} (n, n_in) w_jk, U{l} (n, n) u_jk, b{l} (n,), uniform in +-1/sqrt(n) as
nn.RNN starts them.  The same W, U and b act at every step, so each gradient is a sum over t
(backpropagation through time).  The layer's array code (a loop over the steps: NumPy and
torch, JAX's lax.scan), its reference forward and its torch import (nn.RNN) are here; its
weights' derivations through time are :mod:`.rnn_steps` (proofs :mod:`.rnn_proofs`, batch form
:mod:`.rnn_matrix`, drawing :mod:`.rnn_drawing`).  The per-sample chain of the other layers
refuses a network with it (:attr:`SUPPORTS`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import InputError
from .base import (
    ActivationChoice,
    LayerConfig,
    ParamSpec,
    ParseContext,
    parse_activation,
    torch_array,
)
from .mistakes import BackwardMistake, activation_mistakes
from .symbolic import ArrayOnlyLayer, GraphContext, activation_function

__all__ = ["RnnConfig", "RnnLayer"]

TANH = ActivationChoice("tanh")


@dataclass(frozen=True)
class RnnConfig(LayerConfig):
    kind = "rnn"
    KEYS: ClassVar[dict] = {"width": None, "activation": "tanh", "bias": False,
                            "sequence": False}
    READS_FLAT: ClassVar[bool] = False
    #: It reads a sequence (batch, T, n), one vector per time step.
    READS_SEQUENCE: ClassVar[bool] = True
    TORCH_MODULES: ClassVar[tuple[str, ...]] = ("RNN",)
    SUPPORTS: ClassVar[frozenset[str]] = frozenset({"codegen", "check_function", "import"})

    activation: ActivationChoice = TANH
    bias: bool = False
    sequence: bool = False
    steps: int = 1
    n_in: int = 1
    #: n, the nodes of one step (``width`` counts the layer's nodes: T n with sequence).
    units: int = 1

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.steps, self.units) if self.sequence else (self.units,)

    @property
    def is_sequence(self) -> bool:
        return self.sequence

    @classmethod
    def from_torch(cls, module, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """nn.RNN with batch_first, one layer, one direction: W = weight_ih_l0, U =
        weight_hh_l0, b = b_ih + b_hh (one bias: their sum is all the layer sees)."""
        problems = [f"{key}={getattr(module, key)}" for key, want in
                    (("batch_first", True), ("num_layers", 1), ("bidirectional", False))
                    if getattr(module, key) != want]
        if problems:
            raise InputError(f"{where} (RNN): {', '.join(problems)}",
                             hint="Use nn.RNN(n_in, n, batch_first=True), one layer per spec "
                                  "layer, one direction")
        params = {"W": torch_array(module.weight_ih_l0), "U": torch_array(module.weight_hh_l0)}
        if module.bias:
            params["b"] = torch_array(module.bias_ih_l0) + torch_array(module.bias_hh_l0)
        return ({"kind": cls.kind, "width": module.hidden_size,
                 "activation": module.nonlinearity, "bias": bool(module.bias),
                 "sequence": True}, params)

    @classmethod
    def parse(cls, table: Mapping[str, Any], ctx: ParseContext) -> RnnConfig:
        table = cls.check_keys(table, ctx)
        activation = parse_activation(table["activation"], ctx.activations,
                                      ctx.where("activation"))
        if activation.name == "softmax":
            raise ctx.error("an rnn's activation acts node by node; softmax does not",
                            "activation", hint="Use tanh (the default) or relu")
        steps, n_in = ctx.below_shape
        units, sequence = ctx.width(table), ctx.boolean(table, "sequence")
        return cls(ctx.index, units * steps if sequence else units, activation,
                   ctx.boolean(table, "bias"), sequence, steps, n_in, units)

    def parameters(self, widths: tuple[int, ...]) -> tuple[ParamSpec, ...]:
        n = self.units
        out = (ParamSpec("W", "w", "jk", (n, self.n_in), "fan_in", fan_in=n),
               ParamSpec("U", "u", "jk", (n, n), "fan_in", fan_in=n))
        return out + ((ParamSpec("b", "b", "j", (n,), "fan_in", fan_in=n),) if self.bias else ())

    def to_table(self) -> dict[str, Any]:
        return {"kind": self.kind, "width": self.units, "activation": str(self.activation),
                "bias": self.bias, "sequence": self.sequence}

    def letter_derivation(self, node, spec, autodiff, spell=str):
        """u_jk^(l), w_jk^(l) or b_j^(l) derived through time (:mod:`.rnn_steps`); None for
        any other node."""
        from .rnn_steps import rnn_derivation

        return rnn_derivation(self, node, spec, autodiff, spell)

    #: Why the report derives this layer in letters (after "Layer l ").
    LETTER_REASON: ClassVar[str] = (
        "runs the same weights at every time step: each weight's gradient is a sum over the "
        "steps, and each step's delta comes from the next step's through U "
        "(backpropagation through time). Every name carries its step $t$.")

    def unrolled_view(self) -> dict:
        """The layer unrolled over its steps, for the report (:mod:`.rnn_drawing`)."""
        from .rnn_drawing import unrolled_view

        return unrolled_view(self)

    def letter_targets(self) -> list:
        """The weights a report derives through time: u_01 (u_00 with one node), w_00, b_0."""
        from ..notation import Node

        return [Node("u", self.index, 0, min(1, self.units - 1)), Node("w", self.index, 0, 0),
                *([Node("b", self.index, 0)] if self.bias else [])]

    def letter_matrix_form(self, spec, autodiff, spell=str):
        """The batch form of the backward through time (:mod:`.rnn_matrix`)."""
        from .rnn_matrix import rnn_matrix_form

        return rnn_matrix_form(self, spec, autodiff, spell)

    def letter_names(self, spec) -> str:
        """What :meth:`letter_derivation` derives, for a message."""
        l = self.index
        return f"u_jk^({l}), w_jk^({l})" + (f" and b_j^({l})" if self.bias else "")

    def describe(self) -> str:
        return (f"rnn, {self.activation}" + (", bias" if self.bias else "")
                + (", sequence" if self.sequence else ""))

    def notation(self) -> list[tuple[str, str]]:
        return [(r"h_{t,j}^{(l)}", "node $j$ of an rnn layer at time step $t$"),
                (r"u_{jk}^{(l)}", ("the recurrent weight from node $k$ at step $t-1$ to "
                                   "node $j$ at step $t$, the same at every step"))]

    def backward_mistakes(self) -> tuple:
        rows = list(activation_mistakes(self.activation.name, "delta", "z"))
        if self.activation.name not in _NUMPY:
            return tuple(rows)
        bptt = functools.partial(_bptt, self.activation.name, self.bias)
        rows.append(BackwardMistake(
            "the gradient through time is missing: dC/dh_t lacks U^T delta_(t+1), the part "
            "that reaches h_t through step t+1 (each step is backpropagated alone)",
            lambda pt: bptt(pt, carry=False)))
        if self.sequence:
            rows.insert(0, BackwardMistake(
                "dC/dh_t is assigned, not added: the part from step t+1 (U^T delta_(t+1)) "
                "overwrites the output's dOut_t; dh = dOut_t + U^T delta_(t+1)",
                lambda pt: bptt(pt, add=False)))
        return tuple(rows)

    def composed_size(self, sizes: Mapping[int, int], spec) -> int:
        return self.steps * (self.n_in + self.units + 2) * sizes[self.index - 1]

    def reference(self, ops, params: dict, outputs: dict):
        """The recursion written out with the array library, step by step."""
        a = outputs[self.index - 1]
        x = a.reshape((a.shape[0], self.steps, self.n_in))
        g = ops.activation(self.activation, self.index)
        W, U = params["W"], params["U"]
        h = (x[:, 0] @ W.T) * 0  # zeros of the right dtype and library
        states = []
        for t in range(self.steps):
            z = x[:, t] @ W.T + h @ U.T
            h = g(z + params["b"] if self.bias else z)
            states.append(h)
        out = ops.xp.stack(states, 1) if self.sequence else h
        return out.reshape((out.shape[0], -1))

    def build(self, ctx: GraphContext) -> RnnLayer:
        return RnnLayer(self, ctx)


class RnnLayer(ArrayOnlyLayer):
    """The layer's nodes and its array code; no chain-rule views yet."""

    kind = "rnn"

    def __init__(self, config: RnnConfig, ctx: GraphContext):
        super().__init__(config, ctx)
        choice = config.activation
        self.activation = activation_function(choice.name, choice.params, self.index,
                                              dict(ctx.spec.activations))

    def array_code(self, code) -> dict:
        """Every step's z and h from one helper call (a loop over the steps, lax.scan in
        JAX), time-major; every delta_t from another (backpropagation through time), g and
        g' passed in as functions; then the weights' gradients, sums over t and the batch."""
        c, l = self.config, self.index
        W, U = code.param("W"), code.param("U")
        b = code.param("b") if c.bias else "None"
        forward, prime, _ = code.activation(self.activation, "Z", "A")
        run = code.call("_rnn_forward", f"A{l - 1}", W, U, b, f"lambda Z: {forward or 'Z'}")
        lines = [f"Z{l}, H{l} = {run}  # (T, batch, n): z_t = W x_t + U h_(t-1) + b, h_t = g(z_t)",
                 f"A{l} = H{l}.swapaxes(0, 1)" if c.sequence
                 else f"A{l} = H{l}[-1]  # the last step's h_T"]
        deltas = code.call("_rnn_deltas", f"dA{l}", U, f"Z{l}", f"H{l}",
                           f"lambda Z, A: {prime or '1.0'}")
        delta = f"Delta{l}"
        back = [f"{delta} = {deltas}  # delta_t = dC/dz_t, (T, batch, n)",
                (f"dW{l} = {code.einsum('tij,itk->jk', delta, f'A{l - 1}')}"
                "  # sum over t of delta_t^T x_t"),
                (f"dU{l} = {code.einsum('tij,tik->jk', f'{delta}[1:]', f'H{l}[:-1]')}"
                "  # of delta_t^T h_(t-1), h_0 = 0")]
        if c.bias:
            back.append(f"db{l} = {code.forms.batch_total.format(x=delta, axis=(0, 1))}")
        return {"forward": lines, "backward": back,
                "passes": {l - 1: code.einsum("tij,jk->itk", delta, W)},
                "saved": [f"Z{l}", f"H{l}"],
                "reads": sorted({f"A{l - 1}", W, U, f"Z{l}", f"H{l}"})}


#: g and g' (through z and h = g(z)) in NumPy, for the mistakes of a hand-written BPTT.
_NUMPY = {"tanh": (np.tanh, lambda z, h: 1 - h ** 2),
          "relu": (lambda z: np.maximum(z, 0), lambda z, h: (z > 0) * 1.0),
          "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z, h: h * (1 - h)),
          "identity": (lambda z: z, lambda z, h: np.ones_like(z))}


def _bptt(activation: str, bias: bool, point, *, carry: bool = True,
          add: bool = True) -> dict:
    """Backpropagation through time as course notes write it, a loop over the steps, with
    the part from step t+1 left out (``carry``) or assigning over dOut_t (``add``)."""
    g, prime = _NUMPY[activation]
    W, U = point.params["W"], point.params["U"]
    A, dOut = point.A, point.dOut
    steps = A.shape[1]
    Z = np.zeros((len(A), steps, len(W)))
    H = np.zeros((len(A), steps + 1, len(W)))  # H[:, 0] = h_0 = 0
    for t in range(steps):
        Z[:, t] = A[:, t] @ W.T + H[:, t] @ U.T + (point.params["b"] if bias else 0)
        H[:, t + 1] = g(Z[:, t])
    out = {"A": np.zeros_like(A), "W": np.zeros_like(W), "U": np.zeros_like(U),
           "b": np.zeros(len(W))}
    through = np.zeros((len(A), len(W)))
    for t in reversed(range(steps)):
        given = dOut[:, t] if dOut.ndim == 3 else (dOut if t == steps - 1 else 0)
        dh = (given + through if add or t == steps - 1 else through) if carry else given
        delta = dh * prime(Z[:, t], H[:, t + 1])
        out["W"] += delta.T @ A[:, t]
        out["U"] += delta.T @ H[:, t]
        out["b"] += delta.sum(0)
        out["A"][:, t] = delta @ W
        through = delta @ U
    return out if bias else {k: v for k, v in out.items() if k != "b"}
