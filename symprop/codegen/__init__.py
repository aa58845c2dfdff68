"""NumPy backprop modules generated from the derivation (design.md section 5).

``generate(spec, style)`` -> :class:`GeneratedModule` (``.source``, ``.write(path)``,
``.load()``); :func:`load_module` imports any generated file.  See :mod:`.rules` for how
the derivation becomes array code, :mod:`.printer` for the NumPy printer and
``templates/codegen/`` for the module templates.
"""

from .module import STYLES, TARGETS, GeneratedModule, generate, load_module

__all__ = ["STYLES", "TARGETS", "GeneratedModule", "generate", "load_module"]
