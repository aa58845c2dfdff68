"""Derive and check every parameter gradient of sigmoid networks; compare with plain diff.

For each architecture: build the graph, derive every weight's gradient through the chain
rule (compact results, deltas reused) and check each one at a random point against PyTorch
autodiff of an independent forward pass in float64 (rtol 1e-9).  The reference is plain ``sympy.diff`` of the composed C_0 with
respect to every weight of [8, 8, 8, 4], measured in the same run.  Median of --repeat runs.

    python benchmarks/derive_all.py [--repeat 3] [--skip-large]
"""

from __future__ import annotations

import argparse
import statistics
import time

import sympy

from symprop import Spec, backprop, build_graph, prove_all

ARCHITECTURES = [(4, 6, 6, 4), (8, 8, 8, 4), (64, 64, 64, 10), (784, 256, 256, 10)]
TARGETS = {(64, 64, 64, 10): 2.0, (784, 256, 256, 10): 30.0}


def sigmoid_spec(layers) -> Spec:
    return Spec(layers=list(layers), activation="sigmoid", loss="sse", name="bench")


def derive_and_check(layers, method: str) -> tuple[float, int, bool]:
    build_graph.cache_clear()
    start = time.perf_counter()
    engine = backprop(sigmoid_spec(layers))
    report = prove_all(engine, method)
    return time.perf_counter() - start, len(report.results), report.passed


def plain_diff(layers) -> float:
    build_graph.cache_clear()
    graph = build_graph(sigmoid_spec(layers))
    composed = graph.composed_C0
    start = time.perf_counter()
    for p in graph.parameter_symbols():
        sympy.diff(composed, p)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-large", action="store_true", help="skip [784,256,256,10]")
    args = parser.parse_args()

    print(f"{'network':>20} {'params':>8} {'check':>8} {'median s':>9}  runs (s)  target")
    medians = {}
    for layers in ARCHITECTURES:
        if args.skip_large and layers[0] == 784:
            continue
        method = "torch"
        runs, n, ok = [], 0, True
        for _ in range(args.repeat if layers[0] != 784 else max(1, args.repeat - 1)):
            seconds, n, passed = derive_and_check(layers, method)
            runs.append(seconds)
            ok &= passed
        medians[layers] = statistics.median(runs)
        target = TARGETS.get(layers)
        verdict = "" if target is None else (
            f"< {target:g} s {'MET' if medians[layers] < target else 'MISSED'}")
        print(f"{list(layers)!s:>20} {n:>8} {method:>8} {medians[layers]:>9.3f}  "
              f"{' '.join(f'{r:.2f}' for r in runs)}  {verdict}{'' if ok else '  PROOF FAILED'}")

    reference = (8, 8, 8, 4)
    diff_runs = [plain_diff(reference) for _ in range(args.repeat)]
    diff_median = statistics.median(diff_runs)
    # Our side of the ratio: deriving every gradient, without the proof (plain diff proves
    # nothing either), median over the same number of runs.
    ours = []
    for _ in range(args.repeat):
        build_graph.cache_clear()
        start = time.perf_counter()
        backprop(sigmoid_spec(reference)).gradients()
        ours.append(time.perf_counter() - start)
    ours_median = statistics.median(ours)
    ratio = diff_median / ours_median
    checked = diff_median / medians[reference]
    print(f"\nplain sympy.diff of composed C_0, every weight of {list(reference)}: "
          f"median {diff_median:.3f} s ({' '.join(f'{r:.2f}' for r in diff_runs)})")
    print(f"symprop chain-rule derivation of the same: median {ours_median * 1e3:.2f} ms "
          f"-> {ratio:,.0f}x faster")
    print(f"symprop derivation + check of every gradient against PyTorch: median "
          f"{medians[reference] * 1e3:.1f} ms -> {checked:,.0f}x faster "
          f"(target >= 500x: {'MET' if checked >= 500 else 'MISSED'})")


if __name__ == "__main__":
    main()
