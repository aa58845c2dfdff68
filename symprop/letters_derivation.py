"""Derivations in letters over a whole batch (or a sequence): what seed 000's per-sample
chain rule cannot say.

A batchnorm makes node j of sample i read every sample of the batch, so its gradient is no
per-sample chain of C_0: it is derived once for any batch size n, in letters (sample indices
i and m, sums over the batch), from the formulas SymPy differentiates in
:mod:`symprop.layers.derived`; an rnn's weights, through time.  A kind that derives its
quantities this way offers ``letter_derivation(node, spec, autodiff, spell)`` on its config
(dispatch by what a layer can do, not by its kind's name); this module holds what every
such derivation shares:

* the steps as data (:mod:`symprop.layers.letter_steps`): words, equations of SymPy
  expressions, how each symbol prints, and the proofs of each derivation;
* :func:`prove`: every proof of a derivation, a difference being exit 3;
* :func:`letter_derivation`: the derivation of a name, or None when no layer offers one;
* :func:`letter_document`: the derivation as LaTeX, Markdown, HTML or text, after its proofs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import NameLookupError
from .layers import with_article
from .layers.letter_steps import Differs, LetterDerivation
from .notation import layer_label, layer_spelling
from .self_check import SelfCheckFailed, autodiff_backend
from .templating import render

__all__ = ["Autodiff", "letter_derivation", "letter_document", "not_derived", "prove",
           "speller"]


@dataclass(frozen=True)
class Autodiff:
    """What a layer's proofs differentiate with: JAX or PyTorch (``name``), or None for
    high-precision differences; :meth:`ops` gives the reference's array functions."""

    name: str | None

    def ops(self, spec):
        from .reference import _Ops, load_backend

        return _Ops(self.name, spec), load_backend(self.name)


def prove(derivation: LetterDerivation) -> list[str]:
    """What ``derivation`` was held against; a difference is :class:`SelfCheckFailed`
    (exit 3): a derivation that differs is never printed."""
    try:
        return derivation.prove()
    except Differs as error:
        raise SelfCheckFailed(f"{error}: this is a bug in symprop; please report it with the "
                              "spec") from None


def speller(spec, layers: str):
    """A layer's number as printed: ``2``, or relative to the output layer, ``L-1``."""
    return str if layers == "absolute" else (lambda l: layer_label(l, spec.L))


def letter_derivation(spec, name: str, layers: str | None = None) -> LetterDerivation | None:
    """The letter derivation of ``name`` from the first layer that offers one for it, None
    when the network needs none (every layer derives per sample) or no layer offers it;
    ``layers``: "relative" (L, L-1) or "absolute", by default as ``name`` spells its layer."""
    offering = [c for c in spec.stack if hasattr(c, "letter_derivation")]
    if not offering:
        return None
    from .graph import build_graph

    try:
        node = build_graph(spec).resolve(name)
    except NameLookupError:
        if re.match(r"\s*\\?(?:mu|sigma|hat|xhat|μ|σ)", name):  # a statistic of the batch
            raise not_derived(spec, name) from None
        raise
    truth, spell = Autodiff(autodiff_backend()), speller(spec, layers or layer_spelling(name))
    for config in offering:
        derivation = config.letter_derivation(node, spec, truth, spell)
        if derivation is not None:
            derivation.network = spec.name
            return derivation
    raise not_derived(spec, name)


def not_derived(spec, name: str, verb: str = "Derive") -> NameLookupError:
    """The error for a name no layer of ``spec`` derives in letters (``verb`` it, instead:
    "Derive", or "Check a derivative of")."""
    offering = [c for c in spec.stack if hasattr(c, "letter_derivation")]
    names = "; ".join(c.letter_names(spec) for c in offering)
    first = offering[0]
    return NameLookupError(
        f"{name} is not derived step by step in this network: with {with_article(first.kind)} "
        f"layer (layer {first.index}) the derivations cover that layer's own quantities",
        hint=f"{verb} {names}, or use symprop codegen SPEC -o FILE.py (or symprop verify "
             "SPEC) for every gradient: the generated code is checked against autodiff.")


def letter_document(derivation: LetterDerivation, format: str = "latex",
                    standalone: bool = False) -> tuple[str, list[str]]:
    """The proven derivation as a document, and what it was held against."""
    from .documents import FORMATS, wrap

    proven = prove(derivation)
    fmt = FORMATS[format]
    if fmt.dialect is None:
        return render("letters.txt.j2", d=derivation.context("text")), proven
    body = render("documents/letters_page.j2", dialect=fmt.dialect,
                  d=derivation.context("latex"))
    title = f"Backpropagation in the network {derivation.network}"
    return (wrap(body, fmt, title) if standalone else body), proven
