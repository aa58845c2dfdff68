"""Seed 001's batch (matrix) form for its network: sigmoid hidden layer, biases, one output.

    python examples/seed001_matrix_form.py [REPORT.{html,tex,pdf,md}]

prints the five steps per layer (dC/dW = Delta^T A, column sums of Delta, dC/dA = Delta W,
Delta = dC/dA o sigma'(Z)), each with its shape and how many entries SymPy checked against
the per-sample derivation, and writes the full report (default seed001_report.html).
"""

from __future__ import annotations

import sys
from pathlib import Path

from symprop import Spec, backprop
from symprop.matrix import matrix_form
from symprop.printing.text import text
from symprop.report import write_report

SPEC = Path(__file__).with_name("seed001.toml")


def main(argv: list[str] | None = None) -> str:
    output = (argv or sys.argv[1:] or ["seed001_report.html"])[0]
    spec = Spec.from_toml(SPEC)
    form = matrix_form(backprop(spec))
    lines = []
    for s in form.steps:
        shape = " x ".join(map(str, s.shape))
        lines.append(f"{s.step:>12}  {text(s.lhs, form.L)} = {text(s.rhs, form.L)}"
                     f"   ({shape}; {s.checked}/{s.entries} entries checked)")
    print("\n".join(lines))
    write_report(spec, output)
    print(f"wrote {output}", file=sys.stderr)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
