"""What the self-check costs: every derivation ``symprop derive`` prints is first held
against an independent truth (SymPy's diff of the composed C_0, else autodiff of the
reference forward pass, else differences of the forward pass; README "Derivations you can
trust").  Target: ``symprop derive examples/tutorial.toml --wrt 'w_22^(L-1)'`` under 1 s as a
whole command, start-up and self-check included.

command     The real command (``python -m symprop derive ...``), a fresh process each run,
            median of --repeat runs; ``python -c "import symprop.cli"`` measured the same way
            beside it (start-up alone).
split       In a fresh worker process per case: building the network and deriving the
            result (what derive did before it checked itself), then the self-check alone
            (``symprop.self_check.ensure``), and the truth it used.  Median over --repeat
            processes.

    python benchmarks/self_check.py [--repeat 5] [--wide]

``--wide`` adds a 1000-1000-1000-10 network (over the composed C_0's budget: JAX autodiff,
about a minute).  Time nothing else on the machine while it runs (2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
WIDE = ('name = "wide"\nlayers = [1000, 1000, 1000, 10]\n'
        'activation = ["tanh", "tanh", "softmax"]\nloss = "cross_entropy"\nbias = true\n')
#: label -> (spec file, name to derive)
CASES = {
    "tutorial w_22^(L-1)": (str(EXAMPLES / "tutorial.toml"), "w_22^(L-1)"),
    "residual w_00^(1)": (str(EXAMPLES / "residual.toml"), "w_00^(1)"),
    "residual c_00^(4)": (str(EXAMPLES / "residual.toml"), "c_00^(4)"),
    "residual x_0 (a node)": (str(EXAMPLES / "residual.toml"), "x_0"),
    "custom activation w_00^(1)": (str(EXAMPLES / "custom.toml"), "w_00^(1)"),
}


def worker(spec_path: str, name: str) -> None:
    from symprop import Spec, backprop
    from symprop.self_check import ensure

    start = time.perf_counter()
    derivation = backprop(Spec.from_toml(spec_path)).derive(name)
    derivation.result  # noqa: B018 - the compact result, as derive prints it
    derived = time.perf_counter() - start
    start = time.perf_counter()
    result = ensure(derivation)
    checked = time.perf_counter() - start
    harness.report({"times": {"derive": derived, "check": checked}, "truth": result.method})


def command_seconds(args: list[str], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--wide", action="store_true")
    parser.add_argument("--worker", nargs=2, metavar=("SPEC", "NAME"))
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    cases = dict(CASES)
    if args.wide:
        wide = Path(tempfile.mkdtemp()) / "wide.toml"
        wide.write_text(WIDE)
        cases["wide 1000-1000-1000-10 w_12^(1)"] = (str(wide), "w_12^(1)")
    print(f"machine: {harness.machine()}")
    start_up = command_seconds([sys.executable, "-c", "import symprop.cli"], args.repeat)
    tutorial, name = CASES["tutorial w_22^(L-1)"]
    whole = command_seconds([sys.executable, "-m", "symprop", "derive", tutorial, "--wrt", name],
                            args.repeat)
    print(f"\ncommand  symprop derive examples/tutorial.toml --wrt '{name}': {whole:.2f} s "
          f"(median of {args.repeat}; target < 1 s: {'met' if whole < 1 else 'MISSED'}); "
          f"start-up alone {start_up:.2f} s")
    print(f"\nsplit (median of {args.repeat} processes)")
    print(f"  {'case':34} {'derive':>8} {'self-check':>11} {'share':>6}  truth")
    for label, (spec, target) in cases.items():
        runs = harness.alternate({label: harness.worker_command(__file__, spec, target)},
                                 args.repeat if "wide" not in label else 1)
        derive = harness.median(runs, label, "derive")
        check = harness.median(runs, label, "check")
        share = check / (derive + check)
        print(f"  {label:34} {derive:7.2f}s {check:10.2f}s {share:6.0%}  "
              f"{runs[label][0]['truth']}")


if __name__ == "__main__":
    main()
