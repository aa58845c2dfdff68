"""One training step of a LeNet-style network (issue 24), each contender timed in its own
process (design.md section 8, ``harness.py``).

Network (1x28x28 in): conv2d 6 channels, kernel 5, padding 2, relu, bias; maxpool2d 2;
conv2d 16 channels, kernel 5, relu, bias; maxpool2d 2; flatten (400); dense 10 softmax with
cross-entropy.

symprop        the generated NumPy module's ``loss_and_gradients`` (windows as views, einsum
               contractions, a loop over kernel offsets for the input's gradient)
im2col         what an expert writes by hand in NumPy: im2col (the windows copied into a
               matrix), one matmul per convolution and per gradient, col2im by a loop over
               kernel offsets, 2x2 max pooling by a reshape and a mask
torch_target   the generated torch module (an autograd.Function per layer, no autograd inside)
torch          PyTorch eager: F.conv2d, F.max_pool2d, F.linear and autograd

Batches 64 and 256, float32 and float64.  Targets: symprop / im2col <= 1.10; torch_target /
torch, aim <= 1.10.  Every figure is the median over --rounds rounds (the processes
alternated, order rotated) of the median of --repeat calls; each ratio is the median over
rounds of two figures of the same round.  Before any figure counts, each contender's loss
and gradient sums must match the hand-written step's.

    python benchmarks/lenet_step.py [--rounds 5] [--repeat 20] [--configs float64/64,...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import harness
import numpy as np

SPEC = {"name": "lenet28", "input": [1, 28, 28], "loss": "cross_entropy", "layer": [
    {"kind": "conv2d", "channels": 6, "kernel": 5, "padding": 2, "activation": "relu",
     "bias": True},
    {"kind": "maxpool2d", "kernel": 2},
    {"kind": "conv2d", "channels": 16, "kernel": 5, "activation": "relu", "bias": True},
    {"kind": "maxpool2d", "kernel": 2},
    {"kind": "flatten"},
    {"kind": "dense", "width": 10, "activation": "softmax", "bias": True}]}
SHAPES = {"W1": (6, 1, 5, 5), "b1": (6,), "W3": (16, 6, 5, 5), "b3": (16,), "W6": (10, 400),
          "b6": (10,)}
CONTENDERS = ("symprop", "im2col", "torch_target", "torch")
CONFIGS = ("float32/64", "float32/256", "float64/64", "float64/256")


def data(batch: int, dtype):
    """The same parameters, X and one-hot Y in every worker process (NumPy only)."""
    rng = np.random.default_rng(0)
    params = {}
    for key, shape in SHAPES.items():
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        params[key] = (rng.uniform(-1, 1, size=shape) / np.sqrt(fan_in) if len(shape) > 1
                       else 0.01 * rng.normal(size=shape))
    params = {k: v.astype(dtype) for k, v in params.items()}
    X = rng.normal(size=(batch, 1, 28, 28)).astype(dtype)
    Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, batch)]
    return params, X, Y


# --------------------------------------------------------------- by hand
def _conv(X, W, b, pad):
    """im2col: the windows copied into a (n P Q, C k k) matrix, one matmul."""
    n, C = X.shape[:2]
    O, k = W.shape[0], W.shape[2]
    Xp = np.pad(X, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else X
    windows = np.lib.stride_tricks.sliding_window_view(Xp, (k, k), axis=(2, 3))
    P, Q = windows.shape[2:4]
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * P * Q, C * k * k)
    Z = cols @ W.reshape(O, -1).T
    Z += b
    return Z.reshape(n, P, Q, O).transpose(0, 3, 1, 2), cols


def _conv_backward(D, cols, W, shape, pad):
    """dW = D^T cols, db = sums, and col2im of D W by a loop over kernel offsets."""
    n, O, P, Q = D.shape
    C, k = W.shape[1], W.shape[2]
    Dm = D.transpose(0, 2, 3, 1).reshape(n * P * Q, O)
    dW = (Dm.T @ cols).reshape(W.shape)
    db = Dm.sum(axis=0)
    if shape is None:
        return None, dW, db
    dcols = (Dm @ W.reshape(O, -1)).reshape(n, P, Q, C, k, k)
    H, Wd = shape
    dXp = np.zeros((n, C, H + 2 * pad, Wd + 2 * pad), D.dtype)
    for u in range(k):
        for v in range(k):
            dXp[:, :, u:u + P, v:v + Q] += dcols[:, :, :, :, u, v].transpose(0, 3, 1, 2)
    return dXp[:, :, pad:pad + H, pad:pad + Wd] if pad else dXp, dW, db


def _pool(A):
    n, C, H, W = A.shape
    blocks = A.reshape(n, C, H // 2, 2, W // 2, 2)
    M = blocks.max(axis=(3, 5))
    mask = blocks == M[:, :, :, None, :, None]
    return M, mask


def _pool_backward(G, mask):
    n, C, H, W = mask.shape[0], mask.shape[1], mask.shape[2] * 2, mask.shape[4] * 2
    return (mask * G[:, :, :, None, :, None]).reshape(n, C, H, W)


def hand_written(p, X, Y):
    n = X.shape[0]
    Z1, cols1 = _conv(X, p["W1"], p["b1"], 2)
    A1 = np.maximum(Z1, 0)
    A2, mask2 = _pool(np.ascontiguousarray(A1))
    Z3, cols3 = _conv(A2, p["W3"], p["b3"], 0)
    A3 = np.maximum(Z3, 0)
    A4, mask4 = _pool(np.ascontiguousarray(A3))
    A5 = A4.reshape(n, -1)
    Z6 = A5 @ p["W6"].T
    Z6 += p["b6"]
    S = Z6 - Z6.max(axis=1, keepdims=True)
    E = np.exp(S)
    total = E.sum(axis=1, keepdims=True)
    loss = float(-(Y * (S - np.log(total))).sum()) / n
    D6 = (E / total - Y) / n
    dA5 = D6 @ p["W6"]
    dA3 = _pool_backward(dA5.reshape(A4.shape), mask4)
    D3 = dA3 * (Z3 > 0)
    dA2, dW3, db3 = _conv_backward(D3, cols3, p["W3"], A2.shape[2:], 0)
    D1 = _pool_backward(dA2, mask2) * (Z1 > 0)
    _, dW1, db1 = _conv_backward(D1, cols1, p["W1"], None, 2)
    return loss, {"W1": dW1, "b1": db1, "W3": dW3, "b3": db3, "W6": D6.T @ A5,
                  "b6": D6.sum(axis=0)}


def torch_step(params, X, Y):
    import torch
    from torch.nn import functional as F

    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)

    def step():
        for v in p.values():
            v.grad = None
        a = F.max_pool2d(torch.relu(F.conv2d(Xt, p["W1"], p["b1"], padding=2)), 2)
        a = F.max_pool2d(torch.relu(F.conv2d(a, p["W3"], p["b3"])), 2)
        z = F.linear(a.flatten(1), p["W6"], p["b6"])
        loss = -(Yt * torch.log_softmax(z, dim=1)).sum() / len(Xt)
        loss.backward()
        return float(loss.detach()), {k: v.grad for k, v in p.items()}
    return step


def make_step(name: str, module: str, params, X, Y):
    if name == "symprop":
        generated = harness.load_module(module)
        return lambda: generated.loss_and_gradients(params, X, Y)
    if name == "im2col":
        return lambda: hand_written(params, X, Y)
    if name == "torch_target":
        import torch

        generated = harness.load_module(module.replace(".py", "_torch.py"))
        p = {k: torch.from_numpy(v) for k, v in params.items()}
        Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
        return lambda: generated.loss_and_gradients(p, Xt, Yt)
    return torch_step(params, X, Y)


def step_worker(name: str, module: str, key: str, repeat: int) -> None:
    dtype, batch = key.split("/")
    params, X, Y = data(int(batch), np.dtype(dtype))
    step = make_step(name, module, params, X, Y)
    loss, grads = step()
    checks = [float(loss)] + [float(np.abs(np.asarray(grads[k])).sum()) for k in sorted(grads)]
    harness.report({"times": {key: harness.time_calls(step, repeat)}, "checks": {key: checks}})


def run(rounds: int, repeat: int, configs: list[str]) -> list[bool]:
    from symprop import Spec
    from symprop.codegen import generate

    module = Path(tempfile.mkdtemp(prefix="symprop-bench-")) / "lenet.py"
    spec = Spec.from_dict(SPEC)
    generate(spec).write(module)
    generate(spec, target="torch").write(str(module).replace(".py", "_torch.py"))
    commands = {f"{name} {key}": harness.worker_command(
        __file__, "step", "--name", name, "--module", str(module), "--key", key,
        "--repeat", str(repeat)) for name in CONTENDERS for key in configs}
    print(f"one LeNet-style training step (1x28x28, {spec.n_parameters} parameters), one "
          f"process per contender and configuration, median of {repeat} calls; "
          f"milliseconds; {harness.machine()}")
    per_round = harness.alternate(commands, rounds)
    for label, answers in per_round.items():
        name, key = label.split()
        if not harness.agree(answers[0]["checks"][key],
                             per_round[f"im2col {key}"][0]["checks"][key], key.split("/")[0]):
            sys.exit(f"{name} disagrees with the hand-written step at {key}")
    print(f"\n{'dtype':>8} {'batch':>6} " + " ".join(f"{n:>12}" for n in CONTENDERS)
          + "   symprop/im2col  torch_target/torch")
    verdicts = []
    for key in configs:
        dtype, batch = key.split("/")
        t = {n: harness.median(per_round, f"{n} {key}", key) for n in CONTENDERS}
        numpy_ratio = harness.ratio(per_round, f"symprop {key}", f"im2col {key}", key)
        torch_ratio = harness.ratio(per_round, f"torch_target {key}", f"torch {key}", key)
        verdicts.append(numpy_ratio <= 1.10)
        print(f"{dtype:>8} {batch:>6} " + " ".join(f"{t[n] * 1e3:>12.2f}" for n in CONTENDERS)
              + f"   {numpy_ratio:>6.2f} ({'MET' if numpy_ratio <= 1.10 else 'MISSED'})"
              + f"  {torch_ratio:>10.2f} ({'MET' if torch_ratio <= 1.10 else 'MISSED'})")
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--worker", choices=("step",), help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--module", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        step_worker(args.name, args.module, args.key, args.repeat)
        return
    run(args.rounds, args.repeat, args.configs.split(","))


if __name__ == "__main__":
    main()
