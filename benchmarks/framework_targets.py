"""One training step of 784-256-256-10 (sigmoid, softmax + cross-entropy) with the torch target
(``codegen --target torch``) against PyTorch eager autograd of the same network, torch's
matmuls alone (the floor) and the NumPy target; and with the JAX target (``--target jax``)
against ``jax.jit(jax.value_and_grad)`` of the same network's plain forward pass.

Each contender runs in its own process per configuration (design.md section 8, and glibc's
malloc carrying one batch size's allocations into the next otherwise), rounds alternated;
figures are medians, ratios medians of same-round ratios. Before any figure counts, every
contender's loss and gradient sums must match eager autograd's.

    python benchmarks/framework_targets.py [--rounds 5] [--repeat 20]
                                           [--only float32/2048] [--contenders floor]

Required: torch target <= 1.00x eager at every batch and dtype; JAX target within 1.05x of
jit(value_and_grad). Aimed at: torch target within 1.10x of the floor at batch >= 256.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

SPEC = {"layers": [784, 256, 256, 10], "activation": ["sigmoid", "sigmoid", "softmax"],
        "loss": "cross_entropy", "bias": True}
CONTENDERS = ("torch_target", "eager", "floor", "numpy_target", "jax_target", "jax_jit")
#: Each worker warms up for half this long and times calls for at least this long.
SECONDS = 0.5


def data(batch: int, dtype):
    """The same parameters, X and one-hot Y in every worker (NumPy arrays)."""
    rng = np.random.default_rng(0)
    params = {}
    for l, (n_out, n_in) in enumerate([(256, 784), (256, 256), (10, 256)], start=1):
        limit = np.sqrt(6.0 / (n_in + n_out))
        params[f"W{l}"] = rng.uniform(-limit, limit, size=(n_out, n_in)).astype(dtype)
        params[f"b{l}"] = (0.01 * rng.normal(size=n_out)).astype(dtype)
    X = rng.normal(size=(batch, 784)).astype(dtype)
    Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, batch)]
    return params, X, Y


def jax_step(name: str, folder: str, params, X, Y):
    """The JAX target's jitted step, or jit(value_and_grad) of the plain forward pass."""
    import jax

    jax.config.update("jax_enable_x64", True)
    p = {k: jax.numpy.asarray(v) for k, v in params.items()}
    Xj, Yj = jax.numpy.asarray(X), jax.numpy.asarray(Y)
    if name == "jax_target":
        module = harness.load_module(f"{folder}/net_jax.py")

        def step():
            value, grads = module.loss_and_gradients(p, Xj, Yj)
            return value, jax.block_until_ready(grads)
        return step

    def plain(q, X, Y):
        a1 = jax.nn.sigmoid(X @ q["W1"].T + q["b1"])
        a2 = jax.nn.sigmoid(a1 @ q["W2"].T + q["b2"])
        return -(Y * jax.nn.log_softmax(a2 @ q["W3"].T + q["b3"], axis=1)).sum() / len(X)
    value_and_grad = jax.jit(jax.value_and_grad(plain))

    def reference():
        value, grads = value_and_grad(p, Xj, Yj)
        return float(value), jax.block_until_ready(grads)
    return reference


def make_step(name: str, folder: str, params, X, Y):
    if name.startswith("jax"):
        return jax_step(name, folder, params, X, Y)
    if name == "numpy_target":
        module = harness.load_module(f"{folder}/net_numpy.py")
        return lambda: module.loss_and_gradients(params, X, Y)
    import torch
    from torch.nn import functional as F

    p = {k: torch.from_numpy(v) for k, v in params.items()}
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    if name == "torch_target":
        module = harness.load_module(f"{folder}/net_torch.py")
        return lambda: module.loss_and_gradients(p, Xt, Yt)
    if name == "floor":  # the step's matmuls alone: 3 forward, 3 weight gradients, 2 back
        def floor():
            A1 = torch.mm(Xt, p["W1"].t())
            A2 = torch.mm(A1, p["W2"].t())
            Z3 = torch.mm(A2, p["W3"].t())
            D2 = torch.mm(Z3, p["W3"])
            D1 = torch.mm(D2, p["W2"])
            return 0.0, {"W3": torch.mm(Z3.t(), A2), "W2": torch.mm(D2.t(), A1),
                         "W1": torch.mm(D1.t(), Xt)}
        return floor
    q = {k: v.clone().requires_grad_() for k, v in p.items()}

    def eager():
        for v in q.values():
            v.grad = None
        a1 = torch.sigmoid(F.linear(Xt, q["W1"], q["b1"]))
        a2 = torch.sigmoid(F.linear(a1, q["W2"], q["b2"]))
        loss = -(Yt * torch.log_softmax(F.linear(a2, q["W3"], q["b3"]), dim=1)).sum() / len(Xt)
        loss.backward()
        return float(loss.detach()), {k: v.grad for k, v in q.items()}
    return eager


def step_worker(name: str, folder: str, key: str, repeat: int, seconds: float) -> None:
    dtype, batch = key.split("/")
    params, X, Y = data(int(batch), np.dtype(dtype))
    step = make_step(name, folder, params, X, Y)
    loss, grads = step()
    check = [float(loss)] + [float(np.abs(np.asarray(grads[k])).sum()) for k in sorted(grads)]
    seconds = harness.time_calls(step, max(5, repeat // (1 + int(batch) // 1024)),
                                 seconds=seconds)
    harness.report({"times": {key: seconds}, "checks": {key: check}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--only", help="these configurations only, e.g. float64/256,float32/2048")
    parser.add_argument("--contenders",
                        help="these contenders only (torch_target and eager always)")
    parser.add_argument("--seconds", type=float, default=SECONDS,
                        help="each worker times calls for at least this long")
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
    spec = Spec.from_dict(SPEC)
    generate(spec).write(f"{folder}/net_numpy.py")
    generate(spec, target="torch").write(f"{folder}/net_torch.py")
    generate(spec, target="jax").write(f"{folder}/net_jax.py")
    configs = [f"{d}/{b}" for d in ("float32", "float64") for b in (32, 256, 2048)]
    if args.only:
        configs = args.only.split(",")
    global CONTENDERS
    if args.contenders:
        chosen = {"torch_target", "eager", *args.contenders.split(",")}
        CONTENDERS = tuple(n for n in CONTENDERS if n in chosen)
    commands = {f"{name} {key}": [sys.executable, __file__, "--worker", name, "--folder",
                                  folder, "--config", key, "--repeat", str(args.repeat), "--seconds", str(args.seconds)]
                for name in CONTENDERS for key in configs}
    print(f"{harness.machine()}; torch {torch.__version__}, numpy {np.__version__}, "
          f"{torch.get_num_threads()} torch threads")
    print(f"one training step, one process per contender and configuration, median of at "
          f"least {args.repeat} calls and {args.seconds} s after {args.seconds / 2} s of warm-up, "
          f"{args.rounds} rounds; milliseconds\n")
    per_round = harness.alternate(commands, args.rounds)
    for key in configs:
        for name in set(CONTENDERS) & {"torch_target", "numpy_target", "jax_target", "jax_jit"}:
            if not harness.agree(per_round[f"{name} {key}"][0]["checks"][key],
                                 per_round[f"eager {key}"][0]["checks"][key],
                                 key.split("/")[0]):
                sys.exit(f"{name} disagrees with eager autograd at {key}")
    print(f"{'dtype':>8} {'batch':>6} " + " ".join(f"{n:>12}" for n in CONTENDERS))

    def ratio(a: str, b: str, key: str) -> float:
        ran = a in CONTENDERS and b in CONTENDERS
        return harness.ratio(per_round, f"{a} {key}", f"{b} {key}", key) if ran else np.nan

    rows, missed, required = [], 0, 0
    for key in configs:
        dtype, batch = key.split("/")
        t = {n: harness.median(per_round, f"{n} {key}", key) for n in CONTENDERS}
        print(f"{dtype:>8} {batch:>6} " + " ".join(f"{t[n] * 1e3:>12.3f}" for n in CONTENDERS))
        r = {n: ratio("torch_target", n, key) for n in ("eager", "floor", "numpy_target")}
        r["jax_jit"] = ratio("jax_target", "jax_jit", key)
        verdicts = {}
        for name, limit in (("eager", 1.00), ("jax_jit", 1.05)):
            if np.isnan(r[name]):
                verdicts[name] = "-"
                continue
            required += 1
            verdicts[name] = "MET" if r[name] <= limit else "MISSED"
            missed += verdicts[name] == "MISSED"
        rows.append(f"{dtype:>8} {batch:>6} {r['eager']:>13.2f} {r['floor']:>13.2f} "
                    f"{r['numpy_target']:>13.2f} {verdicts['eager']:>7}"
                    f" {r['jax_jit']:>13.2f} {verdicts['jax_jit']:>7}")
    print(f"\nratios (medians of same-round ratios)\n{'dtype':>8} {'batch':>6} "
          f"{'torch/eager':>13} {'torch/floor':>13} {'torch/numpy':>13} {'<=1.00':>7}"
          f" {'jax/jit(vg)':>13} {'<=1.05':>7}")
    print("\n".join(rows))
    print(f"\n{required - missed} of {required} required ratios met")


if __name__ == "__main__":
    main()
