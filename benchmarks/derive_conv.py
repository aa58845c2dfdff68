"""Derive and check every parameter gradient of conv networks, and how the time grows with
the number of parameters.

Each network: input 1x8x8, conv2d (C channels, kernel 3, padding 1, relu, bias), maxpool2d
2, conv2d (C channels, kernel 3, relu, bias), flatten, dense 10 softmax with bias,
cross-entropy; C = 2, 4, 8, 16.  Every parameter's gradient is derived through the chain
rule (compact results, deltas reused) and checked at a random point against PyTorch
autodiff of the reference forward pass (F.conv2d, F.max_pool2d) in float64; the time covers
building the graph, deriving and checking (after one untimed run that imports PyTorch).
The reference is plain ``sympy.diff`` of the composed C_0 by every parameter of a tiny
network (1x4x4, conv2d 2 channels kernel 2, maxpool2d 2, flatten, dense 3 softmax), against
symprop's derive and check of the same network, measured in the same run.  Median of
--repeat runs, each in this process (SymPy's caches are cleared between runs).

    python benchmarks/derive_conv.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import sympy

from symprop import Spec, backprop, build_graph, prove_all

CHANNELS = (2, 4, 8, 16)


def conv_spec(channels: int) -> Spec:
    conv = {"kind": "conv2d", "channels": channels, "kernel": 3, "activation": "relu",
            "bias": True}
    return Spec(input=[1, 8, 8], loss="cross_entropy", name=f"conv{channels}", stack=[
        conv | {"padding": 1}, {"kind": "maxpool2d", "kernel": 2}, conv,
        {"kind": "flatten"}, {"kind": "dense", "width": 10, "activation": "softmax",
                              "bias": True}])


def tiny_spec() -> Spec:
    return Spec(input=[1, 4, 4], loss="cross_entropy", name="tiny", stack=[
        {"kind": "conv2d", "channels": 2, "kernel": 2, "activation": "tanh", "bias": True},
        {"kind": "maxpool2d", "kernel": 2}, {"kind": "flatten"},
        {"kind": "dense", "width": 3, "activation": "softmax", "bias": True}])


def derive_and_check(spec: Spec) -> tuple[float, bool]:
    build_graph.cache_clear()
    sympy.core.cache.clear_cache()
    start = time.perf_counter()
    report = prove_all(backprop(spec), "torch")
    return time.perf_counter() - start, report.passed


def plain_diff(spec: Spec) -> float:
    """SymPy's diff of the composed C_0 by every parameter (no chain rule, no reuse)."""
    build_graph.cache_clear()
    sympy.core.cache.clear_cache()
    start = time.perf_counter()
    graph = build_graph(spec)
    c0 = graph.composed_C0
    for p in graph.parameter_symbols():
        sympy.diff(c0, p)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import os

    print(f"{os.cpu_count()} cores; median of {args.repeat} runs; seconds\n")
    print(f"{'channels':>8} {'parameters':>10} {'derive+check':>13} {'per parameter':>14} "
          f"{'checked':>8}")
    derive_and_check(conv_spec(CHANNELS[0]))  # imports PyTorch, compiles nothing else
    rows = []
    for channels in CHANNELS:
        spec = conv_spec(channels)
        runs = [derive_and_check(spec) for _ in range(args.repeat)]
        seconds = statistics.median(s for s, _ in runs)
        ok = all(passed for _, passed in runs)
        rows.append((spec.n_parameters, seconds))
        print(f"{channels:>8} {spec.n_parameters:>10} {seconds:>13.2f} "
              f"{seconds / spec.n_parameters * 1e3:>11.2f} ms {'yes' if ok else 'FAILED':>8}")
    (n0, t0), (n1, t1) = rows[0], rows[-1]
    print(f"\n{n1 / n0:.1f}x the parameters took {t1 / t0:.1f}x the time "
          f"(linear would be {n1 / n0:.1f}x)")
    tiny = tiny_spec()
    reference = statistics.median(plain_diff(tiny) for _ in range(args.repeat))
    ours = statistics.median(derive_and_check(tiny)[0] for _ in range(args.repeat))
    print(f"tiny network ({tiny.n_parameters} parameters): plain sympy.diff of the composed C_0 "
          f"by every parameter {reference:.2f} s, symprop's derive and check {ours:.2f} s "
          f"({reference / ours:.1f}x faster)")


if __name__ == "__main__":
    main()
