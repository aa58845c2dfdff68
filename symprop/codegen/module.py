"""Generated NumPy modules (design.md section 5): build the template context, render, load.

``generate(spec, style)`` runs the pipeline's printing half: derivation (the chain-rule
engine) -> row forms (:mod:`.rules`) -> NumPy code (:mod:`.printer`) -> Jinja2 template
(``templates/codegen/<style>.py.j2``).  The result, a :class:`GeneratedModule`, holds the
source and can write it to a real file and import it from there (so tracebacks, ``inspect``
and debuggers see the code a user reads).
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from ..activations import generic_activation
from ..budget import scalar_estimate
from ..errors import InputError
from ..io import write_atomic
from ..spec import Spec
from ..templating import render
from .printer import _generic_error
from .rules import Z
from .scalar import scalar_context
from .vectorized import vectorized_context

__all__ = ["STYLES", "TARGETS", "GeneratedModule", "generate", "load_module"]

STYLES = ("vectorized", "scalar")
#: The library a module computes with: NumPy (both styles), torch (autograd Functions) or
#: JAX (custom_vjp functions).
TARGETS = ("numpy", "torch", "jax")
_module_counter = itertools.count()


@dataclass
class GeneratedModule:
    """A generated module: its source and what produced it."""

    spec: Spec
    style: str
    source: str
    #: The template context the source was rendered from (inspectable).
    context: dict = field(repr=False)
    target: str = "numpy"

    def write(self, path: str | Path) -> Path:
        """Write the source atomically to ``path``."""
        return write_atomic(path, self.source)

    @property
    def name(self) -> str:
        """A module name for its file: the spec's name as an identifier, and the style."""
        return f"{_module_name(self.spec)}_{self.style if self.target == 'numpy' else self.target}"

    def load(self, path: str | Path | None = None) -> ModuleType:
        """Write the source to ``path`` (or a temporary file) and import it from there."""
        if path is None:
            path = Path(tempfile.mkdtemp(prefix="symprop-")) / f"{self.name}.py"
        self.write(path)
        return load_module(path)

    @property
    def cautions(self) -> list[str]:
        """Numerical caveats of this module (also in its header)."""
        return list(self.context["cautions"])

    def __str__(self) -> str:
        return self.source


def _unread_outputs(text: str) -> set[str]:
    """The names ``_backward`` unpacks from its As and Zs but never reads."""
    start = text.find("\ndef _backward(")
    if start < 0:
        return set()
    body = text[start:text.find("\ndef ", start + 1)]
    unread = set()
    for unpack in re.finditer(r"^    \(?([\w, ]+?),?\)? = (?:As|Zs)$", body, re.MULTILINE):
        rest = body[:unpack.start()] + body[unpack.end():]
        unread |= {name.strip() for name in unpack.group(1).split(",")
                   if name.strip() and not re.search(rf"\b{name.strip()}\b", rest)}
    return unread


def _module_name(spec: Spec) -> str:
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in spec.name).strip("_")
    return cleaned if cleaned and not cleaned[0].isdigit() else "network"


def load_module(path: str | Path, name: str | None = None) -> ModuleType:
    """Import a Python file as a fresh module object (not cached under its name)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"cannot import {path}: no such file")
    name = name or f"symprop_generated_{next(_module_counter)}_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise InputError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


_CONTEXTS = {"vectorized": vectorized_context, "scalar": scalar_context}


def generate(spec: Spec, style: str = "vectorized", *, source: str | None = None,
             force: bool = False, target: str = "numpy", with_input: bool = False
             ) -> GeneratedModule:
    """Generate the NumPy module of ``spec`` (``source``: the spec's path, for the header),
    or with ``target="torch"`` (``"jax"``) the module whose autograd Functions' (custom_vjp
    functions') backward is the derivation.

    The scalar style writes a line per weight: a big network is refused before any work
    (:class:`~symprop.budget.TooBigError`) unless ``force``.  ``with_input`` (vectorized
    NumPy): ``gradients`` also returns dC/dX under ``"X"``.
    """
    spec.require("codegen", "symprop codegen (and verify)")
    if target not in TARGETS:
        raise InputError(f"unknown target {target!r}", hint=f"Use one of {', '.join(TARGETS)}")
    if style not in _CONTEXTS:
        raise InputError(f"unknown style {style!r}", hint=f"Use one of {', '.join(STYLES)}")
    if with_input and (style, target) != ("vectorized", "numpy"):
        raise InputError(f"with_input is for the vectorized NumPy module, not the {style} "
                         f"style for {target}", hint="Call generate(spec, with_input=True)")
    if style == "scalar":
        spec.require("scalar", "symprop codegen --style scalar")
        scalar_estimate(spec).check(force)
    if not spec.n_parameters and not with_input:
        raise InputError("the network has no parameters to learn, so there is no gradient "
                         "code to generate", where=spec.source,
                         hint="Add a dense or custom layer, or a normalisation with parameters")
    for l in range(1, spec.L + 1):
        choice = spec.activation_of(l)
        if choice is not None and choice.name == "g":
            raise _generic_error(generic_activation(l)(Z), source or spec.source)
    if target != "numpy":
        # imported here: SymPy's TorchPrinter imports torch itself, 1.2 s of start-up that no
        # other command should pay
        from .framework import framework_context

        context = framework_context(spec, source or spec.source, target)
        text = render(f"codegen/{target}.py.j2", **context)
        return GeneratedModule(spec=spec, style=style, source=text, context=context,
                               target=target)
    context = _CONTEXTS[style](spec, source or spec.source, **(
        {"with_input": True} if with_input else {}))
    text = render(f"codegen/{style}.py.j2", **context)
    unread = _unread_outputs(text)
    if unread:  # a conv layer's backward reads its windows, not its input: unpack as _
        for key in ("a_names", "z_names"):
            names = [n.strip() for n in context[key].split(",") if n.strip()]
            context[f"backward_{key}"] = ", ".join("_" if n in unread else n for n in names) \
                + ("," if len(names) == 1 else "")
        text = render(f"codegen/{style}.py.j2", **context)
    return GeneratedModule(spec=spec, style=style, source=text, context=context)
