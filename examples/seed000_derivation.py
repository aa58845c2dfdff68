"""Seed 000's derivations on its tutorial network, as LaTeX (PDF-ready), HTML and Markdown.

    python examples/seed000_derivation.py [OUT_DIR]

writes dC_0/dw_12^(L) (the output-layer weight), dC_0/da_2^(L-1) (the backward step) and
dC_0/dw_22^(L-1) (a hidden weight, with its batch average) in every document format, and
prints the w_12^(L) result in LaTeX.  The same as
``symprop derive examples/tutorial.toml --wrt 'w_{12}^{(L)}' --format latex --standalone``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from symprop import backprop, tutorial_spec
from symprop.documents import FORMATS, derivation_document
from symprop.io import write_atomic
from symprop.printing.latex import latex

TARGETS = {"w12_L": "w_{12}^{(L)}", "a2_L-1": "a_{2}^{(L-1)}", "w22_L-1": "w_{22}^{(L-1)}"}


def main(argv: list[str] | None = None) -> list[Path]:
    out = Path((argv or sys.argv[1:] or ["seed000_derivations"])[0])
    out.mkdir(parents=True, exist_ok=True)
    engine = backprop(tutorial_spec())
    written = []
    for stem, name in TARGETS.items():
        derivation = engine.derive(name)
        for fmt in ("latex", "html", "markdown"):
            text = derivation_document(derivation, fmt, standalone=True)
            written.append(write_atomic(out / f"{stem}{FORMATS[fmt].extension}", text))
    d = engine.derive(TARGETS["w12_L"])
    print(f"{latex(d.lhs, 3)} = {latex(d.result, 3)}")
    print(f"wrote {len(written)} files to {out}/", file=sys.stderr)
    return written


if __name__ == "__main__":
    main()
