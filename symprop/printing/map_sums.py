"""How sums over the nodes of a map print (conv and pooling layers): the letters of a
map's axes in a sum's general term (a_{0,p,q}^(1)), and a layer's result for all its weights
or input entries at once in letters (a conv's correlations), proven before it is shown."""

from __future__ import annotations

import sympy

from ..graph import C0
from ..notation import node_of

__all__ = ["MAP_LETTERS", "index_form_view", "map_letters", "map_sum"]

#: The letters of a map's axes in general terms: channel, then positions (z_{o,p,q}).
MAP_LETTERS = "opq"


def map_letters(symbols) -> tuple[tuple, tuple[str, ...]] | None:
    """For nodes of a map (several indices): the general indices -- an axis's value where
    every node shares it, its letter (o, p, q) where they differ -- and the letters that vary;
    None for nodes with one index."""
    nodes = [node_of(s) for s in symbols]
    if any(n is None or len(n.indices) < 2 for n in nodes):
        return None
    columns = list(zip(*(n.indices for n in nodes)))
    indices = tuple(values[0] if len(set(values)) == 1 else MAP_LETTERS[axis]
                    for axis, values in enumerate(columns))
    return indices, tuple(i for i in indices if isinstance(i, str))


def map_sum(group) -> tuple[str, ...] | None:
    """The letters a group's sum runs over when it runs over the nodes of a map."""
    found = map_letters({p.factors[0].denominator for p in group.paths}) \
        if len(group.paths) > 1 else None
    return found[1] if found else None


def index_form_view(derivation, flavor, p) -> dict | None:
    """The result for every weight (or input entry) of a layer at once, in letters, when the
    layer writes one (a conv layer: a correlation); proven equal to the engine's result at
    the target's own indices before it is shown."""
    graph, target = derivation.graph, derivation.target
    owners = [target.layer] if target.is_parameter else \
        list(graph.consumers[0 if target.kind == "x" else target.layer])
    layer = graph.layers[owners[0]] if len(owners) == 1 else None
    form = layer.index_form(target) if hasattr(layer, "index_form") else None
    if form is None:
        return None
    from ..numeric import Evaluator
    from ..proof import _generic_layers, definitions_of, random_point

    engine = derivation.engine  # both sides at a random point, every delta by its definition
    ev = Evaluator(random_point(graph, 0), resolve=definitions_of(engine),
                   generic=_generic_layers(graph, 0))
    got, want = ev(form["concrete"]), ev(derivation.result)
    if abs(got - want) > 1e-9 * max(1.0, abs(want)):
        from ..self_check import SelfCheckFailed

        raise SelfCheckFailed(f"the index form of {target} differs from its derivation")
    pr = p.doprint
    return {"equation": f"{pr(sympy.Derivative(C0, form['lhs']))} = "
                        f"{flavor.sum_over_all(form['letters'], pr(form['rhs']))}",
            "words": form["words"]}
