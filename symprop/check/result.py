"""What every check result shares: the exit code, RIGHT/WRONG, and its templates."""

from __future__ import annotations

from typing import ClassVar

__all__ = ["CheckResult"]


class CheckResult:
    """Mixin of :class:`FormulaCheck` and :class:`FunctionCheck` (which set ``right``).

    ``template`` names ``templates/check/<template>.{txt,md}.j2``; :meth:`template_context`
    adds what the template needs beside ``check``.
    """

    template: ClassVar[str]
    right: bool

    @property
    def exit_code(self) -> int:
        return 0 if self.right else 1

    @property
    def verdict(self) -> str:
        return "RIGHT" if self.right else "WRONG"

    def template_context(self) -> dict:
        return {}

    def render(self, format: str = "text") -> str:
        from ..templating import render

        suffix = "md" if format == "markdown" else "txt"
        return render(f"check/{self.template}.{suffix}.j2", check=self,
                      **self.template_context())

    def __str__(self) -> str:
        return self.render("text")

    def _repr_markdown_(self) -> str:
        return self.render("markdown")
