"""``symprop check SPEC --function FILE.py:NAME``: is a hand-written NumPy gradient right?

Like ``torch.autograd.gradcheck``, but it explains the error.  ``NAME(params, X, Y)`` must
return ``{"W1": dC/dW1, "b1": ..., ...}`` (design.md section 5: W^(l)[j, k] = w_jk^(l), one
sample per row, the spec's reduction).  It is called at a random point and each array is
compared with the true gradient -- the generated vectorized module, itself proven against
JAX, PyTorch and finite differences.  For each parameter the report says whether the shape
is right, whether the values are, and if not, what the difference looks like: transposed, a
sign, summed over the batch instead of averaged (a factor n), or which entries differ.

The user's file is their own code, imported and run as ``pytest`` would run a test file;
nothing else they type is executed.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..errors import InputError
from ..spec import Spec
from ..verify import random_inputs
from .arrays import ATOL, RTOL, Batch, ParameterVerdict, compare
from .result import CheckResult

__all__ = ["FunctionCheck", "ParameterVerdict", "check_function", "load_function"]

@dataclass
class FunctionCheck(CheckResult):
    """The verdict on a NumPy gradient function."""

    template: ClassVar[str] = "function"

    function: str
    spec: Spec
    batch: int
    parameters: list[ParameterVerdict] = field(default_factory=list)
    problem: str = ""
    seconds: float = 0.0

    @property
    def right(self) -> bool:
        return not self.problem and all(p.right for p in self.parameters)

    def template_context(self) -> dict:
        return {"atol": ATOL, "rtol": RTOL}


def load_function(reference: str, flag: str = "--function",
                  example: str = "mygrad.py:gradients") -> Callable:
    """``FILE.py:NAME`` -> the function (the file is imported as a module)."""
    from ..codegen.module import load_module

    path, sep, name = reference.rpartition(":")
    if not sep or not path or not name.isidentifier() or name.startswith("__"):
        raise InputError(f"{flag} takes FILE.py:NAME, not {reference!r}",
                         hint=f"e.g. {flag} {example}")
    if not Path(path).is_file():
        raise InputError(f"{path}: no such file")
    folder = str(Path(path).resolve().parent)
    sys.path.insert(0, folder)  # as `python FILE.py` would: modules beside it import
    try:
        module = load_module(path)
    except InputError:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 -- the user's code may raise anything
        frame = user_frame(exc, path)
        raise InputError(f"importing {path} {_raised(exc)}",
                         where=frame and f"{path}:{frame.lineno}") from None
    finally:
        sys.path.remove(folder)
    function = vars(module).get(name)  # a name the file defines, not an attribute of modules
    if not callable(function):
        names = sorted(n for n, v in vars(module).items() if callable(v) and not
                       n.startswith("_") and getattr(v, "__module__", None) == module.__name__)
        raise InputError(f"{path} has no {'model' if flag == 'import' else 'function'} "
                         f"{name!r}",
                         hint=f"It defines: {', '.join(names) or 'no functions'}")
    return function


def user_frame(exc: BaseException, path: str | None, fallback: bool = False):
    """The last frame of ``exc``'s traceback in the file ``path`` (the user's own line), or
    with ``fallback`` the last frame anywhere; None if there is none."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if path is not None and
           Path(f.filename).resolve() == Path(path).resolve()]
    return (own or (frames if fallback else []) or [None])[-1]


def _raised(exc: BaseException) -> str:
    """``raised ValueError: ...``; ``called sys.exit(1)`` for a SystemExit, which would
    otherwise end symprop without a word."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({'' if exc.code is None else repr(exc.code)})"
    return f"raised {type(exc).__name__}: {exc}"


def batch_size(spec: Spec) -> int:
    """A batch size no width equals, so a batch-sized axis cannot pass for a layer's."""
    n = 5
    while n in spec.layers:
        n += 1
    return n


def check_function(spec: Spec, function: Callable | str, *, seed: int = 0) -> FunctionCheck:
    """Call ``function(params, X, Y)`` at a random point and compare with the true gradient."""
    from ..codegen import generate  # the codegen package imports symprop's version

    spec.require("check_function", "symprop check --function")
    start = time.perf_counter()
    label = function if isinstance(function, str) else getattr(function, "__name__", "function")
    if isinstance(function, str):
        function = load_function(function)
    module = generate(spec, "vectorized").load()
    batch = batch_size(spec)
    params, X, Y = random_inputs(spec, module, seed=seed, batch=batch)
    truth = module.gradients(params, X, Y)
    result = FunctionCheck(label, spec, batch)
    got, result.problem = call_user(function, {k: v.copy() for k, v in params.items()},
                                    X.copy(), Y.copy(), keys=list(truth))
    if not result.problem:
        for name, want in truth.items():
            result.parameters.append(compare(name, want, got.get(name),
                                             Batch(batch, spec.reduction)))
        extra = sorted(set(map(str, got)) - set(truth))
        if extra:
            result.problem = f"it returned keys the network does not have: {', '.join(extra)}"
    result.seconds = time.perf_counter() - start
    return result


def call_user(function: Callable, *args, keys: list[str]) -> tuple[dict, str]:
    """``function(*args)`` -> (its dict, "") or ({}, what went wrong: it raised (with the
    file and line), or it returned something else than a dict)."""
    try:
        got = function(*args)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 -- the user's code may raise anything
        code = getattr(function, "__code__", None)
        frame = user_frame(exc, code and code.co_filename, fallback=True)
        return {}, f"calling it {_raised(exc)}" + (
            f" (at {Path(frame.filename).name}:{frame.lineno})" if frame else "")
    if not isinstance(got, dict):
        return {}, f"it returned {type(got).__name__}, not a dict of arrays keyed {', '.join(keys)}"
    return got, ""
