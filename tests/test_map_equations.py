"""The general equations of conv, pooling and flatten layers in letters (the report's
"backpropagation equations"): every one equals the chain-rule engine's result at every node
of random conv stacks (any kernel, stride, padding, overlapping pools), a wrong one is
refused before it is shown, and the small cases print exactly as a textbook writes them."""


import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_conv import _random_stack, conv_spec

from symprop import Spec
from symprop.derivation import backprop
from symprop.equations import (
    _checked,
    _incoming,
    backprop_equations,
    instantiate,
    layer_equations,
)
from symprop.layers import conv_index
from symprop.notation import node_of
from symprop.printing.latex import SeedLatexPrinter


def _printer(engine):
    return SeedLatexPrinter({"L": engine.graph.L, "layers": "absolute"})


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_map_equation_equals_the_engine_at_every_node_of_random_stacks(data):
    """What each map layer's readers pass back, in letters, written out at every node (c, p,
    q) with the padding's zeros, is the engine's dC_0/da (or delta) there; every parameter's
    general gradient too, at every entry."""
    engine = backprop(_random_stack(data))
    g = engine.graph
    shapes = g.spec.shapes
    for l in range(1, g.L):
        shape = shapes[l]
        if len(shape) < 2:
            continue
        incoming = _incoming(engine, l, "k")
        for flat, index in enumerate(np.ndindex(*shape)):
            at = dict(zip("cpq", map(int, index)))
            assert sympy.expand(instantiate(incoming, at, shapes)
                                - engine.dC_da(l, flat)) == 0, (l, at)
    for l, layer in g.layers.items():
        for param, rhs in layer.general_parameters():
            letters = node_of(param).indices
            for node in (n for n in g.parameters()
                         if n.layer == l and n.kind == node_of(param).kind):
                _checked(engine, param, rhs, dict(zip(letters, node.indices)),
                         engine.gradient(node), l)
    assert len(backprop_equations(engine, _printer(engine))) >= g.L


def test_a_general_equation_that_differs_from_the_engine_is_refused(monkeypatch):
    """The input gradient without the kernel flipped (the classic slip) is caught by the
    check at concrete nodes, not printed."""
    def unflipped(layer):
        right = conv_index.general_contribution(layer)
        return right.xreplace({s: sympy.Symbol(s.name.replace("2-u", "u").replace("2-v", "v"))
                               for s in right.atoms(sympy.Symbol)})
    engine = backprop(conv_spec(2, 3, 1, 1, more=[{"kind": "conv2d", "channels": 2,
                                                    "kernel": 3, "padding": 1}]))
    monkeypatch.setattr(type(engine.graph.layers[2]), "general_contribution",
                        lambda self, source: unflipped(self))
    with pytest.raises(AssertionError, match="differs from the engine"):
        backprop_equations(engine, _printer(engine))


LENET_SMALL = Spec.from_dict({
    "input": [1, 4, 4], "loss": "sse",
    "layer": [{"kind": "conv2d", "channels": 2, "kernel": 3, "padding": 1, "stride": 2,
               "activation": "relu"},
              {"kind": "avgpool2d", "kernel": 2},
              {"kind": "flatten"}, {"kind": "dense", "width": 2, "activation": "sigmoid"}]})


def test_the_equations_of_a_small_conv_network_print_as_a_textbook_writes_them():
    engine = backprop(LENET_SMALL)
    p = _printer(engine)
    rows = [r["equations"] for r in layer_equations(engine, p)]
    assert rows[0] == [
        (r"z_{o,p,q}^{(1)} = \sum_{c=0}^{0} \sum_{u=0}^{2} \sum_{v=0}^{2} w_{o,c,u,v}^{(1)} "
        r"x_{c,2p+u-1,2q+v-1}"),
        r"a_{o,p,q}^{(1)} = \operatorname{ReLU}\left(z_{o,p,q}^{(1)}\right)"]
    assert rows[1] == [(r"a_{c,p,q}^{(2)} = \frac{\sum_{u=0}^{1} \sum_{v=0}^{1} "
                       r"a_{c,2p+u,2q+v}^{(1)}}{4}")]
    assert rows[2] == [r"a_{c+p+q}^{(3)} = a_{c,p,q}^{(2)}"]
    lines = backprop_equations(engine, p)
    assert r"\frac{\partial C_{0}}{\partial w_{o,c,u,v}^{(1)}} = \sum_{p=0}^{1} \sum_{q=0}^{1} " \
           r"\delta_{o,p,q}^{(1)} x_{c,2p+u-1,2q+v-1}" in lines
    assert r"\delta_{c,p,q}^{(1)} = \left(\sum_{r=0}^{0} \sum_{t=0}^{0} \sum_{u=0}^{1} " \
           r"\sum_{v=0}^{1} \frac{\frac{\partial C_{0}}{\partial a_{c,r,t}^{(2)}} [p = 2r+u] " \
           r"[q = 2t+v]}{4}\right) \operatorname{ReLU}^{\prime}\left(z_{c,p,q}^{(1)}\right)" \
           in lines


def test_max_pooling_and_a_stride_one_conv_print_the_window_max_and_the_flipped_kernel():
    engine = backprop(Spec.from_dict({
        "input": [1, 5, 5], "loss": "sse",
        "layer": [{"kind": "conv2d", "channels": 2, "kernel": 2, "activation": "tanh"},
                  {"kind": "maxpool2d", "kernel": 2, "stride": 1},
                  {"kind": "conv2d", "channels": 1, "kernel": 2, "padding": 1},
                  {"kind": "flatten"}, {"kind": "dense", "width": 1}]}))
    lines = backprop_equations(engine, _printer(engine))
    assert r"\frac{\partial C_{0}}{\partial a_{c,p,q}^{(2)}} = \sum_{o=0}^{0} \sum_{u=0}^{1} " \
           r"\sum_{v=0}^{1} \delta_{o,p+u,q+v}^{(3)} w_{o,c,1-u,1-v}^{(3)}" in lines
    assert r"\delta_{c,p,q}^{(1)} = \left(\sum_{r=0}^{2} \sum_{t=0}^{2} " \
           r"\frac{\partial C_{0}}{\partial a_{c,r,t}^{(2)}} \left[a_{c,p,q}^{(1)} = " \
           r"\max_{u,v} a_{c,r+u,t+v}^{(1)}\right]\right) " \
           r"\tanh^{\prime}\left(z_{c,p,q}^{(1)}\right)" in lines


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_batch_form_of_random_conv_stacks_is_checked_step_by_step(data):
    """Every map layer's batch steps (Delta, each parameter's sum over batch and positions,
    what it passes back) agree with the engine at the entries checked, for any kernel,
    stride, padding and pooling; each layer has its steps."""
    from symprop.matrix import matrix_form

    engine = backprop(_random_stack(data))
    form = matrix_form(engine)
    g = engine.graph
    for l in range(1, g.L):
        steps = {s.step for s in form.layers[l]}
        wanted = {"inputs"} if l > 1 else set()
        if g.layers[l].through_activation:
            wanted |= {"delta", "weights"}
        assert wanted <= steps, (l, steps)
        assert all(s.checked >= 1 for s in form.layers[l])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_printed_equation_of_random_stacks_reads_back_right(data):
    """What a user copies from the report is what check --formula accepts: each printed
    backpropagation equation of a random conv stack (max and average pools with Iverson
    brackets [p = 2r+u], [a = max_{u,v} ...], a flatten's a_{4c+2p+q}, the flipped kernel)
    is read back and judged RIGHT against the engine."""
    from symprop.check import check_formula

    spec = _random_stack(data)
    engine = backprop(spec)
    for layers in ("absolute", "relative"):
        printer = SeedLatexPrinter({"L": engine.graph.L, "layers": layers})
        for equation in backprop_equations(engine, printer):
            result = check_formula(spec, equation)
            assert result.right, (equation, str(result))
