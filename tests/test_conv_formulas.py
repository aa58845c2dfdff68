"""`check --formula` on conv networks: multi-index names, letter arithmetic in the indices
(a_{c,2p+u-1,q+v}), sums over several letters (\\sum_{p,q}), zero outside the input.  The
formulas are written as a user types them, for random kernels, strides, paddings and
channels; the truth is the chain-rule engine's gradient, itself proven against SymPy's diff
of the composed C_0 and autodiff in test_conv.py.  The three classic slips (the padding not
subtracted, the stride left out, the kernel not flipped) are each named."""

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symprop.cli import main

POSITIONS, OFFSETS = "pq", "uv"


def _write(tmp_path, dims, size, conv1, conv2):
    lines = [f"input = [{conv1['in']}, {', '.join([str(size)] * dims)}]", 'loss = "sse"']
    for conv in (conv1, conv2):
        lines += ["[[layer]]", f'kind = "conv{dims}d"', f"channels = {conv['channels']}",
                  f"kernel = {conv['kernel']}", f"stride = {conv['stride']}",
                  f"padding = {conv['padding']}", f'activation = "{conv["activation"]}"',
                  f"bias = {'true' if conv['bias'] else 'false'}"]
    lines += ["[[layer]]", 'kind = "flatten"']
    path = tmp_path / "net.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _plus(value: int) -> str:
    return f"-{-value}" if value < 0 else f"+{value}" if value else ""


def _out(size, conv):
    return (size + 2 * conv["padding"] - conv["kernel"]) // conv["stride"] + 1


def _sums(letters, sizes, latex, combined=False):
    """One sum per letter with its bounds, or all in one, bounds left to the axes:
    \\sum_{p,q}."""
    if combined:
        return ("\\sum" if latex else "sum") + f"_{{{','.join(letters)}}} "
    return "".join(rf"\sum_{{{x}=0}}^{{{n - 1}}} " if latex else f"sum_{{{x}=0}}^{{{n - 1}}} "
                   for x, n in zip(letters, sizes))


def _node(kind, indices, layer, latex):
    name = "\\delta" if kind == "delta" and latex else kind
    sup = f"^{{({layer})}}" if latex else f"^({layer})"
    return f"{name}_{{{','.join(indices)}}}" + ("" if layer is None else sup)


def _lhs(kind, indices, layer, latex):
    node = _node(kind, indices, layer, latex)
    return rf"\frac{{\partial C_0}}{{\partial {node}}} = " if latex else f"dC/d{node} = "


def weight_formula(dims, size, conv, latex, *, padding=True, stride=True, combined=False):
    """dC_0/dw_{o,c,u,v}^(1) = sum_{p,q} delta_{o,p,q}^(1) x_{c, sp+u-P, sq+v-P}."""
    s, pad = conv["stride"], conv["padding"] if padding else 0
    reads = [f"{s if s > 1 and stride else ''}{p}+{u}{_plus(-pad)}"
             for p, u in zip(POSITIONS[:dims], OFFSETS[:dims])]
    return (_lhs("w", ["o", "c", *OFFSETS[:dims]], 1, latex)
            + _sums(POSITIONS[:dims], [_out(size, conv)] * dims, latex, combined)
            + _node("delta", ["o", *POSITIONS[:dims]], 1, latex) + " "
            + _node("x", ["c", *reads], None, latex))


def input_formula(dims, conv2, latex, *, flipped=True, combined=False):
    """dC_0/da_{c,p,q}^(1) = sum_{o,u,v} delta_{o,p+u-(k-1-P),..}^(2) w_{o,c,k-1-u,..}^(2)
    (layer 2 at stride 1): the full correlation with the flipped kernel."""
    k, pad = conv2["kernel"], conv2["padding"]
    at = [f"{p}+{u}{_plus(-(k - 1 - pad))}" for p, u in zip(POSITIONS[:dims], OFFSETS[:dims])]
    offsets = [f"{k - 1}-{u}" if flipped else u for u in OFFSETS[:dims]]
    return (_lhs("a", ["c", *POSITIONS[:dims]], 1, latex)
            + _sums(["o", *OFFSETS[:dims]], [conv2["channels"]] + [k] * dims, latex, combined)
            + _node("delta", ["o", *at], 2, latex) + " "
            + _node("w", ["o", "c", *offsets], 2, latex))


@st.composite
def networks(draw):
    dims = draw(st.sampled_from((1, 2)))
    size = draw(st.integers(3, 5))
    kernel = draw(st.integers(1, 3))
    padding = draw(st.integers(0, kernel - 1))
    conv1 = {"in": draw(st.integers(1, 2)), "channels": draw(st.integers(1, 2)),
             "kernel": kernel, "stride": draw(st.integers(1, 2)), "padding": padding,
             "activation": draw(st.sampled_from(("tanh", "sigmoid"))), "bias": draw(st.booleans())}
    inner = _out(size, conv1)
    kernel2 = draw(st.integers(1, min(2, inner + 1)))
    conv2 = {"channels": draw(st.integers(1, 2)), "kernel": kernel2, "stride": 1,
             "padding": draw(st.integers(0, kernel2 - 1)),
             "activation": draw(st.sampled_from(("tanh", "sigmoid"))), "bias": False}
    if kernel2 > inner + 2 * conv2["padding"]:
        conv2["padding"] = kernel2 - 1
    return dims, size, conv1, conv2, draw(st.booleans()), draw(st.booleans())


def _check(path, formula, capsys):
    code = main(["check", str(path), "--formula", formula])
    out, err = capsys.readouterr()
    return code, out + err


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(networks())
def test_textbook_conv_gradients_typed_by_a_user_are_right(tmp_path_factory, capsys, net):
    dims, size, conv1, conv2, latex, combined = net
    path = _write(tmp_path_factory.mktemp("net"), dims, size, conv1, conv2)
    for formula in (weight_formula(dims, size, conv1, latex, combined=combined),
                    input_formula(dims, conv2, latex, combined=combined)):
        code, text = _check(path, formula, capsys)
        assert code == 0 and text.startswith("RIGHT"), (formula, text)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(networks())
def test_the_classic_conv_slips_are_wrong_and_named(tmp_path_factory, capsys, net):
    dims, size, conv1, conv2, latex, _ = net
    path = _write(tmp_path_factory.mktemp("net"), dims, size, conv1, conv2)
    slips = []
    if conv1["padding"]:
        slips.append((weight_formula(dims, size, conv1, latex, padding=False),
                      "the padding is subtracted once"))
    if conv1["stride"] > 1 and _out(size, conv1) > 1:
        slips.append((weight_formula(dims, size, conv1, latex, stride=False),
                      "the stride: the window moves by 2"))
    if conv2["kernel"] > 1:
        slips.append((input_formula(dims, conv2, latex, flipped=False), "the kernel flipped"))
    for formula, words in slips:
        code, text = _check(path, formula, capsys)
        assert code == 1 and text.startswith("WRONG"), (formula, text)
        assert words in text, (formula, text)


def test_a_bias_sums_its_deltas_over_every_position(tmp_path, capsys):
    conv = {"in": 1, "channels": 2, "kernel": 2, "stride": 1, "padding": 0,
            "activation": "tanh", "bias": True}
    path = _write(tmp_path, 2, 3, conv, {**conv, "bias": False})
    right = r"\frac{\partial C_0}{\partial b_{o}^{(1)}} = \sum_{p=0}^{1}\sum_{q=0}^{1} " \
            r"\delta_{o,p,q}^{(1)}"
    assert _check(path, right, capsys)[0] == 0
    code, text = _check(path, right.replace(r"\sum_{q=0}^{1} ", "").replace("p,q", "p,0"),
                        capsys)
    assert code == 1 and text.startswith("WRONG")


@pytest.mark.parametrize(("formula", "message"), [
    (r"\delta_{0,0,5}^{(1)}", "\\delta_{0,0,5}^{(1)} lies outside its array, of shape [1, 2, 2]"),
    (r"w_{0,0,1}^{(1)}", "w takes 4 node indices"),
    (r"x_{0,2p*u,0}", "cannot read the indices '0,2p*u,0' of x"),
    (r"\sum_{p=0}^{1} \delta_{0,p,q}^{(1)}", "the index q is not bound"),
])
def test_unreadable_conv_formulas_exit_2_pointing_at_the_place(tmp_path, capsys, formula,
                                                              message):
    conv = {"in": 1, "channels": 1, "kernel": 2, "stride": 1, "padding": 0,
            "activation": "tanh", "bias": False}
    path = _write(tmp_path, 2, 3, conv, conv)
    code = main(["check", str(path), "--formula", formula, "--wrt", "w_{0,0,1,0}^{(1)}"])
    text = capsys.readouterr().err
    assert code == 2 and message in text, text
    assert "Traceback" not in text


def test_a_bare_formula_s_hint_names_a_weight_of_the_network(tmp_path, capsys):
    conv = {"in": 1, "channels": 1, "kernel": 2, "stride": 1, "padding": 0,
            "activation": "tanh", "bias": False}
    path = _write(tmp_path, 2, 3, conv, conv)
    assert main(["check", str(path), "--formula", r"\delta_{0,0,0}^{(1)}"]) == 2
    assert "--wrt 'w_{0,0,0,0}^{(1)}'" in capsys.readouterr().err


def test_the_readme_s_conv_formula_is_right_and_its_slip_is_named(tmp_path, capsys):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**Convolution and pooling.**"):]
    spec = tmp_path / "net.toml"
    spec.write_text(re.search(r"```toml\n(.*?)```", section, flags=re.DOTALL)[1])
    shown = re.search(r"```sh\nsymprop check net.toml --formula '(.*?)'\n(.*?)```", section,
                      flags=re.DOTALL)
    formula, said = shown[1], " ".join(shown[2].replace("#", " ").split())
    assert _check(spec, formula, capsys)[0] == 0
    code, text = _check(spec, formula.replace("-1", ""), capsys)
    assert code == 1 and said.startswith("RIGHT; without the padding's -1 it is WRONG")
    assert said.split("says: ")[1].removesuffix(" ...)") in " ".join(text.split())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("pquvoc"), st.integers(-3, 3).filter(bool)),
                min_size=1, max_size=3, unique_by=lambda t: t[0]),
       st.integers(-4, 4), st.dictionaries(st.sampled_from("pquvoc"), st.integers(0, 9),
                                           min_size=6), st.booleans())
def test_any_index_arithmetic_reads_back_to_its_value(terms, constant, values, spaced):
    """Index arithmetic as a user types it (as symprop prints it, with or without spaces)
    reads to the same whole number at any letter values."""
    from symprop.formula.syntax import Shifted
    from symprop.formula.tokens import read_indices

    written = Shifted(tuple(terms), constant)
    text = str(written)
    if spaced:
        text = text.replace("+", " + ").replace("-", " - ")
    read = read_indices(f"c, {text}", "a", 0, text)[1]
    expected = sum(c * values[x] for x, c in terms) + constant
    value = read.value(values) if isinstance(read, Shifted) else values[read]
    assert value == expected, (text, read)


# ------------------------------------------------------------------ pooling
POOLS = """input = [1, 6, 6]
loss = "sse"
[[layer]]
kind = "conv2d"
channels = 2
kernel = 1
activation = "tanh"
[[layer]]
kind = "maxpool2d"
kernel = 2
[[layer]]
kind = "avgpool2d"
kernel = 2
stride = 1
[[layer]]
kind = "flatten"
[[layer]]
kind = "dense"
width = 2
"""
MAX_POOL = (r"\frac{\partial C_0}{\partial a_{c,p,q}^{(1)}} = \sum_{r,t} \frac{\partial C_0}"
            r"{\partial a_{c,r,t}^{(2)}} \left[a_{c,p,q}^{(1)} = \max_{u,v} a_{c,2r+u,2t+v}^{(1)}"
            r"\right]")
AVG_POOL = (r"\frac{\partial C_0}{\partial a_{c,p,q}^{(2)}} = \frac{1}{4} \sum_{r,t} "
            r"\sum_{u=0}^{1} \sum_{v=0}^{1} [p = r+u] [q = t+v] \frac{\partial C_0}"
            r"{\partial a_{c,r,t}^{(3)}}")


@pytest.mark.parametrize("formula", [
    MAX_POOL, AVG_POOL,
    # derive's own result for one node, in plain text and LaTeX
    ("dC_0/da_0,0,1^(1) = (dC_0/da_0,0,0^(2)) * [a_0,0,1^(1) = max(a_0,0,0^(1), a_0,0,1^(1), "
    "a_0,1,0^(1), a_0,1,1^(1))]"),
    (r"\frac{\partial a_{0,0,0}^{(2)}}{\partial a_{0,1,1}^{(1)}} = \left[a_{0,1,1}^{(1)} = "
    r"\max\left(a_{0,0,0}^{(1)}, a_{0,0,1}^{(1)}, a_{0,1,0}^{(1)}, a_{0,1,1}^{(1)}\right)\right]"),
    # the average pool's node (0, 1, 0): the two windows that read it, each a quarter
    (r"\frac{\partial C_0}{\partial a_{0,1,0}^{(2)}} = \frac{1}{4} \left(\frac{\partial C_0}"
    r"{\partial a_{0,0,0}^{(3)}} + \frac{\partial C_0}{\partial a_{0,1,0}^{(3)}}\right)"),
])
def test_pooling_gradients_typed_by_a_user_are_right(tmp_path, capsys, formula):
    """A max pool's Iverson bracket [a = max over the window], an average pool's [p = r+u]
    brackets: check reads both, and derive's own printed results."""
    path = tmp_path / "pools.toml"
    path.write_text(POOLS)
    code, text = _check(path, formula, capsys)
    assert code == 0 and text.startswith("RIGHT"), (formula, text)


@pytest.mark.parametrize("formula, words", [
    (MAX_POOL.replace("2r+u,2t+v", "r+u,t+v"),
     ("replace a_{c,r+u,t+v}^{(1)} with a_{c,2r+u,2t+v}^{(1)} (the stride: the window moves by "
     "2)")),
    (AVG_POOL.replace(r"\frac{1}{4}", r"\frac{1}{2}"), "a constant factor is off"),
    (AVG_POOL.replace("[p = r+u]", "[p = 2r+u]"), "WRONG"),
    (MAX_POOL.replace(r"\max_{u,v}", r"\max_{u}").replace("2t+v", "2t"), "WRONG"),
])
def test_pooling_slips_are_wrong(tmp_path, capsys, formula, words):
    path = tmp_path / "pools.toml"
    path.write_text(POOLS)
    code, text = _check(path, formula, capsys)
    assert code == 1 and text.startswith("WRONG") and words in text, (formula, text)


@pytest.mark.parametrize("formula, message", [
    (r"[p = 2r+*u] \delta_{0,0,0}^{(1)}", "cannot read 'p' here"),
    (r"\max_{u,v} \delta_{0,u,v}^{(1)}", "the range of u in this max is unknown"),
    (r"\max a_{0,0,0}^{(1)}", "a max needs the letters it runs over"),
])
def test_unreadable_pooling_formulas_exit_2(tmp_path, capsys, formula, message):
    path = tmp_path / "pools.toml"
    path.write_text(POOLS)
    code = main(["check", str(path), "--formula", formula, "--wrt", "a_{0,0,0}^{(1)}"])
    text = capsys.readouterr().err
    assert code == 2 and message in text and "Traceback" not in text, text


def max_pool_stack(size: int, kernel: int, bias: bool, pools):
    """A 1-D relu conv of ``size`` positions and ``kernel``, then a max pool of each
    (kernel, stride) of ``pools``, a flatten and one dense output node."""
    from symprop.spec import Spec

    layers = [{"kind": "conv1d", "channels": 1, "kernel": kernel, "activation": "relu",
               "bias": bias}]
    layers += [{"kind": "maxpool1d", "kernel": k, "stride": s} for k, s in pools]
    return Spec.from_dict({"input": [1, size], "loss": "sse", "layer": [
        *layers, {"kind": "flatten"}, {"kind": "dense", "width": 1}]})


def derivations_a_max_pool_reads(engine):
    """derive's derivation of every entry a max pool reads (an entry no window reads has
    none: derive says so)."""
    from symprop.errors import NameLookupError

    for l in range(1, engine.graph.L):
        if engine.graph.spec.layer(l + 1).kind.startswith("maxpool"):
            for node in engine.graph.a[l]:
                try:
                    yield engine.derive(node)
                except NameLookupError:
                    continue


def _long_max_pool_stack(data):
    """A 1-D relu conv of 10-13 positions (names sort out of row-major order there:
    a_{0,10} before a_{0,9}) and one or two max pools, overlapping or not: relu's zeros and a
    pool after an overlapping pool put ties in the windows."""
    size, kernel, bias = (data.draw(st.integers(10, 13)), data.draw(st.integers(1, 2)),
                          data.draw(st.booleans()))
    pools = [(data.draw(st.integers(2, 3)), data.draw(st.integers(1, 2)))
             for _ in range(data.draw(st.integers(1, 2)))]
    return max_pool_stack(size, kernel, bias, pools)


@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), st.integers(0, 3))
def test_derive_s_result_for_every_entry_a_max_pool_reads_is_right_and_0_is_not(data, seed):
    """For every entry a max pool reads, the result derive prints (plain text and LaTeX, with
    its [a = max(window)] brackets) reads back RIGHT, ties and all; and a claim of 0 is WRONG
    wherever the derivative is not 0 everywhere (an entry that is no window's maximum at the
    first random points once took 0 as right)."""
    from symprop.check import check_formula
    from symprop.derivation import backprop
    from symprop.printing.latex import SeedLatexPrinter
    from symprop.printing.text import text

    spec = _long_max_pool_stack(data)
    engine = backprop(spec)
    latex = SeedLatexPrinter({"L": engine.graph.L, "layers": "absolute"})
    for derivation in derivations_a_max_pool_reads(engine):
        plain = (f"{text(derivation.lhs, layers='absolute')} = "
                 f"{text(derivation.result, layers='absolute')}")
        typeset = f"{latex.doprint(derivation.lhs)} = {latex.doprint(derivation.result)}"
        for formula in (plain, typeset):
            result = check_formula(spec, formula, seed=seed)
            assert result.right, (formula, str(result))
        zero = check_formula(spec, f"{text(derivation.lhs, layers='absolute')} = 0",
                             seed=seed)
        assert not zero.right, (derivation.target, str(zero))
