"""One training step (loss and every gradient) of the generated vectorized module, timed
against a hand-written NumPy version, PyTorch eager, ``jax.jit(jax.value_and_grad)``, and the
same-shape matmuls alone (the physical floor), all measured in this run.

"best" is the fastest NumPy step we could write by hand (:func:`numpy_best`): how close NumPy
alone, without fused elementwise kernels, gets to the floor on this machine.

Network: 784-256-256-10, sigmoid hidden layers, softmax + cross-entropy, biases; batches 32,
256 and 2048; float32 and float64.  Plus [4, 6, 6, 4] at batch 32 against PyTorch eager.
Times are medians over 7 alternating rounds of the median of --repeat timed calls; each
ratio is the median over rounds of the two times measured back to back in one round.

    python benchmarks/codegen_step.py [--repeat 30] [--quick]

Targets (issue 4): at batch >= 256 within 1.10x of the matmul floor and of JAX jit; at every
batch no slower than PyTorch eager; [4, 6, 6, 4] at batch 32 at least 5x faster than eager.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from symprop import Spec
from symprop.codegen import generate

BIG = Spec(layers=(784, 256, 256, 10), activation=["sigmoid", "sigmoid", "softmax"],
           loss="cross_entropy", bias=True, name="mnist-mlp")
SMALL = Spec(layers=(4, 6, 6, 4), activation=["sigmoid", "sigmoid", "softmax"],
             loss="cross_entropy", bias=True, name="small")


def median_time(fn, repeat: int) -> float:
    for _ in range(3):
        fn()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def compare(fns: dict, repeat: int, rounds: int = 7) -> dict[str, list[float]]:
    """Seconds per call of each function, one figure per round.

    Each round times a block of ``repeat`` calls of every function in turn (the block's
    median).  A burst of noise on this shared machine then hits one round, and the functions
    of one round are measured back to back, so their ratio is taken within a round.
    """
    per_round: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            per_round[name].append(median_time(fn, repeat))
    return per_round


def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """Median over rounds of time(a) / time(b), each pair measured in the same round."""
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


# ------------------------------------------------------------------ references
def hand_written(p, X, Y):
    """What an expert writes by hand: seed 001's matrix form, stable sigmoid and softmax."""
    n = X.shape[0]
    Z1 = X @ p["W1"].T + p["b1"]
    A1 = 0.5 * (1 + np.tanh(0.5 * Z1))
    Z2 = A1 @ p["W2"].T + p["b2"]
    A2 = 0.5 * (1 + np.tanh(0.5 * Z2))
    Z3 = A2 @ p["W3"].T + p["b3"]
    S = Z3 - Z3.max(axis=1, keepdims=True)
    E = np.exp(S)
    total = E.sum(axis=1, keepdims=True)
    loss = float(-(Y * (S - np.log(total))).sum()) / n
    D3 = (E / total - Y) / n
    D2 = (D3 @ p["W3"]) * A2 * (1 - A2)
    D1 = (D2 @ p["W2"]) * A1 * (1 - A1)
    return loss, {"W3": D3.T @ A2, "b3": D3.sum(0), "W2": D2.T @ A1, "b2": D2.sum(0),
                  "W1": D1.T @ X, "b1": D1.sum(0)}


def numpy_best(p, X, Y):
    """The fastest NumPy step we could write for this network, a bound on NumPy alone.

    Every elementwise pass in place; the bias folded into the sigmoid's first pass; the
    cheaper transcendental per dtype on this machine (float64 exp, float32 tanh); sums as
    BLAS products; the 10-wide output transposed in memory; Delta^(1) written into the dead
    A^(2).  Per hidden layer that is 4 passes forward and 3 backward, the fewest NumPy's
    ufuncs allow without a fused kernel.
    """
    n = X.shape[0]
    acts = [X]
    for l in (1, 2):
        Z = acts[-1].dot(p[f"W{l}"].T)
        if X.dtype == np.float64:  # 1/(1 + e^-z); e^-z may overflow to inf (1/inf = 0)
            np.subtract(-p[f"b{l}"], Z, out=Z)
            with np.errstate(over="ignore"):
                np.exp(Z, out=Z)
            Z += 1
            np.divide(1, Z, out=Z)
        else:  # (1 + tanh(z/2))/2
            Z += p[f"b{l}"]
            Z *= 0.5
            np.tanh(Z, out=Z)
            Z += 1
            Z *= 0.5
        acts.append(Z)
    X0, A1, A2 = acts
    ZT = p["W3"].dot(A2.T)  # (10, n): the softmax reductions run along contiguous memory
    ZT += p["b3"][:, None]
    ZT -= ZT.max(axis=0)
    E = np.exp(ZT)
    total = E.sum(axis=0)
    ZT -= np.log(total)  # log softmax
    YT = np.ascontiguousarray(Y.T)
    loss = -float(np.vdot(YT, ZT)) / n
    E /= total
    E *= YT.sum(axis=0)
    E -= YT
    E /= n
    ones = np.ones(n, dtype=X.dtype)
    dW3, db3 = E.dot(A2), E.sum(axis=1)
    D2 = E.T.dot(p["W3"])
    D2 *= A2
    np.subtract(1, A2, out=A2)
    D2 *= A2
    dW2, db2 = D2.T.dot(A1), ones.dot(D2)
    D1 = D2.dot(p["W2"], out=A2)
    D1 *= A1
    np.subtract(1, A1, out=A1)
    D1 *= A1
    return loss, {"W3": dW3, "b3": db3, "W2": dW2, "b2": db2, "W1": D1.T.dot(X0),
                  "b1": ones.dot(D1)}


def matmul_floor(p, X, Y):
    """The same-shape matmuls alone: 3 forward, 3 weight gradients, 2 backward."""
    n = X.shape[0]
    A1 = X @ p["W1"].T
    A2 = A1 @ p["W2"].T
    A3 = A2 @ p["W3"].T
    D3 = A3[:, :10] if A3.shape == (n, 10) else A3
    D2 = D3 @ p["W3"]
    D1 = D2 @ p["W2"]
    return D3.T @ A2, D2.T @ A1, D1.T @ X


def torch_step(torch, params, X, Y):
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)

    def step():
        for v in p.values():
            v.grad = None
        a = Xt
        for l in (1, 2, 3):
            z = torch.nn.functional.linear(a, p[f"W{l}"], p[f"b{l}"])
            a = torch.sigmoid(z) if l < 3 else z
        loss = -(Yt * torch.log_softmax(a, dim=1)).sum() / Xt.shape[0]
        loss.backward()
        return float(loss.detach()), {k: v.grad for k, v in p.items()}
    return step


def jax_step(jax, params, X, Y):
    jnp = jax.numpy

    def C(p, X, Y):
        a = X
        for l in (1, 2, 3):
            z = a @ p[f"W{l}"].T + p[f"b{l}"]
            a = jax.nn.sigmoid(z) if l < 3 else z
        return -(Y * jax.nn.log_softmax(a, axis=1)).sum() / X.shape[0]
    f = jax.jit(jax.value_and_grad(C))
    p = {k: jnp.asarray(v) for k, v in params.items()}
    Xj, Yj = jnp.asarray(X), jnp.asarray(Y)

    def step():
        value, grads = f(p, Xj, Yj)
        jax.block_until_ready(grads)
        return value, grads
    return step


def data(spec: Spec, batch: int, dtype, module):
    rng = np.random.default_rng(0)
    params = module.init_params(0, dtype)
    params = {k: (v + 0.01 * rng.normal(size=v.shape)).astype(dtype) for k, v in params.items()}
    X = rng.normal(size=(batch, spec.layers[0])).astype(dtype)
    Y = np.eye(spec.layers[-1], dtype=dtype)[rng.integers(0, spec.layers[-1], batch)]
    return params, X, Y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="float32 only, batches 32 and 256")
    args = parser.parse_args()
    import jax
    import torch

    jax.config.update("jax_enable_x64", True)
    module = generate(BIG).load()
    dtypes = [np.float32] if args.quick else [np.float32, np.float64]
    batches = [32, 256] if args.quick else [32, 256, 2048]
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), jax {jax.__version__}, "
          f"numpy {np.__version__}; median of {args.repeat} calls, milliseconds\n")
    head = (f"{'dtype':>8} {'batch':>6} {'symprop':>8} {'floor':>8} {'hand':>8} {'best':>8} "
            f"{'jax.jit':>8} {'torch':>8}   {'/floor':>6} {'/jax':>6} {'/torch':>6} {'/hand':>6} "
            f"{'best/floor':>10}  targets")
    print(head)
    verdicts = []
    for dtype in dtypes:
        for batch in batches:
            params, X, Y = data(BIG, batch, dtype, module)
            ours, ref = module.loss_and_gradients(params, X, Y), hand_written(params, X, Y)
            for loss, grads in (ours, numpy_best(params, X, Y)):
                assert abs(loss - ref[0]) <= 1e-4 * abs(ref[0])
                assert all(np.allclose(grads[k], ref[1][k], rtol=1e-3, atol=1e-6) for k in grads)
            t = compare({
                "symprop": lambda p=params, x=X, y=Y: module.loss_and_gradients(p, x, y),
                "floor": lambda p=params, x=X, y=Y: matmul_floor(p, x, y),
                "hand": lambda p=params, x=X, y=Y: hand_written(p, x, y),
                "best": lambda p=params, x=X, y=Y: numpy_best(p, x, y),
                "jax": jax_step(jax, params, X, Y),
                "torch": torch_step(torch, params, X, Y),
            }, max(3, args.repeat // (1 + batch // 512)))
            r = {k: ratio(t, "symprop", k) for k in ("floor", "jax", "torch", "hand")}
            best = ratio(t, "best", "floor")
            t = {k: statistics.median(v) for k, v in t.items()}
            goals = []
            if batch >= 256:
                goals += [("floor", r["floor"] <= 1.10), ("jax", r["jax"] <= 1.10)]
            goals.append(("torch", r["torch"] <= 1.0))
            verdicts += [ok for _, ok in goals]
            print(f"{np.dtype(dtype).name:>8} {batch:>6} "
                  + " ".join(f"{t[k] * 1e3:>8.2f}" for k in ("symprop", "floor", "hand", "best",
                                                              "jax", "torch"))
                  + "   " + " ".join(f"{r[k]:>6.2f}" for k in ("floor", "jax", "torch", "hand"))
                  + f" {best:>10.2f}  " + ", ".join(f"{k} {'MET' if ok else 'MISSED'}" for k, ok in goals))

    small = generate(SMALL).load()
    params, X, Y = data(SMALL, 32, np.float64, small)
    small_times = compare({"symprop": lambda: small.loss_and_gradients(params, X, Y),
                           "torch": torch_step(torch, params, X, Y)}, args.repeat * 10)
    speedup = ratio(small_times, "torch", "symprop")
    ours, eager = (statistics.median(small_times[k]) for k in ("symprop", "torch"))
    ok = speedup >= 5
    verdicts.append(ok)
    print(f"\n[4, 6, 6, 4] batch 32 float64: symprop {ours * 1e6:.1f} us, torch eager "
          f"{eager * 1e6:.1f} us -> {speedup:.1f}x faster (target >= 5x: "
          f"{'MET' if ok else 'MISSED'})")
    print(f"\n{sum(verdicts)} of {len(verdicts)} targets met")


if __name__ == "__main__":
    main()
