"""A residual network (issue 15): deriving every gradient, and one generated training step,
each contender timed in its own process (design.md section 8, ``harness.py``).

Network: 784 inputs, dense 256 relu, layernorm, dense 256, add from layer 1 (a^(4) = a^(3) +
a^(1)), dense 10 softmax with cross-entropy; every dense layer with biases.  Its dense twin
drops the layernorm and the add: 784-256(relu)-256-10(softmax).

derive  Build the graph and derive the compact gradient of every parameter, cold, in a fresh
        process: the residual net and the dense twin with today's engine, and the dense twin
        with the dense-only engine from before layers of any kind (``--baseline``, a commit
        of this repository, read with ``git archive``).  Target: today's engine on the dense
        twin within 1.2x of the dense-only engine.
step    One call of the generated vectorized module's ``loss_and_gradients`` against a
        hand-written NumPy step and PyTorch eager autograd, batches 256 and 2048, float32 and
        float64.  Target: within 1.10x of hand-written NumPy.  Also the torch target's step
        (``codegen --target torch``: the layernorm and the residual sum as autograd
        Functions of their derivation) against the same eager autograd, reported.

Every figure is the median over --rounds rounds (the processes alternated, order rotated);
each ratio is the median over rounds of two figures of the same round.  Before any figure
counts, each step's loss and gradient sums must match the hand-written step's.

    python benchmarks/residual_net.py [--part derive|step|all] [--rounds 5] [--repeat 20]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import harness
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: The last commit of the dense-only engine, before the spec became a list of layers.
BASELINE = "cbf6f97"
EPS = 1e-5

RESIDUAL = {"name": "residual-mlp", "input": 784, "loss": "cross_entropy", "layer": [
    {"kind": "dense", "width": 256, "activation": "relu", "bias": True},
    {"kind": "layernorm"},
    {"kind": "dense", "width": 256, "bias": True},
    {"kind": "add", "from": 1},
    {"kind": "dense", "width": 10, "activation": "softmax", "bias": True}]}
DENSE = {"name": "dense-twin", "layers": [784, 256, 256, 10], "loss": "cross_entropy",
         "activation": ["relu", "identity", "softmax"], "bias": True}

DERIVE = {"dense, dense-only engine": ("dense", "baseline"), "dense, today": ("dense", "now"),
          "residual, today": ("residual", "now")}
STEP = ("symprop", "hand", "torch", "torch_target")


# ------------------------------------------------------------------ derive
def derive_worker(net: str, path: str | None) -> None:
    """Import symprop (from ``path`` when given), derive every gradient once, cold."""
    if path:
        sys.path.insert(0, path)
    import symprop
    from symprop import Spec, backprop

    if path and not symprop.__file__.startswith(path):
        raise SystemExit(f"imported {symprop.__file__}, not the engine under {path}")
    spec = Spec.from_dict(RESIDUAL if net == "residual" else DENSE)
    start = time.perf_counter()
    count = len(backprop(spec).gradients())
    harness.report({"times": {"derive": time.perf_counter() - start}, "count": count})


def baseline_tree(rev: str) -> Path:
    """The dense-only engine's package (and templates), extracted from git into a folder."""
    folder = Path(tempfile.mkdtemp(prefix="symprop-baseline-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev,
                              "symprop", "templates"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def run_derive(rounds: int, rev: str) -> list[bool]:
    base = baseline_tree(rev)
    commands = {name: harness.worker_command(__file__, "derive", "--net", net, *(
        ["--path", str(base)] if engine == "baseline" else [])) for name, (net, engine)
        in DERIVE.items()}
    print(f"derive every gradient, cold, one process each; dense-only engine = {rev}")
    per_round = harness.alternate(commands, rounds)
    counts = {name: per_round[name][0]["count"] for name in DERIVE}
    print(f"\n{'':>26} {'gradients':>9} {'median s':>9}  runs (s)")
    for name in DERIVE:
        runs = [a["times"]["derive"] for a in per_round[name]]
        print(f"{name:>26} {counts[name]:>9} {harness.median(per_round, name, 'derive'):>9.2f}  "
              + " ".join(f"{r:.2f}" for r in runs))
    slower = harness.ratio(per_round, "dense, today", "dense, dense-only engine", "derive")
    residual = harness.ratio(per_round, "residual, today", "dense, today", "derive")
    ok = slower <= 1.2 and counts["dense, today"] == counts["dense, dense-only engine"]
    print(f"\ntoday / dense-only engine on the dense twin: {slower:.2f}x (target <= 1.2x: "
          f"{'MET' if ok else 'MISSED'}); the residual net takes {residual:.2f}x its dense twin")
    return [ok]


# ------------------------------------------------------------------ step
def data(batch: int, dtype):
    """The same parameters, X and one-hot Y in every worker process (NumPy only)."""
    rng = np.random.default_rng(0)
    params = {}
    for key, (n_out, n_in) in {"W1": (256, 784), "W3": (256, 256), "W5": (10, 256)}.items():
        limit = np.sqrt(6.0 / (n_in + n_out))
        params[key] = rng.uniform(-limit, limit, size=(n_out, n_in))
        params["b" + key[1:]] = 0.01 * rng.normal(size=n_out)
    params["gamma2"] = 1 + 0.1 * rng.normal(size=256)
    params["beta2"] = 0.1 * rng.normal(size=256)
    params = {k: v.astype(dtype) for k, v in params.items()}
    X = rng.normal(size=(batch, 784)).astype(dtype)
    Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, batch)]
    return params, X, Y


def hand_written(p, X, Y):
    """What an expert writes by hand: seed 001's matrix form, the layernorm's backward in its
    usual O(n) form, a stable softmax, biases and the residual sum added in place (a fresh
    array per ``X @ W.T + b`` costs 1.3x at float64 2048 here: 36-40 ms against 29)."""
    n = X.shape[0]
    Z1 = X @ p["W1"].T
    Z1 += p["b1"]
    A1 = np.maximum(Z1, 0)
    D = A1 - A1.mean(axis=1, keepdims=True)
    sigma = np.sqrt((D * D).mean(axis=1, keepdims=True) + EPS)
    Xh = D / sigma
    A2 = Xh * p["gamma2"] + p["beta2"]
    A4 = A2 @ p["W3"].T
    A4 += p["b3"]
    A4 += A1
    Z5 = A4 @ p["W5"].T + p["b5"]
    S = Z5 - Z5.max(axis=1, keepdims=True)
    E = np.exp(S)
    total = E.sum(axis=1, keepdims=True)
    loss = float(-(Y * (S - np.log(total))).sum()) / n
    D5 = (E / total - Y) / n
    G4 = D5 @ p["W5"]
    G2 = G4 @ p["W3"]
    Gx = G2 * p["gamma2"]
    G1 = G4 + (Gx - Gx.mean(axis=1, keepdims=True)
               - Xh * (Gx * Xh).mean(axis=1, keepdims=True)) / sigma
    D1 = G1 * (Z1 > 0)
    return loss, {"W1": D1.T @ X, "b1": D1.sum(0), "gamma2": (G2 * Xh).sum(0),
                  "beta2": G2.sum(0), "W3": G4.T @ A2, "b3": G4.sum(0),
                  "W5": D5.T @ A4, "b5": D5.sum(0)}


def torch_step(params, X, Y):
    import torch
    from torch.nn import functional as F

    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)

    def step():
        for v in p.values():
            v.grad = None
        a1 = torch.relu(F.linear(Xt, p["W1"], p["b1"]))
        a2 = F.layer_norm(a1, (256,), p["gamma2"], p["beta2"], eps=EPS)
        a4 = a1 + F.linear(a2, p["W3"], p["b3"])
        loss = -(Yt * torch.log_softmax(F.linear(a4, p["W5"], p["b5"]), dim=1)).sum() / len(Xt)
        loss.backward()
        return float(loss.detach()), {k: v.grad for k, v in p.items()}
    return step


def make_step(name: str, module: str, params, X, Y):
    if name == "symprop":
        generated = harness.load_module(module)
        return lambda: generated.loss_and_gradients(params, X, Y)
    if name == "hand":
        return lambda: hand_written(params, X, Y)
    if name == "torch_target":
        import torch

        generated = harness.load_module(module.replace(".py", "_torch.py"))
        p = {k: torch.from_numpy(v) for k, v in params.items()}
        Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
        return lambda: generated.loss_and_gradients(p, Xt, Yt)
    return torch_step(params, X, Y)


def step_worker(name: str, module: str, configs: str, repeat: int) -> None:
    times, checks = {}, {}
    for key in configs.split(","):
        dtype, batch = key.split("/")
        params, X, Y = data(int(batch), np.dtype(dtype))
        step = make_step(name, module, params, X, Y)
        loss, grads = step()
        checks[key] = [float(loss)] + [float(np.abs(np.asarray(grads[k])).sum())
                                       for k in sorted(grads)]
        times[key] = harness.time_calls(step, max(5, repeat // (1 + int(batch) // 1024)))
    harness.report({"times": times, "checks": checks})


def run_step(rounds: int, repeat: int) -> list[bool]:
    from symprop import Spec
    from symprop.codegen import generate

    module = Path(tempfile.mkdtemp(prefix="symprop-bench-")) / "residual.py"
    generate(Spec.from_dict(RESIDUAL), "vectorized").write(module)
    generate(Spec.from_dict(RESIDUAL), target="torch").write(str(module).replace(".py",
                                                                                 "_torch.py"))
    configs = [f"{d}/{b}" for d in ("float32", "float64") for b in (256, 2048)]
    # one process per contender and configuration: what one configuration allocated would
    # otherwise change the next one's times (glibc's malloc adapts its mmap threshold to the
    # sizes freed, and fresh pages fault in: up to 1.8x on float32 2048 here)
    commands = {f"{name} {key}": harness.worker_command(
        __file__, "step", "--name", name, "--module", str(module), "--configs", key,
        "--repeat", str(repeat)) for name in STEP for key in configs}
    print(f"one training step, one process per contender and configuration, median of "
          f"{repeat} calls; milliseconds")
    per_round = harness.alternate(commands, rounds)
    for label, answers in per_round.items():
        name, key = label.split()
        if not harness.agree(answers[0]["checks"][key], per_round[f"hand {key}"][0]["checks"][key],
                      key.split("/")[0]):
            sys.exit(f"{name} disagrees with the hand-written step at {key}")
    print(f"\n{'dtype':>8} {'batch':>6} " + " ".join(f"{n:>12}" for n in STEP)
          + "   " + " ".join(f"{'/' + n:>7}" for n in STEP[1:3])
          + "  target              torch_target/torch")
    verdicts = []
    for key in configs:
        dtype, batch = key.split("/")
        t = {n: harness.median(per_round, f"{n} {key}", key) for n in STEP}
        r = {n: harness.ratio(per_round, f"symprop {key}", f"{n} {key}", key)
             for n in STEP[1:3]}
        framework = harness.ratio(per_round, f"torch_target {key}", f"torch {key}", key)
        ok = r["hand"] <= 1.10
        verdicts.append(ok)
        print(f"{dtype:>8} {batch:>6} " + " ".join(f"{t[n] * 1e3:>12.2f}" for n in STEP)
              + "   " + " ".join(f"{r[n]:>7.2f}" for n in STEP[1:3])
              + f"  /hand <= 1.10 {'MET' if ok else 'MISSED':<6} {framework:>18.2f}")
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("derive", "step", "all"), default="all")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--baseline", default=BASELINE, help="the dense-only engine's commit")
    parser.add_argument("--worker", choices=("derive", "step"), help=argparse.SUPPRESS)
    parser.add_argument("--net", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--module", help=argparse.SUPPRESS)
    parser.add_argument("--configs", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "derive":
        return derive_worker(args.net, args.path)
    if args.worker == "step":
        return step_worker(args.name, args.module, args.configs, args.repeat)
    print(f"{harness.machine()}; numpy {np.__version__}\n")
    verdicts = []
    if args.part in ("derive", "all"):
        verdicts += run_derive(max(1, min(args.rounds, 3)), args.baseline)
        print()
    if args.part in ("step", "all"):
        verdicts += run_step(args.rounds, args.repeat)
    print(f"\n{sum(verdicts)} of {len(verdicts)} targets met")


if __name__ == "__main__":
    main()
