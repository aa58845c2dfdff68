"""A worked example: a derivation evaluated at one point given by the user (``--at
VALUES.toml``), every step with its number beside it, as hand-worked backprop tutorials print
them.

VALUES.toml holds the parameters under the generated module's keys (``W1 = [[0.15, 0.2],
[0.25, 0.3]]``, ``b1 = [0.35, 0.35]``), one sample ``x`` and its target ``y``, and optionally
``learning_rate`` for the SGD update.  :func:`read_point` reads and checks it (a missing key,
a wrong shape or a non-number is an :class:`~symprop.errors.InputError` naming the key and
the shape expected); :class:`WorkedPoint` evaluates any expression of the network at the
point exactly (SymPy's expressions through :class:`~symprop.numeric.Evaluator` in 30-digit
mpmath arithmetic, every node by its definition); :func:`hold_against_module` compares a
parameter's result with the generated NumPy module's gradient at the same point before it is
shown.
"""

from __future__ import annotations

import functools
import math
import shutil
import tempfile
import tomllib
from pathlib import Path

import mpmath
import numpy as np
import sympy

from .errors import InputError
from .notation import Node
from .numeric import MPMATH, Evaluator
from .printing.context import DIGITS, format_number
from .proof import definitions_of
from .self_check import SelfCheckFailed

__all__ = ["DIGITS", "WorkedPoint", "hold_against_module", "read_point"]

#: Working precision of the evaluation (digits).
WORKING_DPS = 30
#: How close the generated module's float64 gradient must be to the exact number.
MODULE_RTOL = 1e-9
#: A VALUES file larger than this is refused (it is a handful of numbers).
MAX_BYTES = 5_000_000


class WorkedPoint:
    """The values of one point (parameters, x, y) and the numbers of expressions there."""

    def __init__(self, engine, arrays: dict[str, np.ndarray], x: list[float],
                 y: list[float], learning_rate: float | None, source: str):
        self.engine, self.arrays, self.source = engine, arrays, source
        self.x, self.y, self.learning_rate = x, y, learning_rate
        graph = engine.graph
        values = {s: v for s, v in zip(graph.x, x)} | {s: v for s, v in zip(graph.y, y)}
        for l, p in graph.spec.parameters():
            for index in np.ndindex(*p.shape):
                values[Node(p.kind, l, *index).symbol] = float(arrays[f"{p.key}{l}"][index])
        with mpmath.workdps(WORKING_DPS):
            self._evaluate = Evaluator(values, backend=MPMATH, resolve=definitions_of(engine))

    def value(self, expr: sympy.Expr):
        """The exact (30-digit) value of ``expr`` at the point."""
        with mpmath.workdps(WORKING_DPS):
            return self._evaluate(sympy.sympify(expr))

    def number(self, expr: sympy.Expr) -> str:
        """``expr``'s value with :data:`DIGITS` significant digits."""
        return format_number(self.value(expr))

    @functools.cached_property
    def module_gradients(self) -> dict[str, np.ndarray] | None:
        """The generated NumPy module's gradients at the point (a batch of this one sample),
        computed once for every derivation a report holds against them; for a network with a
        kind the code targets do not handle yet, JAX's or PyTorch's autodiff of the
        reference forward pass instead (None without either: the derivation itself is
        checked all the same)."""
        spec = self.engine.graph.spec
        X, Y = np.array([self.x]), np.array([self.y])
        if any("codegen" not in c.SUPPORTS for c in spec.stack):
            from .reference import gradient
            from .self_check import autodiff_backend

            backend = autodiff_backend()
            return None if backend is None else gradient(backend, spec, self.arrays, X, Y)[1]
        from .codegen import generate

        folder = Path(tempfile.mkdtemp(prefix="symprop-worked-"))
        try:
            module = generate(self.engine.graph.spec).load(folder / "worked.py")
            return module.gradients(self.arrays, X.reshape(1, *spec.input_shape), Y)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def read_point(path: str | Path, engine) -> WorkedPoint:
    """Read VALUES.toml for ``engine``'s network; any problem is exit 2 naming the key."""
    path = Path(path)
    where = str(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InputError(f"is larger than {MAX_BYTES:,} bytes", where=where,
                             hint="A VALUES file holds one sample and the parameters")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no such file", where=where) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a VALUES file", where=where) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the file ({exc.__class__.__name__})", where=where) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML ({exc})", where=where,
                         hint="Write W1 = [[0.15, 0.2], [0.25, 0.3]], x = [0.05, 0.1], "
                              "y = [0.01, 0.99]") from None
    spec = engine.graph.spec
    for l in range(1, spec.L + 1):
        choice = spec.activation_of(l)
        if choice is not None and choice.name == "g":
            raise InputError(f"layer {l} uses the generic activation g, which has no numbers",
                             where=f"{spec.source}: key 'activation'",
                             hint="A worked example needs concrete activations: give the "
                                  "spec activation = \"sigmoid\" (or any other)")
    shapes = {f"{p.key}{l}": p.shape for l, p in spec.parameters()}
    shapes |= {"x": spec.input_shape, "y": (spec.layers[-1],)}
    known = [*shapes, "learning_rate"]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InputError(f"unknown key {unknown[0]!r}", where=where,
                         hint=f"The keys of this network are {', '.join(known)}")
    arrays = {key: _array(data, key, shape, where) for key, shape in shapes.items()}
    rate = data.get("learning_rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)
                             or not math.isfinite(rate)):
        raise InputError("expected a number", where=f"{where}: key 'learning_rate'",
                         hint="Write learning_rate = 0.5")
    return WorkedPoint(engine, {k: v for k, v in arrays.items() if k not in ("x", "y")},
                       [float(v) for v in np.ravel(arrays["x"])], list(arrays["y"]),
                       None if rate is None else float(rate), where)


def _array(data: dict, key: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    expected = _shape_text(shape)
    if key not in data:
        raise InputError(f"missing key '{key}'", where=where,
                         hint=f"Give {key} as {expected}")
    value = data[key]
    found = _shape_of(value)
    if found is None:
        raise InputError("expected numbers (nested lists of numbers, all finite)",
                         where=f"{where}: key '{key}'", hint=f"Give {key} as {expected}")
    if found != shape:
        raise InputError(f"has shape {found}, expected {shape}", where=f"{where}: key '{key}'",
                         hint=f"Give {key} as {expected}")
    return np.array(value, dtype=float)


def _shape_of(value) -> tuple[int, ...] | None:
    """The shape of nested lists of finite numbers, or None when they are not that."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return () if math.isfinite(value) else None
    if not isinstance(value, list) or not value:
        return None
    shapes = {_shape_of(v) for v in value}
    if len(shapes) != 1 or None in shapes:
        return None
    return (len(value), *shapes.pop())


def _shape_text(shape: tuple[int, ...]) -> str:
    """How a value of ``shape`` is written: a list of 2 numbers, 3 lists of 2 numbers."""
    if len(shape) == 1:
        return f"a list of {shape[0]} number{'s' * (shape[0] != 1)}"
    if len(shape) == 2:
        return f"{shape[0]} list{'s' * (shape[0] != 1)} of {shape[1]} numbers (shape {shape})"
    return f"nested lists of shape {shape}"


def hold_against_module(point: WorkedPoint, derivation) -> float | None:
    """The generated NumPy module's dC/d(target) at the point (batch of one sample), or None
    for a node; raises :class:`SelfCheckFailed` when it differs from the exact number."""
    node = derivation.target
    if not node.is_parameter or point.module_gradients is None:
        return None
    spec = derivation.graph.spec
    key = next(f"{p.key}{l}" for l, p in spec.parameters() if l == node.layer
               and p.kind == node.kind)
    got = float(point.module_gradients[key][node.indices])
    exact = float(point.value(derivation.result))
    if abs(got - exact) > MODULE_RTOL * max(abs(exact), 1e-12):
        held = "the generated module's" if all("codegen" in c.SUPPORTS for c in spec.stack) \
            else "autodiff's"
        raise SelfCheckFailed(f"the worked example's dC_0/d{node} = {exact!r} differs from "
                              f"{held} {got!r} at the same point; nothing was printed")
    return got
