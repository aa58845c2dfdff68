"""One training step of the digits rnn (examples/digits_rnn.toml: T = 8 steps of 8 pixels, an
rnn of 64 tanh nodes, a dense softmax of 10, cross-entropy): the NumPy target against a
hand-written NumPy BPTT and against PyTorch eager (nn.RNN + nn.Linear, autograd), and the
torch target against PyTorch eager.

Each contender runs in its own process per configuration (design.md section 8), rounds
alternated; figures are medians, ratios medians of same-round ratios. Before any figure
counts, every contender's loss and gradient sums must match eager autograd's.

    python benchmarks/rnn_step.py [--rounds 5] [--repeat 20] [--only float32/64]

Aimed at: torch target <= 1.10x PyTorch eager.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

SPEC = Path(__file__).resolve().parent.parent / "examples" / "digits_rnn.toml"
CONTENDERS = ("numpy_target", "numpy_hand", "torch_target", "eager")
SECONDS = 0.5
T, N_IN, N, OUT = 8, 8, 64, 10


def data(batch: int, dtype):
    """The same parameters, X (batch, T, 8) and one-hot Y in every worker (NumPy arrays)."""
    rng = np.random.default_rng(0)
    bound = 1 / np.sqrt(N)
    params = {"W1": rng.uniform(-bound, bound, (N, N_IN)), "U1": rng.uniform(-bound, bound, (N, N)),
              "b1": rng.uniform(-bound, bound, N), "W2": rng.uniform(-0.3, 0.3, (OUT, N)),
              "b2": np.zeros(OUT)}
    X = rng.uniform(0, 1, (batch, T, N_IN))
    Y = np.eye(OUT)[rng.integers(0, OUT, batch)]
    return ({k: v.astype(dtype) for k, v in params.items()}, X.astype(dtype), Y.astype(dtype))


def hand_written(params, X, Y):
    """BPTT as an expert writes it in NumPy: one loop forward, one back over the steps."""
    W, U, b, V, c = (params[k] for k in ("W1", "U1", "b1", "W2", "b2"))
    batch = len(X)
    H = np.zeros((batch, T + 1, N), X.dtype)
    XW = X @ W.T + b
    for t in range(T):
        H[:, t + 1] = np.tanh(XW[:, t] + H[:, t] @ U.T)
    Z = H[:, T] @ V.T + c
    Z -= Z.max(axis=1, keepdims=True)
    logp = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
    loss = -(Y * logp).sum() / batch
    D = (np.exp(logp) - Y) / batch
    grads = {"W2": D.T @ H[:, T], "b2": D.sum(0)}
    dh = D @ V
    Delta = np.empty((batch, T, N), X.dtype)
    for t in range(T - 1, -1, -1):
        Delta[:, t] = dh * (1 - H[:, t + 1] ** 2)
        dh = Delta[:, t] @ U
    grads["W1"] = np.einsum("itj,itk->jk", Delta, X, optimize=True)
    grads["U1"] = np.einsum("itj,itk->jk", Delta, H[:, :T], optimize=True)
    grads["b1"] = Delta.sum(axis=(0, 1))
    return loss, grads


def make_step(name: str, folder: str, params, X, Y):
    if name == "numpy_target":
        module = harness.load_module(f"{folder}/rnn_numpy.py")
        return lambda: module.loss_and_gradients(params, X, Y)
    if name == "numpy_hand":
        return lambda: hand_written(params, X, Y)
    import torch

    p = {k: torch.from_numpy(v) for k, v in params.items()}
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    if name == "torch_target":
        module = harness.load_module(f"{folder}/rnn_torch.py")
        return lambda: module.loss_and_gradients(p, Xt, Yt)
    rnn = torch.nn.RNN(N_IN, N, batch_first=True).to(Xt.dtype)
    fc = torch.nn.Linear(N, OUT).to(Xt.dtype)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(p["W1"])
        rnn.weight_hh_l0.copy_(p["U1"])
        rnn.bias_ih_l0.copy_(p["b1"])
        rnn.bias_hh_l0.zero_()
        fc.weight.copy_(p["W2"])
        fc.bias.copy_(p["b2"])
    named = {"W1": rnn.weight_ih_l0, "U1": rnn.weight_hh_l0, "b1": rnn.bias_ih_l0,
             "W2": fc.weight, "b2": fc.bias}

    def eager():
        for v in [*rnn.parameters(), *fc.parameters()]:
            v.grad = None
        logits = fc(rnn(Xt)[0][:, -1])
        loss = -(Yt * torch.log_softmax(logits, dim=1)).sum() / len(Xt)
        loss.backward()
        return float(loss.detach()), {k: v.grad for k, v in named.items()}
    return eager


def step_worker(name: str, folder: str, key: str, repeat: int, seconds: float) -> None:
    dtype, batch = key.split("/")
    params, X, Y = data(int(batch), np.dtype(dtype))
    step = make_step(name, folder, params, X, Y)
    loss, grads = step()
    check = [float(loss)] + [float(np.abs(np.asarray(grads[k])).sum()) for k in sorted(grads)]
    harness.report({"times": {key: harness.time_calls(step, repeat, seconds=seconds)},
                    "checks": {key: check}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--only", help="these configurations only, e.g. float32/64")
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return step_worker(args.worker, args.folder, args.config, args.repeat, args.seconds)
    import torch

    from symprop import Spec
    from symprop.codegen import generate

    folder = tempfile.mkdtemp(prefix="symprop-bench-")
    spec = Spec.from_toml(SPEC)
    generate(spec).write(f"{folder}/rnn_numpy.py")
    generate(spec, target="torch").write(f"{folder}/rnn_torch.py")
    configs = args.only.split(",") if args.only else [
        f"{d}/{b}" for d in ("float32", "float64") for b in (64, 256)]
    commands = {f"{name} {key}": harness.worker_command(
        __file__, name, "--folder", folder, "--config", key, "--repeat", str(args.repeat),
        "--seconds", str(args.seconds)) for name in CONTENDERS for key in configs}
    print(f"{harness.machine()}; torch {torch.__version__}, numpy {np.__version__}, "
          f"{torch.get_num_threads()} torch threads")
    print(f"one training step of {SPEC.name}, one process per contender and configuration, "
          f"{args.rounds} rounds; milliseconds\n")
    per_round = harness.alternate(commands, args.rounds)
    for key in configs:
        for name in CONTENDERS:
            if not harness.agree(per_round[f"{name} {key}"][0]["checks"][key],
                                 per_round[f"eager {key}"][0]["checks"][key],
                                 key.split("/")[0]):
                sys.exit(f"{name} disagrees with eager autograd at {key}")
    print(f"{'dtype':>8} {'batch':>6} " + " ".join(f"{n:>13}" for n in CONTENDERS))
    rows = []
    for key in configs:
        dtype, batch = key.split("/")
        t = {n: harness.median(per_round, f"{n} {key}", key) for n in CONTENDERS}
        print(f"{dtype:>8} {batch:>6} " + " ".join(f"{t[n] * 1e3:>13.3f}" for n in CONTENDERS))
        r = {(a, b): harness.ratio(per_round, f"{a} {key}", f"{b} {key}", key)
             for a, b in (("numpy_target", "numpy_hand"), ("numpy_target", "eager"),
                          ("torch_target", "eager"))}
        verdict = "MET" if r[("torch_target", "eager")] <= 1.10 else "MISSED"
        rows.append(f"{dtype:>8} {batch:>6} {r[('numpy_target', 'numpy_hand')]:>13.2f} "
                    f"{r[('numpy_target', 'eager')]:>13.2f} "
                    f"{r[('torch_target', 'eager')]:>13.2f} {verdict:>7}")
    print(f"\nratios (medians of same-round ratios)\n{'dtype':>8} {'batch':>6} "
          f"{'numpy/hand':>13} {'numpy/eager':>13} {'torch/eager':>13} {'<=1.10':>7}")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
