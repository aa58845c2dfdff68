"""The console entry point: a Ctrl-C while symprop is still loading exits 130 quietly.

After a Ctrl-C the process ends at once (``os._exit``) once its message is out: nothing is
left to write by then, and the interpreter's usual teardown would run JAX's and PyTorch's
exit hooks on work the interrupt cut short, which can crash (SIGSEGV instead of 130).
"""

from __future__ import annotations

import os
import sys

__all__ = ["main"]


def main() -> int:
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        print("symprop: interrupted", file=sys.stderr)
        return 130
    code = cli_main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    return code
