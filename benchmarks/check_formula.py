"""How long ``symprop check`` takes on the tutorial network: right < 1 s, wrong < 3 s, for
formulas in seed 000's notation and in seed 001's matrix notation.

Each case runs as the real command (``python -m symprop check ...``, a fresh process each
time, so nothing is cached) and the median of --repeat runs is held against the target,
start-up included.  The time of starting Python and importing symprop, measured in the same
run, is printed beside it, and so is the check alone in this process (the network rebuilt,
SymPy's own cache warm), so the share of the check itself is visible on a noisy machine.

    python benchmarks/check_formula.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from symprop import build_graph, tutorial_spec
from symprop.check import check_formula

SPEC = str(Path(__file__).resolve().parent.parent / "examples" / "tutorial.toml")
SEED_397 = (r"\begin{eqnarray*} \frac{\partial C_{0}}{\partial w_{12}^{(L)}} &=& \left( "
            r"\frac{\partial C_{0}}{\partial a_{1}^{(L)}}\right) \left( \frac{\partial "
            r"a_{1}^{(L)}}{\partial z_{1}^{(L)}}\right) \left( \frac{\partial z_{1}^{(L)}}"
            r"{\partial w_{12}^{(L)}}\right) \\ &=& 2 \left( a_{1}^{\left( L\right) }-y_{1}"
            r"\right) \left( g^{\prime \left(L\right) }\left( z_{1}^{\left( L\right) }\right) "
            r"\right) \left( a_{2}^{(L-1)}\right) \end{eqnarray*}")
HIDDEN = (r"\frac{\partial C_0}{\partial w_{22}^{(L-1)}} = \sum_{j=0}^{n-1} 2(a_j^{(L)} - y_j)"
          r" g'^{(L)}(z_j^{(L)}) w_{j2}^{(L)} g'^{(L-1)}(z_2^{(L-1)}) a_2^{(L-2)}")
CASES = [
    # (label, formula, wrt, right?)
    ("right: seed 000 dC_0/dw_12^(L), eqnarray", SEED_397, None, True),
    ("right: dC_0/dw_22^(L-1), nested sum", HIDDEN, None, True),
    ("right: general dC_0/dw_jk^(l), every j k l",
     r"\frac{\partial C_0}{\partial w_{jk}^{(l)}} = \delta_j^{(l)} a_k^{(l-1)}", None, True),
    ("wrong: missing 2", "(a_1^(L) - y_1) g'^(L)(z_1^(L)) a_2^(L-1)", "w_12^(L)", False),
    ("wrong: node index, hidden weight",
     HIDDEN.replace("a_2^{(L-2)}", "a_1^{(L-2)}"), None, False),
    ("wrong: missing g' in the sum", r"\sum_{j=0}^{n-1} 2(a_j^{(L)} - y_j) w_{j2}^{(L)}",
     "a_2^(L-1)", False),
    ("wrong: no single fix explains it",
     HIDDEN.replace("a_2^{(L-2)}", "a_1^{(L-2)} a_0^{(L-2)}"), None, False),
]
MATRIX_W = r"\frac{\partial C}{\partial W^{(L)}} = "
CASES += [  # seed 001's matrix notation (issue 18)
    ("right: matrix dC/dW^(L) = Delta^T A", MATRIX_W + r"\Delta^{(L)\top} A^{(L-1)}", None,
     True),
    ("right: matrix Delta^(L-1), Hadamard g'",
     r"\Delta^{(L-1)} = (\Delta^{(L)} W^{(L)}) \odot g'^{(L-1)}(Z^{(L-1)})", None, True),
    ("right: matrix general dC/dW^(l), every l",
     r"\frac{\partial C}{\partial W^{(l)}} = \Delta^{(l)\top} A^{(l-1)}", None, True),
    ("wrong: matrix transposed result", MATRIX_W + r"A^{(L-1)\top} \Delta^{(L)}", None, False),
    ("wrong: matrix g' missing", r"\Delta^{(L-1)} = \Delta^{(L)} W^{(L)}", None, False),
    ("wrong: matrix, no single fix", MATRIX_W + r"A^{(L-1)\top} \Delta^{(L-1)}", None, False),
]
TARGET = {True: 1.0, False: 3.0}


def in_process(formula: str, wrt: str | None) -> tuple[float, bool]:
    build_graph.cache_clear()
    start = time.perf_counter()
    result = check_formula(tutorial_spec(), formula, wrt)
    return time.perf_counter() - start, result.right


def command(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "symprop", *args], capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    startup = statistics.median(
        command(["--help"]) for _ in range(args.repeat))
    print(f"tutorial network [3, 6, 6, 4], generic g, sse; median of {args.repeat} runs")
    print(f"reference: python -m symprop --help (start-up and imports) {startup:.2f} s\n")
    print(f"{'case':46s} {'verdict':>7s} {'command':>8s} {'target':>7s} {'- start-up':>10s} "
          f"{'in-process':>10s}")
    worst = {True: 0.0, False: 0.0}
    for label, formula, wrt, expected in CASES:
        times, verdicts = zip(*(in_process(formula, wrt) for _ in range(args.repeat)))
        assert all(v == expected for v in verdicts), label
        t = statistics.median(times)
        cli = ["check", SPEC, "--formula", formula] + (["--wrt", wrt] if wrt else [])
        c = statistics.median(command(cli) for _ in range(args.repeat))
        worst[expected] = max(worst[expected], c)
        ok = "ok" if c < TARGET[expected] else "MISSED"
        print(f"{label:46s} {'right' if expected else 'wrong':>7s} {c:7.2f}s "
              f"{TARGET[expected]:6.1f}s {c - startup:9.2f}s {t:9.3f}s  {ok}")
    print(f"\nslowest right: {worst[True]:.2f} s for the whole command (target < 1 s, ratio "
          f"{worst[True]:.2f}); slowest wrong: {worst[False]:.2f} s (target < 3 s, ratio "
          f"{worst[False] / 3:.2f})")


if __name__ == "__main__":
    main()
