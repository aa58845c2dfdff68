"""A Ctrl-C that cannot be lost.

Python turns SIGINT into ``KeyboardInterrupt`` wherever the interpreter happens to be; when
that is a callback whose exceptions are ignored (JAX's garbage-collection hook is one), the
interrupt vanishes and the command would finish and write its output.  The command line
installs :func:`remember_interrupts`, which also records the interrupt, and every output
file is written only after :func:`stop_if_interrupted` has looked at that record.
"""

from __future__ import annotations

import signal
import sys
import threading

__all__ = ["remember_interrupts", "stop_if_interrupted"]

_seen = False


def _on_sigint(signum, frame):
    global _seen
    _seen = True
    raise KeyboardInterrupt


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
