"""`check --formula`'s corrections on 1-D conv networks read back RIGHT.

derive's own result for a random node of a random 1-D conv stack (a conv weight, a map
entry, a z), plain text or LaTeX, with one node swapped for a sibling of the formula (the
same kind and layer, other indices: the slip of a hand derivation) is WRONG, and check's
first finding names the swap and writes a corrected formula that is RIGHT when checked
again.  A 1-D map's node has two indices: a correction that printed them run together
(a_{01}, which reads back as node 1 of a flat layer) was lost this way.
"""

import sympy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from symprop import InputError, Spec
from symprop.check import check_formula
from symprop.derivation import backprop
from symprop.errors import NameLookupError
from symprop.notation import node_of
from symprop.printing.latex import SeedLatexPrinter
from symprop.printing.text import text


@st.composite
def conv1d_stacks(draw):
    kernel = draw(st.integers(1, 3))
    layers = [{"kind": "conv1d", "channels": draw(st.integers(1, 2)), "kernel": kernel,
               "stride": draw(st.integers(1, 2)), "padding": draw(st.integers(0, kernel - 1)),
               "activation": "tanh", "bias": draw(st.booleans())}]
    second = draw(st.sampled_from(["conv1d", "maxpool1d", "avgpool1d", None]))
    if second == "conv1d":
        k = draw(st.integers(1, 2))
        layers.append({"kind": "conv1d", "channels": draw(st.integers(1, 2)), "kernel": k,
                       "padding": draw(st.integers(0, k - 1)), "activation": "sigmoid"})
    elif second:
        layers.append({"kind": second, "kernel": 2, "stride": draw(st.integers(1, 2))})
    table = {"input": [draw(st.integers(1, 2)), draw(st.integers(4, 7))], "loss": "sse",
             "layer": [*layers, {"kind": "flatten"},
                       {"kind": "dense", "width": draw(st.integers(1, 2))}]}
    try:
        return Spec.from_dict(table)
    except InputError:  # a window that does not fit
        assume(False)


def _outside_max(expr) -> set:
    """The symbols of ``expr`` but those in a max pool's bracket [a = max(window)] (a slip
    inside a window is not a swapped factor)."""
    if expr.is_Symbol:
        return {expr}
    if "Max" in type(expr).__name__:
        return set()
    return set().union(*(_outside_max(arg) for arg in expr.args))


def _swap_one_node(spec, node, data, latex):
    """derive's result for ``node`` with one node that occurs once swapped for a sibling
    (same kind and layer, other indices): WRONG, named, and its correction RIGHT."""
    engine = backprop(spec)
    try:
        derivation = engine.derive(node)
    except NameLookupError:  # an entry no layer reads
        assume(False)
    result = derivation.result
    symbols = sorted(_outside_max(result), key=str)
    once = [s for s in symbols  # one occurrence swapped: one slip, one edit to undo it
            if list(sympy.preorder_traversal(result)).count(s) == 1]
    pairs = [(s, t) for s in once for t in symbols if s != t and node_of(s) and node_of(t)
             and len(node_of(s).indices) >= 2 and (node_of(s).kind, node_of(s).layer) ==
             (node_of(t).kind, node_of(t).layer)]
    assume(pairs)
    old, new = data.draw(st.sampled_from(pairs))
    with sympy.evaluate(False):  # X/2 + Y/2 with Y -> X stays two terms, as a user writes it
        wrong = result.xreplace({old: new})
    if latex:
        printer = SeedLatexPrinter({"L": engine.graph.L, "layers": "absolute"})
        formula = f"{printer.doprint(derivation.lhs)} = {printer.doprint(wrong)}"
    else:
        formula = (f"{text(derivation.lhs, layers='absolute')} = "
                   f"{text(wrong, layers='absolute')}")
    checked = check_formula(spec, formula)
    assume(not checked.right)  # a swap of two nodes of equal value at every point
    assert checked.findings and checked.findings[0].exact, (formula, str(checked))
    corrected = checked.findings[0].corrected
    assert check_formula(spec, corrected).right, (formula, corrected)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(conv1d_stacks(), st.data(), st.booleans())
def test_a_swapped_node_is_named_and_its_correction_reads_back_right(spec, data, latex):
    graph = backprop(spec).graph
    candidates = [*(a for l in range(1, graph.L - 1) for a in graph.a[l]),
                  *(p.symbol for p in graph.parameters() if len(p.indices) > 2)]
    _swap_one_node(spec, data.draw(st.sampled_from(candidates)), data, latex)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), st.booleans())
def test_a_swap_under_overlapping_max_pools_gets_a_correction_that_is_right(data, latex):
    """An entry two max windows read is often no window's maximum at the first random
    points, where its derivative and many wrong formulas are 0: a correction confirmed
    only there was printed as exact and read back WRONG (a wrong layer: dC_0/da^(1) on the
    right of dC_0/da^(1))."""
    kernel = data.draw(st.integers(2, 3))
    spec = Spec.from_dict({"input": [1, data.draw(st.integers(5, 8))], "loss": "sse", "layer": [
        {"kind": "conv1d", "channels": 1, "kernel": data.draw(st.integers(1, 2)),
         "activation": data.draw(st.sampled_from(["relu", "tanh"]))},
        {"kind": "maxpool1d", "kernel": kernel, "stride": data.draw(st.integers(1, kernel - 1))},
        {"kind": "flatten"}, {"kind": "dense", "width": 1}]})
    graph = backprop(spec).graph
    _swap_one_node(spec, data.draw(st.sampled_from(graph.a[1])), data, latex)


def test_a_node_swapped_for_one_differing_in_two_indices_is_named():
    """Found by the generated swap test above: w_{0,0,0} written as w_{1,0,1} (kernel 2,
    padding 1, two channels) differs in two indices, which no one-index edit undoes; the
    true result's own nodes are tried in its place."""
    spec = Spec(input=[1, 4], loss="sse", stack=[
        {"kind": "conv1d", "channels": 1, "kernel": 1, "activation": "tanh"},
        {"kind": "conv1d", "channels": 2, "kernel": 2, "padding": 1, "activation": "sigmoid"},
        {"kind": "flatten"}, {"kind": "dense", "width": 1}])
    wrong = ("dC_0/da_{0,0}^{(1)} = delta_{0,0}^{(2)}*w_{0,0,1}^{(2)} + delta_{0,1}^{(2)}*"
             "w_{1,0,1}^{(2)} + delta_{1,0}^{(2)}*w_{1,0,1}^{(2)} + delta_{1,1}^{(2)}*"
             "w_{1,0,0}^{(2)}")
    checked = check_formula(spec, wrong)
    assert not checked.right
    first = checked.findings[0]
    assert first.exact and first.fix == "replace w_{1,0,1}^{(2)} with w_{0,0,0}^{(2)}"
    assert check_formula(spec, first.corrected).right
