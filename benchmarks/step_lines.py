"""Where one training step's time goes, line by line, in one process.

Every top-level statement of the generated module's ``_prepare``, ``_forward``,
``_batch_loss`` and ``_backward`` (and of the hand-written ``best`` step of
``codegen_step.py``, for comparison) is wrapped in a timer; the step runs --repeat times after
a warm-up and each line's median time is printed beside it, with the share of the step.

    python benchmarks/step_lines.py [--dtype float64] [--batch 256] [--repeat 200]
                                    [--network big|small]

Statements are timed as written: a statement that calls a helper (``_sigmoid(Z1, out=Z1)``)
is one line.  The timers themselves cost about 0.1 us a line, so read small networks'
figures as an upper bound.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

import codegen_step
import harness
import numpy as np

FUNCTIONS = ("_prepare", "_forward", "_batch_loss", "_backward")


def instrumented(fn, record):
    """``fn`` with every top-level statement of its body timed into ``record[line]``."""
    source = textwrap.dedent(inspect.getsource(fn))
    tree = ast.parse(source)
    body = tree.body[0].body
    lines = source.splitlines()
    timed = []
    for stmt in body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            timed.append(stmt)  # the docstring
            continue
        text = " ".join(line.strip() for line in lines[stmt.lineno - 1:stmt.end_lineno])
        key = f"{fn.__name__}: {text}"
        record.setdefault(key, [])
        start = ast.parse("__t0 = __clock()").body[0]
        stop = ast.parse(f"__record[{key!r}].append(__clock() - __t0)").body[0]
        if isinstance(stmt, ast.Return):  # time the value, then return it
            value = ast.Assign(targets=[ast.Name("__value", ast.Store())], value=stmt.value)
            timed += [start, value, stop, ast.Return(ast.Name("__value", ast.Load()))]
        else:
            timed += [start, stmt, stop]
    tree.body[0].body = timed
    tree.body[0].decorator_list = []
    ast.fix_missing_locations(tree)
    scope = dict(fn.__globals__, __clock=time.perf_counter, __record=record)
    exec(compile(tree, f"<timed {fn.__name__}>", "exec"), scope)  # noqa: S102 (our own code)
    return scope[fn.__name__]


def per_line(step, record, repeat):
    for _ in range(20):
        step()
    for values in record.values():
        values.clear()
    totals = []
    for _ in range(repeat):
        begin = time.perf_counter()
        step()
        totals.append(time.perf_counter() - begin)
    return statistics.median(totals)


def show(title, record, total):
    print(f"\n{title}: {total * 1e6:.1f} us per step (median, timers included)")
    for key, values in record.items():
        if values:
            t = statistics.median(values)
            print(f"{t * 1e6:9.1f} us {100 * t / total:5.1f}%  {key[:110]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--network", choices=("big", "small"), default="big")
    args = parser.parse_args()

    from symprop import Spec
    from symprop.codegen import generate

    net = codegen_step.BIG if args.network == "big" else codegen_step.SMALL
    path = Path(tempfile.mkdtemp(prefix="symprop-lines-")) / "step.py"
    generate(Spec(**net)).write(path)
    module = harness.load_module(path)
    params, X, Y = codegen_step.data(net["layers"], args.batch, np.dtype(args.dtype))

    record: dict[str, list[float]] = {}
    for name in FUNCTIONS:
        setattr(module, name, instrumented(getattr(module, name), record))
    total = per_line(lambda: module.loss_and_gradients(params, X, Y), record, args.repeat)
    show(f"generated step, {args.network}, {args.dtype}, batch {args.batch}", record, total)

    if args.network == "big":
        record = {}
        best = instrumented(codegen_step.numpy_best, record)
        total = per_line(lambda: best(params, X, Y), record, args.repeat)
        show("hand-written best step", record, total)


if __name__ == "__main__":
    main()
