"""conv1d, conv2d and flatten on the index engine: shapes checked up front, every parameter's
derived gradient against SymPy's diff of the composed C_0 and against PyTorch's and JAX's
own convolutions (F.conv1d/conv2d, lax.conv_general_dilated) differentiated by autodiff,
over a grid of kernel, stride and padding and over random conv stacks."""

import itertools

import pytest
from conftest import need
from hypothesis import given, settings
from hypothesis import strategies as st

from symprop import Spec
from symprop.cli import main
from symprop.derivation import backprop, prove_all
from symprop.errors import SpecError
from symprop.printing.latex import latex


def conv_spec(dims: int, kernel: int, stride: int, padding: int, *, size: int = 4,
              channels: int = 2, activation: str = "tanh", bias: bool = True,
              in_channels: int = 1, more: list | None = None) -> Spec:
    return Spec.from_dict({
        "input": [in_channels] + [size] * dims, "loss": "sse",
        "layer": [{"kind": f"conv{dims}d", "channels": channels, "kernel": kernel,
                   "stride": stride, "padding": padding, "activation": activation,
                   "bias": bias}, *(more or []),
                  {"kind": "flatten"}, {"kind": "dense", "width": 2, "activation": "sigmoid"}]})


def _valid(size, kernel, stride, padding):
    return kernel <= size + 2 * padding and padding < kernel


GRID = [(d, k, s, p) for d, k, s, p in itertools.product((1, 2), (1, 2, 3), (1, 2, 3), (0, 1, 2))
        if _valid(4, k, s, p) and p < k]


def _assert_proven(report):
    bad = [r for r in report.results if not r.passed]
    assert not bad, [(str(r.node), r.abs_error) for r in bad[:3]]


@pytest.mark.parametrize(("dims", "kernel", "stride", "padding"), GRID)
def test_every_conv_gradient_agrees_with_torch_autodiff_of_its_own_convolution(
        dims, kernel, stride, padding):
    need("torch")
    spec = conv_spec(dims, kernel, stride, padding, in_channels=2)
    _assert_proven(prove_all(spec, "torch"))


@pytest.mark.parametrize(("dims", "kernel", "stride", "padding"),
                         [(1, 3, 2, 1), (2, 2, 1, 0), (2, 3, 3, 2), (2, 2, 2, 1)])
def test_conv_gradients_agree_with_the_composed_c0_and_jax(dims, kernel, stride, padding):
    """SymPy's diff of the composed C_0 (30 digits) for every conv parameter and the input,
    and JAX autodiff of lax.conv_general_dilated."""
    spec = conv_spec(dims, kernel, stride, padding, size=3 if dims == 2 else 4)
    engine = backprop(spec)
    conv = [n for n in engine.graph.parameters() if n.layer == 1]
    _assert_proven(prove_all(engine, "numeric", nodes=conv))
    need("jax")
    _assert_proven(prove_all(engine, "jax"))


def _random_stack(data) -> Spec:
    """Two conv layers (any kernel, stride, padding that fit), relu, tanh or sigmoid, with
    and without bias, each maybe followed by a max or average pool, before flatten and a
    dense layer."""
    dims = data.draw(st.sampled_from((1, 2)))
    size = data.draw(st.integers(3, 6))
    layers, shape = [], size
    for _ in range(2):
        kernel = data.draw(st.integers(1, min(3, shape + 2)))
        padding = data.draw(st.integers(0, kernel - 1))
        if kernel > shape + 2 * padding:
            break
        stride = data.draw(st.integers(1, 3))
        layers.append({"kind": f"conv{dims}d", "channels": data.draw(st.integers(1, 2)),
                       "kernel": kernel, "stride": stride, "padding": padding,
                       "activation": data.draw(st.sampled_from(("tanh", "relu", "sigmoid"))),
                       "bias": data.draw(st.booleans())})
        shape = (shape + 2 * padding - kernel) // stride + 1
        if data.draw(st.booleans()) and shape >= 2:  # a pool after it, maybe overlapping
            window = data.draw(st.integers(1, 2))
            step = data.draw(st.integers(1, 2))
            layers.append({"kind": data.draw(st.sampled_from(("maxpool", "avgpool")))
                           + f"{dims}d", "kernel": window, "stride": step})
            shape = (shape - window) // step + 1
    return Spec.from_dict({"input": [data.draw(st.integers(1, 2))] + [size] * dims,
                           "loss": "sse", "layer": [*layers, {"kind": "flatten"},
                                                    {"kind": "dense", "width": 2}]})


@settings(max_examples=12, deadline=None)
@given(st.data())
def test_random_conv_stacks_agree_with_torch_autodiff(data):
    need("torch")
    _assert_proven(prove_all(_random_stack(data), "torch"))


@settings(max_examples=6, deadline=None)
@given(st.data())
def test_every_name_of_a_random_conv_stack_derives_or_says_why(data):
    """A few parameters, and the inputs' and every layer's first, middle and last node of
    random conv and pool stacks: each derivation renders (text and LaTeX) or is a
    NameLookupError saying why (an entry no window reads, or whose windows' outputs a later
    stride drops: it once crashed the printer as a nested step) -- never another exception."""
    from symprop.documents import derivation_document
    from symprop.errors import NameLookupError

    engine = backprop(_random_stack(data))
    graph = engine.graph
    names = [*graph.parameters()[:: max(1, len(graph.parameters()) // 3)]]
    for symbols in [graph.x, *graph.a.values()]:
        names += [symbols[0], symbols[len(symbols) // 2], symbols[-1]]
    for name in names:
        try:
            derivation = engine.derive(name)
        except NameLookupError as exc:
            assert "reaches the loss by no path" in str(exc)
            continue
        assert derivation_document(derivation, "latex") and render(derivation)


def test_a_conv_weight_sums_over_every_position_that_reads_through_it():
    """w_{0,0,1,1}: kernel 2, stride 2, padding 1 on a 4x4 input; offset (1, 1) reads a real
    input entry from the four windows (0,0), (0,1), (1,0), (1,1), and each term is the
    chain rule of seed 000 at one position."""
    spec = conv_spec(2, 2, 2, 1, activation="identity", bias=False, channels=1)
    derivation = backprop(spec).derive("w_{0,0,1,1}^{(1)}")
    assert latex(derivation.specialised(), spec.L) == (
        r"\frac{\partial C_{0}}{\partial a_{0}^{(L-1)}} x_{0,0,0} + "
        r"\frac{\partial C_{0}}{\partial a_{1}^{(L-1)}} x_{0,0,2} + "
        r"\frac{\partial C_{0}}{\partial a_{3}^{(L-1)}} x_{0,2,0} + "
        r"\frac{\partial C_{0}}{\partial a_{4}^{(L-1)}} x_{0,2,2}")
    assert len(derivation.chain.paths) == 4


def test_an_input_node_collects_every_window_that_reads_it(capsys):
    spec = conv_spec(2, 2, 1, 0, activation="identity", bias=False, channels=1, size=3)
    result = backprop(spec).derive("x_{0,1,1}").result
    # x_{0,1,1} sits in all four 2x2 windows of a 3x3 input, at the four kernel offsets
    assert latex(result, spec.L) == (
        r"\delta_{0,0,0}^{(L-2)} w_{0,0,1,1}^{(L-2)} + \delta_{0,0,1}^{(L-2)} "
        r"w_{0,0,1,0}^{(L-2)} + \delta_{0,1,0}^{(L-2)} w_{0,0,0,1}^{(L-2)} + "
        r"\delta_{0,1,1}^{(L-2)} w_{0,0,0,0}^{(L-2)}")


@pytest.mark.parametrize(("layers", "input_", "message"), [
    ([{"kind": "conv2d", "channels": 1, "kernel": 5}], [1, 3, 3],
     ("layer 1 (conv2d), key 'kernel': the kernel [5, 5] is larger than the padded input "
     "[3, 3] (input shape [1, 3, 3], padding [0, 0])")),
    ([{"kind": "dense", "width": 2}], [1, 3, 3],
     ("layer 1 (dense): a dense layer reads a flat layer, but the input is a map of shape "
     "[1, 3, 3] (channels, positions). Put a flatten layer before it")),
    ([{"kind": "conv2d", "channels": 1, "kernel": 2}, {"kind": "dense", "width": 2}],
     [1, 3, 3], ("layer 2 (dense): a dense layer reads a flat layer, but layer 1 is a map of "
                "shape [1, 2, 2]")),
    ([{"kind": "conv2d", "channels": 1, "kernel": 2}], 9,
     ("layer 1 (conv2d): a conv2d layer reads a map [channels, height, width], but the input "
     "has shape [9]")),
    ([{"kind": "conv1d", "channels": 1, "kernel": 2, "stride": 0}], [1, 4],
     "layer 1 (conv1d), key 'stride': must be at least 1, got 0"),
    ([{"kind": "conv1d", "channels": 1, "kernel": 2, "padding": 2}], [1, 4],
     ("layer 1 (conv1d), key 'padding': padding [2] leaves windows at the border that read "
     "only zeros (kernel [2])")),
])
def test_shapes_that_do_not_fit_exit_2_naming_layer_and_shapes(tmp_path, capsys, layers,
                                                               input_, message):
    with pytest.raises(SpecError) as caught:
        Spec.from_dict({"input": input_, "loss": "sse", "layer": layers}, source="net.toml")
    assert message in str(caught.value)
    path = tmp_path / "net.toml"
    tables = "".join("[[layer]]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"')
                                              for k, v in t.items()) for t in layers)
    path.write_text(f"input = {input_!r}\nloss = \"sse\"\n{tables}")
    assert main(["derive", str(path), "--wrt", "b_0^(1)"]) == 2
    assert message in capsys.readouterr().err


def test_every_command_works_on_a_conv_network(tmp_path, capsys):
    """The commands that once refused maps: the scalar style, the report and its
    interactive form, each written and exit 0."""
    path = tmp_path / "net.toml"
    path.write_text('input = [1, 3, 3]\nloss = "sse"\n[[layer]]\nkind = "conv2d"\nchannels = 1\n'
                    'kernel = 2\n[[layer]]\nkind = "flatten"\n')
    for command, out in ((["codegen", "--style", "scalar"], "m.py"), (["report"], "r.tex"),
                         (["report", "--interactive"], "r.html")):
        assert main([command[0], str(path), *command[1:], "-o", str(tmp_path / out)]) == 0
        assert (tmp_path / out).stat().st_size > 1000
    assert main(["derive", str(path), "--wrt", "w_{0,0,1,0}^{(1)}"]) == 0
    assert "Checked: equal to SymPy's diff of the composed C_0" in capsys.readouterr().out


def test_the_derivation_says_the_weight_is_shared_and_sums_over_its_positions(capsys):
    spec = conv_spec(2, 2, 2, 1)
    text = str(backprop(spec).derive("w_{0,0,1,1}^{(1)}"))
    assert ("The weight is shared: w_0,0,1,1^(L-2) appears in z_0,p,q^(L-2) for every p, q "
            "whose window reads through it (4 positions), so the chain rule sums over them:\n"
            "  dC_0/dw_0,0,1,1^(L-2) = sum_(p,q) [ (dC_0/da_0,p,q^(L-2)) * "
            "(da_0,p,q^(L-2)/dz_0,p,q^(L-2)) * (dz_0,p,q^(L-2)/dw_0,0,1,1^(L-2)) ]") in text
    from symprop.documents import derivation_document

    tex = derivation_document(backprop(spec).derive("w_{0,0,1,1}^{(1)}"), "latex")
    assert (r"\frac{\partial C_{0}}{\partial w_{0,0,1,1}^{(L-2)}} = \sum_{p,q} "
            r"\frac{\partial C_{0}}{\partial a_{0,p,q}^{(L-2)}}") in tex


@pytest.mark.needs("pdflatex")
@pytest.mark.parametrize("dims", [1, 2])
def test_standalone_conv_derivations_compile(dims):
    from symprop.documents import derivation_document
    from symprop.report import compile_pdf

    engine = backprop(conv_spec(dims, 2, 1, 1))
    graph = engine.graph
    for target in (graph.parameters()[0], graph.parameters()[-1],
                   graph.layers[1].outputs[0], graph.x[1]):
        tex = derivation_document(engine.derive(target), "latex", standalone=True)
        assert compile_pdf(tex).startswith(b"%PDF")


POOLS = [(kind, d, k, s) for kind in ("maxpool", "avgpool") for d in (1, 2)
         for k, s in ((2, 2), (2, 1), (3, 1), (3, 2), (1, 1))]


@pytest.mark.parametrize(("kind", "dims", "kernel", "stride"), POOLS)
def test_pooling_gradients_agree_with_torch_and_jax_overlapping_or_tiling(kind, dims, kernel,
                                                                          stride):
    """A conv layer, then the pool (windows that tile with stride = kernel, overlap with
    stride < kernel): every parameter against F.max_pool/avg_pool and lax.reduce_window."""
    spec = conv_spec(dims, 2, 1, 0, size=5, more=[{"kind": f"{kind}{dims}d", "kernel": kernel,
                                                   "stride": stride}])
    engine = backprop(spec)
    need("torch")
    _assert_proven(prove_all(engine, "torch"))
    need("jax")
    _assert_proven(prove_all(engine, "jax"))


def test_max_pooling_routes_to_the_first_maximum_and_average_pooling_spreads_evenly():
    base = {"input": [1, 3, 3], "loss": "sse"}
    tail = [{"kind": "flatten"}, {"kind": "dense", "width": 1}]
    spec = Spec.from_dict(base | {"layer": [{"kind": "maxpool2d", "kernel": 2, "stride": 1},
                                            *tail]})
    result = backprop(spec).derive("x_{0,1,1}").result
    from symprop.layers.pooling import FirstMax

    assert len(result.atoms(FirstMax)) == 4  # x_{0,1,1} sits in all four windows
    derivation = backprop(spec).derive("x_{0,0,0}")
    assert latex(derivation.result, spec.L) == (
        r"\frac{\partial C_{0}}{\partial a_{0,0,0}^{(L-2)}} \left[x_{0,0,0} = \max\left(x_{0,0,0}"
        r", x_{0,0,1}, x_{0,1,0}, x_{0,1,1}\right)\right]")
    _assert_proven(prove_all(backprop(spec), "numeric"))
    spec = Spec.from_dict(base | {"layer": [{"kind": "avgpool2d", "kernel": 2, "stride": 1},
                                            *tail]})
    assert latex(backprop(spec).derive("x_{0,0,0}").result, spec.L) == \
        r"\frac{\frac{\partial C_{0}}{\partial a_{0,0,0}^{(L-2)}}}{4}"


def test_ties_go_to_the_first_position_in_row_major_order():
    """At a point where a window holds its maximum twice, only the first gets the
    gradient, as torch's max_pool2d does."""
    from symprop.layers.pooling import FirstMax
    from symprop.numeric import Evaluator

    a, b, c, d = backprop(conv_spec(2, 2, 1, 0)).graph.x[:4]
    ev = Evaluator({a: 1.0, b: 3.0, c: 3.0, d: 0.5})
    assert [ev(FirstMax(u, a, b, c, d)) for u in (a, b, c, d)] == [0, 1, 0, 0]


def test_a_pooling_window_that_does_not_fit_exits_2():
    with pytest.raises(SpecError, match=r"layer 1 \(maxpool2d\), key 'kernel': the window "
                                        r"\[4, 4\] does not fit in the input \[3, 3\]"):
        Spec.from_dict({"input": [1, 3, 3], "loss": "sse",
                        "layer": [{"kind": "maxpool2d", "kernel": 4}, {"kind": "flatten"}]})


@pytest.mark.parametrize(("name", "message"), [
    ("w_{12}^{(1)}", "'w_{12}^{(1)}' needs 4 node index(es), e.g. w_{0,1,2,3}"),
    ("w_{5,0,0,0}^{(1)}", ("w_{5,0,0,0}^{(1)} is not a node or parameter of layer 1, a conv2d "
                          "layer. Layer 1 is a conv2d layer of shape [2, 3, 3] with w of shape "
                          "[2, 1, 2, 2], b of shape [2]; indices run from 0 along each axis.")),
    ("x_{3}", "'x_{3}' needs 3 node index(es), e.g. x_{0,1,2}"),
    ("a_{0,4,0}^{(1)}", "a_{0,4,0}^{(1)} is not a node of layer 1, of shape [2, 3, 3]"),
])
def test_names_of_map_nodes_are_checked_against_their_shapes(tmp_path, capsys, name, message):
    path = tmp_path / "net.toml"
    path.write_text('input = [1, 4, 4]\nloss = "sse"\n[[layer]]\nkind = "conv2d"\n'
                    'channels = 2\nkernel = 2\nstride = 2\npadding = 1\nbias = true\n'
                    '[[layer]]\nkind = "flatten"\n')
    assert main(["derive", str(path), "--wrt", name]) == 2
    assert message in capsys.readouterr().err


def test_the_index_form_is_a_correlation_proven_at_the_target_before_it_is_shown(monkeypatch):
    """A weight's gradient as the correlation of the deltas with the input, an input
    entry's (stride 1) as the full correlation with the flipped kernel; a form that differs
    from the derivation at the target's own indices is a self-check failure, never shown."""
    engine = backprop(conv_spec(2, 2, 2, 1))
    assert ("  In index form, every weight of the layer at once, the correlation of its deltas "
            "with its input (zero outside it):\n"
            "    dC_0/dw_o,c,u,v^(1) = sum_(p,q) [ delta_o,p,q^(1)*x_c,2p+u-1,2q+v-1 ]"
            ) in render(engine.derive("w_{0,0,1,1}^{(1)}"))
    engine = backprop(conv_spec(2, 3, 1, 1, size=3))
    from symprop.documents import derivation_document

    tex = derivation_document(engine.derive("x_{0,1,2}"), "latex")
    assert (r"\frac{\partial C_{0}}{\partial x_{c,p,q}} = \sum_{o,u,v} "
            r"\delta_{o,p+u-1,q+v-1}^{(L-2)} w_{o,c,2-u,2-v}^{(L-2)}") in tex
    from symprop.layers import conv
    from symprop.self_check import SelfCheckFailed

    wrong = conv.index_form

    def flipped_twice(layer, target):
        form = wrong(layer, target)
        return form and form | {"concrete": form["concrete"] * 2}
    monkeypatch.setattr(conv, "index_form", flipped_twice)
    with pytest.raises(SelfCheckFailed, match="index form of x_0,1,2"):
        render(engine.derive("x_{0,1,2}"))


def render(derivation) -> str:
    from symprop.documents import render_derivation

    return render_derivation(derivation, layers="absolute")


def test_a_worked_example_on_a_conv_network_gives_torch_s_numbers(tmp_path, capsys):
    """derive --at: the number beside the result of a conv weight is PyTorch's gradient of
    F.conv2d's loss at that point (a map given as nested lists, channel first)."""
    torch = need("torch")
    import numpy as np

    rng = np.random.default_rng(3)
    W1, b1 = rng.normal(size=(2, 1, 2, 2)) * 0.5, rng.normal(size=2) * 0.1
    W3, x = rng.normal(size=(2, 18)) * 0.3, rng.uniform(size=(1, 4, 4))
    values = tmp_path / "values.toml"
    values.write_text(f"W1 = {W1.tolist()}\nb1 = {b1.tolist()}\nW3 = {W3.tolist()}\n"
                      f"x = {x.tolist()}\ny = [0.0, 1.0]\n")
    spec = tmp_path / "net.toml"
    spec.write_text('input = [1, 4, 4]\nloss = "sse"\n[[layer]]\nkind = "conv2d"\nchannels = 2\n'
                    'kernel = 2\nstride = 2\npadding = 1\nactivation = "tanh"\nbias = true\n'
                    '[[layer]]\nkind = "flatten"\n[[layer]]\nkind = "dense"\nwidth = 2\n'
                    'activation = "sigmoid"\n')
    assert main(["derive", str(spec), "--wrt", "w_{1,0,0,1}^{(1)}", "--at", str(values)]) == 0
    out = capsys.readouterr().out
    result = out[out.index("Result:"):].splitlines()[1]
    shown = float(result.rsplit("= ", 1)[1])
    t = {k: torch.tensor(v, requires_grad=True) for k, v in (("W1", W1), ("b1", b1),
                                                             ("W3", W3))}
    a1 = torch.tanh(torch.nn.functional.conv2d(torch.tensor(x)[None], t["W1"], t["b1"],
                                               stride=2, padding=1))
    a3 = torch.sigmoid(a1.reshape(1, -1) @ t["W3"].T)
    ((a3 - torch.tensor([[0.0, 1.0]])) ** 2).sum().backward()
    assert shown == pytest.approx(float(t["W1"].grad[1, 0, 0, 1]), rel=1e-8)


@pytest.mark.parametrize(("input_", "layers", "name", "message"), [
    ([1, 5, 5], [{"kind": "conv2d", "channels": 1, "kernel": 1, "stride": 2}],
     "x_{0,0,1}", "x_0,0,1 reaches the loss by no path"),
    ([2, 5, 5], [{"kind": "conv2d", "channels": 2, "kernel": 3, "padding": 1},
                 {"kind": "maxpool2d", "kernel": 2}], "a_{0,4,4}^{(1)}",
     "a_0,4,4^(1) reaches the loss by no path"),
])
def test_an_entry_no_window_reads_is_exit_2_not_a_crash(tmp_path, capsys, input_, layers,
                                                       name, message):
    """Found by review: stride above the kernel, or a pool that drops the map's last row."""
    path = tmp_path / "net.toml"
    tables = "".join("[[layer]]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"')
                                              for k, v in t.items()) for t in layers)
    path.write_text(f"input = {input_!r}\nloss = \"sse\"\n{tables}"
                    '[[layer]]\nkind = "flatten"\n[[layer]]\nkind = "dense"\nwidth = 1\n')
    assert main(["derive", str(path), "--wrt", name]) == 2
    assert message in capsys.readouterr().err


def test_two_conv_layers_and_conv1d_print_their_index_forms(capsys):
    """Found by review: the index form's check expanded the deltas of the next conv layer
    twice (exit 3), and conv1d's letters ran together with their offsets."""
    spec = conv_spec(1, 3, 2, 1, size=7, in_channels=2, more=[
        {"kind": "conv1d", "channels": 1, "kernel": 2, "padding": 1, "activation": "tanh"}])
    text = render(backprop(spec).derive("w_{1,0,2}^{(1)}"))
    assert "dC_0/dw_o,c,u^(1) = sum_(p) [ delta_o,p^(1)*x_c,2p+u-1 ]" in text
    assert "(dC_0/da_1,p^(1)) * (da_1,p^(1)/dz_1,p^(1))" in text


def test_a_map_as_the_last_layer_and_too_many_nodes_exit_2():
    with pytest.raises(SpecError, match=r"the last layer meets the loss and must be flat, but "
                                        r"it is a map of shape \[1, 2, 2\]"):
        Spec.from_dict({"input": [1, 3, 3], "loss": "sse",
                        "layer": [{"kind": "conv2d", "channels": 1, "kernel": 2}]})
    with pytest.raises(SpecError, match=r"layer 1 \(conv2d\): the layer has 18000000 nodes"):
        Spec.from_dict({"input": [1, 3, 3], "loss": "sse",
                        "layer": [{"kind": "conv2d", "channels": 2000000, "kernel": 1},
                                  {"kind": "flatten"}]})
