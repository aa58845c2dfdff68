"""What every check result shares: the exit code, RIGHT/WRONG, and its templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..spec import Spec
from .diagnosis import Finding
from .identity import DIGITS

__all__ = ["CheckResult", "Counterexample", "FormulaCheck"]

PROBES = 3


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


@dataclass(frozen=True)
class Counterexample:
    """A point where the formula and the truth differ, with both values and every value
    they depend on (printed to 12 digits, so both can be recomputed by hand)."""

    seed: int
    formula_value: str
    true_value: str
    #: (name, value) of each node, parameter and g application either side reads; for a
    #: formula about the batch, the parameters (and n) only.
    values: tuple[tuple[str, str], ...]
    #: The stand-in for each generic g the sides read: g^(L)(x) = alpha tanh(beta x + ..) ..
    generic: tuple[str, ...] = ()
    case: str = ""
    #: A formula about the batch: (sample, its (name, value) pairs) for every sample.
    samples: tuple[tuple[int, tuple[tuple[str, str], ...]], ...] = ()

    def where(self, width: int = 88) -> list[str]:
        """The values as lines of at most ``width`` characters: "where a = 1, y = 2", then
        "sample 0: ..." per sample."""
        def wrap(head: str, pairs) -> list[str]:
            lines, line, fresh = [], head, True
            for k, (name, value) in enumerate(pairs):
                item = f"{name} = {value}" + ("," if k < len(pairs) - 1 else "")
                if not fresh and len(line) + 1 + len(item) > width:
                    lines.append(line)
                    line = " " * len(head)
                line, fresh = f"{line} {item}", False
            return lines + [line]
        out = wrap("where", self.values) if self.values else []
        for sample, pairs in self.samples:
            out += wrap(f"{'where ' if not out else ''}sample {sample}:", pairs)
        return out


@dataclass
class FormulaCheck(CheckResult):
    """The verdict on one formula (``symprop check --formula``)."""

    template: ClassVar[str] = "formula"

    formula: str
    spec: Spec
    target: str
    right: bool
    sides: list[dict] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    counterexample: Counterexample | None = None
    notes: list[str] = field(default_factory=list)
    cases: int = 1
    #: Which values of a general formula's layer letters were checked, and which left out.
    coverage: list[str] = field(default_factory=list)
    #: A matrix formula's sides and their shapes ("dC/dW^(L): (n_L, n_{L-1}) = (4, 6)").
    shapes: list[str] = field(default_factory=list)
    #: What is wrong beyond the values (a matrix formula's shapes).
    problem: str = ""
    seconds: float = 0.0
    #: Why the formula cannot be evaluated as written (when a fix makes it right).
    unreadable: str = ""

    def template_context(self) -> dict:
        return {"digits": DIGITS, "probes": PROBES}
