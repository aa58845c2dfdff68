"""Timing each contender in its own process (design.md section 8), shared by the benchmarks.

Two array libraries in one process steal each other's cores (their idle threads spin), which
is not what a user sees.  So every contender -- generated code, hand-written NumPy, PyTorch,
JAX, the matmul floor -- runs as its own ``python SCRIPT --worker NAME ...`` process, which
imports only its own library, times its calls and prints one JSON line.  The processes are
alternated over rounds (the order rotated each round), each figure is a median, and a ratio
is the median over rounds of two figures measured in the same round, so a burst of noise on a
shared machine moves one round, not one side of a ratio.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

__all__ = ["agree", "alternate", "load_module", "machine", "median", "ratio", "report",
           "time_calls", "worker_command"]


def time_calls(fn: Callable[[], object], repeat: int, warmup: int = 3,
               seconds: float = 0.0) -> float:
    """Median seconds of ``repeat`` calls of ``fn`` after ``warmup`` untimed ones; with
    ``seconds``, the warm-up lasts at least half of it and the timed calls at least all of it
    (a fast step's first few hundred calls in a new process run slower: JAX's float64 step at
    batch 32 took 0.8 ms over 20 calls and 0.56 ms over 300)."""
    start = time.perf_counter()
    done = 0
    while done < warmup or time.perf_counter() - start < seconds / 2:
        fn()
        done += 1
    runs = []
    start = time.perf_counter()
    while len(runs) < repeat or time.perf_counter() - start < seconds:
        begin = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - begin)
    return statistics.median(runs)


def agree(a: list[float], b: list[float], dtype: str) -> bool:
    """Do two contenders' checks (loss, then each gradient's sum of magnitudes) match, to
    float32's or float64's accuracy? A figure counts only when they do."""
    rtol = 1e-3 if dtype == "float32" else 1e-8
    return len(a) == len(b) and all(abs(x - y) <= rtol * max(abs(y), 1e-12) for x, y in zip(a, b))


def report(result: dict) -> None:
    """A worker's answer: one JSON line on stdout (the parent reads the last line)."""
    print(json.dumps(result), flush=True)


def alternate(commands: dict[str, list[str]], rounds: int) -> dict[str, list[dict]]:
    """Run every contender's command once per round, each in a fresh process.

    Returns name -> one parsed JSON answer per round.  The order of the contenders is rotated
    from round to round, so none is always first after a pause or last in a warm cache.
    """
    names = list(commands)
    out: dict[str, list[dict]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            run = subprocess.run(commands[name], capture_output=True, text=True, check=False)
            if run.returncode != 0:
                raise RuntimeError(f"contender {name!r} failed:\n{run.stderr[-3000:]}")
            out[name].append(json.loads(run.stdout.strip().splitlines()[-1]))
        print(f"  round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    return out


def median(per_round: dict[str, list[dict]], name: str, key: str) -> float:
    """The median over rounds of one contender's time for ``key``."""
    return statistics.median(answer["times"][key] for answer in per_round[name])


def ratio(per_round: dict[str, list[dict]], a: str, b: str, key: str) -> float:
    """Median over rounds of time(a) / time(b) for ``key``, both measured in the same round."""
    return statistics.median(x["times"][key] / y["times"][key]
                             for x, y in zip(per_round[a], per_round[b]))


def machine() -> str:
    """The machine the figures were measured on, for the printout."""
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    return (f"{cores} cores ({usable} usable by this process), {platform.machine()}, "
            f"Python {platform.python_version()}")


def load_module(path) -> object:
    """A generated module imported from its file (in the worker, which times only it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("generated_step", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker_command(script: str, name: str, *args: str) -> list[str]:
    """The command line of one contender's worker process."""
    return [sys.executable, script, "--worker", name, *args]
