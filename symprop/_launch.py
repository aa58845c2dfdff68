"""The console entry point: a Ctrl-C while symprop is still loading exits 130 quietly."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> int:
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        print("symprop: interrupted", file=sys.stderr)
        return 130
    return cli_main()
