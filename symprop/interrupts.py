"""A Ctrl-C that cannot be lost.

Python turns SIGINT into ``KeyboardInterrupt`` wherever the interpreter happens to be; when
that is a callback whose exceptions are ignored (JAX's garbage-collection hook is one), the
interrupt vanishes and the command would finish and write its output.  The command line
installs :func:`remember_interrupts`, which also records the interrupt, and every output
file is written only after :func:`stop_if_interrupted` has looked at that record.

A Ctrl-C that lands inside JAX's or PyTorch's own Python code (JAX's garbage-collection hook
runs inside its compiler) is only recorded there: an exception thrown through their native
frames can crash the process (SIGSEGV instead of exit 130).  The work stops at its next step
(:func:`symprop.progress.progress` looks between steps) or before any output is written; a
second Ctrl-C stops it at once.
"""

from __future__ import annotations

import signal
import sys
import threading

__all__ = ["remember_interrupts", "stop_if_interrupted"]

_seen = False
_FRAGILE = frozenset({"jax", "jaxlib", "torch"})  # packages whose frames an exception must not cross


def _inside_fragile_code(frame) -> bool:
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).partition(".")[0] in _FRAGILE:
            return True
        frame = frame.f_back
    return False


def _on_sigint(signum, frame):
    global _seen
    if _seen or not _inside_fragile_code(frame):
        _seen = True
        raise KeyboardInterrupt
    _seen = True


def _quiet_about_interrupts(usual):
    """``usual`` unraisable-exception hook, silent about a Ctrl-C (already recorded)."""
    def hook(unraisable):
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            usual(unraisable)
    hook.quiet_about_interrupts = True
    return hook


def remember_interrupts() -> None:
    """Record every Ctrl-C of this process (only the main thread may install a handler)."""
    global _seen
    _seen = False
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)
        if not getattr(sys.unraisablehook, "quiet_about_interrupts", False):
            sys.unraisablehook = _quiet_about_interrupts(sys.unraisablehook)


def stop_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C arrived, even one something swallowed."""
    if _seen:
        raise KeyboardInterrupt
