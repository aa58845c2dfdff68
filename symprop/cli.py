"""The ``symprop`` command line (README: Use).

Exit codes: 0 success, 1 a negative answer (a proof failed), 2 bad input or work estimated
too big (``--force`` does it anyway) -- with a one-paragraph message on stderr and no
traceback (``--debug`` shows one); 3 a bug of symprop's own; 130 interrupted (Ctrl-C), with
no output file written.
"""

from __future__ import annotations

import argparse
import sys

from ._version import __version__
from .codegen import STYLES, TARGETS, generate
from .derivation import backprop
from .documents import FORMATS, derivation_document, render_derivation
from .errors import InputError, SympropError
from .interrupts import remember_interrupts, stop_if_interrupted
from .io import write_atomic
from .letters_derivation import letter_derivation, letter_document
from .notation import layer_spelling
from .printing.text import text
from .report import REPORT_SUFFIXES, write_report
from .self_check import SelfCheckFailed, describe, ensure
from .spec import Spec, tutorial_spec
from .verify import AGAINST, DTYPES, hold_module, verify
from .worked import hold_against_module, read_point

__all__ = ["DEMO_TARGETS", "main"]

#: What ``symprop demo`` derives on the tutorial network, as seed 000 does: w_12^(L), then
#: w_22^(L-1), whose first factor is the backward step dC_0/da_2^(L-1), worked out inside it.
DEMO_TARGETS = ("w_{12}^{(L)}", "w_{22}^{(L-1)}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symprop",
        description="Symbolic backpropagation: derive dC_0/dw step by step, in seed notation.")
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    parser.add_argument("--version", action="version", version=f"symprop {__version__}")
    parser.add_argument("--force", action="store_true",
                        help="do work that is estimated too big (a composed C_0 of millions of "
                             "symbols, a document of hundreds of pages) instead of refusing it")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    derive = sub.add_parser("derive", help="derive dC_0/d(NAME) step by step")
    derive.add_argument("spec", metavar="SPEC", help="architecture spec (TOML file)")
    derive.add_argument("--wrt", required=True, metavar="NAME",
                        help="parameter or node in seed notation, e.g. 'w_{12}^{(L)}'")
    derive.add_argument("--format", choices=tuple(FORMATS), default="text",
                        help="text (default), latex, markdown or html")
    derive.add_argument("--standalone", action="store_true",
                        help="a complete document: a LaTeX article that pdflatex compiles, "
                             "a self-contained HTML page, Markdown with a title")
    derive.add_argument("--layers", choices=("relative", "absolute"), default=None,
                        help="print layers as L, L-1, ... or as numbers (default: as --wrt "
                             "spells its layer, w_12^(L-1) or w_12^(2))")
    derive.add_argument("--prove", action="store_true",
                        help="also prove the result equal to diff of the composed C_0")
    derive.add_argument("--at", metavar="VALUES.toml",
                        help="a worked example: every step's number at the point of VALUES.toml "
                             "(parameters under the module's keys W1, b1, ..., one sample x, "
                             "its target y, optionally learning_rate for the SGD update)")
    derive.add_argument("-o", "--output", metavar="FILE", help="write to FILE (atomically)")

    report = sub.add_parser("report", help="the whole network in one document: notation, "
                                           "diagram, C_0, derivations, matrix form")
    report.add_argument("spec", metavar="SPEC", help="architecture spec (TOML file)")
    report.add_argument("-o", "--output", metavar="FILE", required=True,
                        help="FILE" + "/".join(REPORT_SUFFIXES) + " (written atomically; "
                             ".pdf runs pdflatex)")
    report.add_argument("--layers", choices=("relative", "absolute"), default="relative",
                        help="print layers as L, L-1, ... (default) or as numbers")
    report.add_argument("--at", metavar="VALUES.toml",
                        help="worked examples: every derivation with its numbers at the point "
                             "of VALUES.toml (as derive --at)")
    report.add_argument("--interactive", action="store_true",
                        help="an HTML file whose diagram is clickable: every parameter's and "
                             "node's derivation, one shown at a time, its path marked, the "
                             "URL fragment (#w_12^(L)) selecting it")

    codegen = sub.add_parser("codegen", help="write the NumPy backprop module of SPEC")
    codegen.add_argument("spec", metavar="SPEC", help="architecture spec (TOML file)")
    codegen.add_argument("-o", "--output", metavar="FILE.py", required=True,
                         help="where to write the module (atomically)")
    codegen.add_argument("--style", choices=STYLES, default="vectorized",
                         help="matrix form of seed 001 (default) or one line per weight")
    codegen.add_argument("--target", choices=TARGETS, default="numpy",
                         help="numpy (default); torch: autograd Functions whose backward is "
                              "the derivation and a Net module; jax: custom_vjp functions "
                              "(every target prints every layer kind)")

    verify = sub.add_parser("verify", help="check the generated module against autodiff "
                                           "and finite differences")
    verify.add_argument("spec", metavar="SPEC", help="architecture spec (TOML file)")
    verify.add_argument("--style", choices=STYLES, default="vectorized")
    verify.add_argument("--target", choices=TARGETS, default="numpy",
                        help="verify the numpy (default), torch or jax module")
    verify.add_argument("--against", choices=(*AGAINST, "all"), action="append",
                        help="reference (repeatable; default all: jax, torch and fd)")
    verify.add_argument("--dtype", choices=DTYPES, default="float64")
    verify.add_argument("--seed", type=int, default=0, help="random point (default 0)")
    verify.add_argument("--batch", type=int, default=7, help="batch size (default 7)")
    verify.add_argument("-o", "--output", "--keep", metavar="FILE.py", dest="keep",
                        help="keep the verified module in FILE.py (default: a temporary file, "
                             "removed afterwards)")

    check = sub.add_parser("check", help="is a hand-derived formula, or a hand-written NumPy "
                                         "gradient function, right? (exit 0 right, 1 wrong)")
    check.add_argument("spec", metavar="SPEC", help="architecture spec (TOML file)")
    what = check.add_mutually_exclusive_group(required=True)
    what.add_argument("--formula", metavar="TEXT",
                      help="LaTeX or plain text in seed notation; a bare right-hand side "
                           "(with --wrt) or an equation whose left side names the derivative; "
                           "'-' reads it from stdin")
    what.add_argument("--function", metavar="FILE.py:NAME",
                      help="NAME(params, X, Y) -> {'W1': dC/dW1, ...}, compared with the true "
                           "gradient")
    check.add_argument("--layer", metavar="l",
                       help="with --function: check one layer's backward, NAME(params, A, dOut) "
                            "-> {'A': dC/dA, 'W': ..., ...}; l is 1..L, or L, L-1, ...")
    check.add_argument("--wrt", metavar="NAME",
                       help="what a bare formula differentiates C_0 by, e.g. 'w_{12}^{(L)}'")
    check.add_argument("--format", choices=("text", "markdown"), default="text")
    check.add_argument("--seed", type=int, default=0, help="random points (default 0)")

    for command in (derive, report, codegen, verify):  # also accepted after the command
        command.add_argument("--force", action="store_true", default=argparse.SUPPRESS,
                             help="do work estimated too big instead of refusing it")

    demo = sub.add_parser("demo", help="derive seed 000's examples on the tutorial network")
    demo.add_argument("-o", "--output", metavar="FILE", help="write to FILE (atomically)")

    imp = sub.add_parser("import", help="a PyTorch model as a spec and its current weights "
                                        "(needs the verify extra: torch)")
    imp.add_argument("model", metavar="FILE.py:NAME",
                     help="an nn.Module in FILE.py, or a function of no arguments returning one "
                          "(the file is run, as python FILE.py would)")
    imp.add_argument("--input", required=True, metavar="N",
                     help="the input's width, e.g. 784, or C,H,W for conv, e.g. 1,28,28")
    imp.add_argument("--loss", required=True, metavar="LOSS",
                     help="the torch loss, with torch's meaning: CrossEntropyLoss (logits in: a "
                          "softmax is added), MSELoss, BCEWithLogitsLoss (a sigmoid is added), "
                          "BCELoss")
    imp.add_argument("-o", "--output", required=True, metavar="SPEC.toml")
    imp.add_argument("--weights", metavar="W.npz",
                     help="also write the model's parameters under the generated module's keys")
    for command in (derive, report, codegen, verify, check, demo, imp):
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show a traceback on errors")
    return parser


def _emit(text: str, output: str | None) -> None:
    if output:
        write_atomic(output, text)
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def _proof_line(derivation, force: bool = False, what: str = "", decisive: bool = True
                ) -> tuple[str, bool]:
    """The line that says what the derivation was held against (a difference raises
    SelfCheckFailed: exit 3, nothing printed)."""
    result = ensure(derivation, decisive=decisive, force=force)
    if decisive:
        return f"Proof{what}: PROVEN equal to {describe(result)}.\n", True
    return f"Checked: equal to {describe(result)}.\n", True


def _derive(args) -> int:
    spec = Spec.from_toml(args.spec)
    letters = letter_derivation(spec, args.wrt, args.layers)  # None: derived per sample
    if letters is not None:
        return _derive_letters(args, letters)
    engine = backprop(spec)
    derivation = engine.derive(args.wrt)
    point = read_point(args.at, engine) if args.at else None
    # checked first: a derivation that differs from the truth is never printed
    line, ok = _proof_line(derivation, args.force, decisive=args.prove)
    if point is not None and hold_against_module(point, derivation) is not None:
        held = "the generated NumPy module's gradient" if all(
            "codegen" in c.SUPPORTS for c in spec.stack) else "autodiff of the reference forward"
        line += (f"Worked example: the result equals {held} at the same point (float64, rtol "
                 "1e-9).\n")
    layers = args.layers or layer_spelling(args.wrt)  # answer in the user's spelling
    text = derivation_document(derivation, args.format, args.standalone, layers,
                               force=args.force, at=point)
    if args.format == "text":
        text += "\n" + line
    else:
        print(line, end="", file=sys.stderr)
    _emit(text, args.output)
    return 0 if ok else 1


def _derive_letters(args, derivation) -> int:
    """A derivation over the batch (a batchnorm's), in letters; proven before it prints."""
    if args.at:
        raise InputError("--at does not work out a derivation over a batch with numbers yet",
                         where=args.at, hint="Leave out --at: the derivation is in letters "
                         "for every batch size, and proven before it is printed.")
    text, proven = letter_document(derivation, args.format, args.standalone)
    line = f"Proof: PROVEN equal to {'; and '.join(proven)}.\n"
    if args.format == "text":
        text += "\n" + line
    else:
        print(line, end="", file=sys.stderr)
    _emit(text, args.output)
    return 0


def _demo(args) -> int:
    engine = backprop(tutorial_spec())
    parts = [("symprop demo: seed 000's tutorial network (layers [3, 6, 6, 4], generic g, "
             "loss sse, no biases)\n\n")]
    ok = True
    for name in DEMO_TARGETS:
        derivation = engine.derive(name)
        lines = [_proof_line(derivation)]
        nested = derivation.backward
        if nested is not None:  # printed inside this derivation; proven on its own too
            step = text(nested.lhs, engine.graph.L)
            lines.append(_proof_line(nested, what=f" of the backward step {step}"))
        ok &= all(passed for _, passed in lines)
        parts.append(render_derivation(derivation) + "\n" + "".join(t for t, _ in lines) + "\n")
    _emit("".join(parts), args.output)
    return 0 if ok else 1


def _report(args) -> int:
    spec = Spec.from_toml(args.spec)
    if args.interactive:
        from .interactive import write_interactive

        path = write_interactive(spec, args.output, args.layers, force=args.force, at=args.at)
    else:
        path = write_report(spec, args.output, args.layers, force=args.force, at=args.at)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _codegen(args) -> int:
    spec = Spec.from_toml(args.spec)
    module = generate(spec, args.style, source=args.spec, force=args.force,
                      target=args.target)
    held = hold_module(spec, module)
    module.write(args.output)
    lines = module.source.count("\n")
    what = args.style if args.target == "numpy" else args.target
    print(f"wrote {args.output} ({what}, {lines} lines, {spec.n_parameters} parameters; "
          f"its gradients held against {held} at a random batch)", file=sys.stderr)
    for note in module.cautions:
        print(f"caution: {note}.", file=sys.stderr)
    return 0


def _verify(args) -> int:
    spec = Spec.from_toml(args.spec)
    against = args.against or ["all"]
    chosen = AGAINST if "all" in against else tuple(dict.fromkeys(against))
    if args.batch < 1:
        raise InputError(f"--batch must be at least 1, got {args.batch}")
    module = generate(spec, args.style, source=args.spec, force=args.force,
                      target=args.target)
    report = verify(spec, style=args.style, against=chosen, dtype=args.dtype, seed=args.seed,
                    batch=args.batch, module=module, path=args.keep)
    sys.stdout.write(str(report))
    return 0 if report.passed else 1


def _check(args) -> int:
    from .check import check_formula, check_function, check_layer

    spec = Spec.from_toml(args.spec)
    if args.function is not None:
        if args.wrt:
            raise InputError("--wrt belongs to --formula; a function returns every gradient")
        result = check_function(spec, args.function, seed=args.seed) if args.layer is None \
            else check_layer(spec, args.function, args.layer, seed=args.seed)
    else:
        if args.layer is not None:
            raise InputError("--layer belongs to --function: it checks one layer's "
                             "hand-written backward",
                             hint="e.g. symprop check SPEC --function mylayer.py:backward "
                                  "--layer 2")
        text = sys.stdin.read() if args.formula == "-" else args.formula
        result = check_formula(spec, text, args.wrt, seed=args.seed, source="--formula")
    sys.stdout.write(result.render(args.format))
    return result.exit_code


def _import(args) -> int:
    from .importing import import_model

    parts = [p.strip() for p in args.input.split(",")]
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise InputError(f"--input {args.input!r}: give the input's width, e.g. --input 784, "
                         "or its channels and positions, e.g. --input 1,28,28",
                         hint="Without the batch axis: n, C,L or C,H,W")
    shape = int(parts[0]) if len(parts) == 1 else tuple(map(int, parts))
    spec_path, weights = import_model(args.model, shape, args.loss, args.output,
                                      args.weights)
    print(f"wrote {spec_path}" + (f" and {weights}" if weights else "") + " (its forward "
          "pass equals the model's on a random batch)", file=sys.stderr)
    return 0


_COMMANDS = {"derive": _derive, "report": _report, "codegen": _codegen, "verify": _verify,
             "check": _check, "demo": _demo, "import": _import}


#: What a failure prints after "symprop COMMAND: " and its exit code; the first kind that
#: matches wins (anything not ours is a bug: exit 3, --debug shows the traceback).
_FAILURES = (
    (InputError, 2, lambda exc: f"error: {exc.message}"),
    (SympropError, 2, str),
    (RecursionError, 2, lambda exc: "error: the input is nested too deeply to process"),
    (MemoryError, 2, lambda exc: "error: out of memory; the network is too big for this "
                                 "machine"),
    (SelfCheckFailed, 3, lambda exc: f"self-check FAILED: {exc}. This is a bug in symprop, "
                                     "not in your input; please report it with your spec "
                                     "and command."),
    (Exception, 3, lambda exc: f"internal error ({type(exc).__name__}: {exc}). This is a bug "
                               "in symprop, not in your input; rerun with --debug for the "
                               "traceback and report it."),
)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    remember_interrupts()
    try:
        code = _COMMANDS[args.command](args)
        stop_if_interrupted()
        return code
    except KeyboardInterrupt:
        print(f"symprop {args.command}: interrupted; no output was written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if args.debug:
            raise
        code, text = next((code, say(exc)) for kind, code, say in _FAILURES
                          if isinstance(exc, kind))
        print(f"symprop {args.command}: {text}", file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

