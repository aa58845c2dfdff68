"""`check --formula`'s corrections on 1-D conv networks read back RIGHT.

derive's own result for a random node of a random 1-D conv stack (a conv weight, a map
entry, a z), plain text or LaTeX, with one node swapped for a sibling of the formula (the
same kind and layer, other indices: the slip of a hand derivation) is WRONG, and check's
first finding names the swap and writes a corrected formula that is RIGHT when checked
again.  A 1-D map's node has two indices: a correction that printed them run together
(a_{01}, which reads back as node 1 of a flat layer) was lost this way.
"""

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


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(conv1d_stacks(), st.data(), st.booleans())
def test_a_swapped_node_is_named_and_its_correction_reads_back_right(spec, data, latex):
    engine = backprop(spec)
    graph = engine.graph
    candidates = [*(a for l in range(1, graph.L - 1) for a in graph.a[l]),
                  *(p.symbol for p in graph.parameters() if len(p.indices) > 2)]
    node = data.draw(st.sampled_from(candidates))
    try:
        derivation = engine.derive(node)
    except NameLookupError:  # an entry no layer reads
        assume(False)
    symbols = sorted(_outside_max(derivation.result), key=str)
    pairs = [(s, t) for s in symbols for t in symbols if s != t and node_of(s) and node_of(t)
             and len(node_of(s).indices) >= 2 and (node_of(s).kind, node_of(s).layer) ==
             (node_of(t).kind, node_of(t).layer)]
    assume(pairs)
    old, new = data.draw(st.sampled_from(pairs))
    wrong = derivation.result.xreplace({old: new})
    assume(wrong != derivation.result)
    if latex:
        printer = SeedLatexPrinter({"L": graph.L, "layers": "absolute"})
        formula = f"{printer.doprint(derivation.lhs)} = {printer.doprint(wrong)}"
    else:
        formula = (f"{text(derivation.lhs, layers='absolute')} = "
                   f"{text(wrong, layers='absolute')}")
    result = check_formula(spec, formula)
    assume(not result.right)  # a swap of two nodes of equal value at every point
    assert result.findings and result.findings[0].exact, (formula, str(result))
    corrected = result.findings[0].corrected
    assert check_formula(spec, corrected).right, (formula, corrected)
