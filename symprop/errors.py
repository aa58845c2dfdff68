"""Errors that name what is wrong, where, and how to fix it.

Every error a user can cause by their input derives from :class:`InputError`; the command
line turns it into a one-paragraph message on stderr and exit code 2.
"""

from __future__ import annotations

__all__ = ["ExpressionError", "InputError", "NameLookupError", "SpecError", "SympropError"]


class SympropError(Exception):
    """Base class of every error symprop raises on purpose."""


class InputError(SympropError, ValueError):
    """Bad user input: exit code 2 from the command line.

    ``where`` names the file, spec key or position; ``hint`` says how to fix it.
    """

    def __init__(self, what: str, *, where: str | None = None, hint: str | None = None):
        self.what = what
        self.where = where
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        parts = [f"{self.where}: {self.what}" if self.where else self.what]
        if self.hint:
            parts.append(self.hint[:1].upper() + self.hint[1:])
        return " ".join(p if p.endswith((".", ":", "?")) else p + "." for p in parts)


class SpecError(InputError):
    """The architecture spec is unreadable or invalid."""


class ExpressionError(InputError):
    """A user expression (activation, loss, formula) could not be parsed safely.

    ``text`` and ``position`` locate the problem; :attr:`message` draws a caret under it.
    """

    def __init__(self, what: str, *, text: str = "", position: int | None = None,
                 where: str | None = None, hint: str | None = None):
        self.text = text
        self.position = position
        super().__init__(what, where=where, hint=hint)

    @property
    def message(self) -> str:
        base = super().message
        if self.position is None or not self.text:
            return base
        line, column = self.excerpt()
        return f"{base}\n    {line}\n    {' ' * column}^"

    def excerpt(self, width: int = 72) -> tuple[str, int]:
        """The line of ``text`` holding ``position`` (cut to ``width``) and the caret column."""
        start = self.text.rfind("\n", 0, self.position) + 1
        end = self.text.find("\n", self.position)
        line = self.text[start:end if end >= 0 else None]
        column = self.position - start
        if len(line) > width:
            left = max(0, min(column - width // 2, len(line) - width))
            line, column = line[left:left + width], column - left
        return line, column


class NameLookupError(InputError):
    """A parameter or node name (``--wrt``) does not exist in the network."""
