"""``symprop report`` on networks of maps (conv, pooling, flatten): the general equations and
the batch (correlation) form of every map layer, each checked before it is printed, a wrong
one refused; the documents compile with pdflatex and render in Chromium."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import sympy
from conftest import CHROMIUM_FLAGS

from symprop import Spec
from symprop.cli import main
from symprop.derivation import backprop
from symprop.layers import conv
from symprop.matrix import matrix_form
from symprop.report import build_report, write_report

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SMALL = """input = [1, 4, 4]
loss = "sse"

[[layer]]
kind = "conv2d"
channels = 2
kernel = 3
stride = 2
padding = 1
activation = "relu"

[[layer]]
kind = "avgpool2d"
kernel = 2

[[layer]]
kind = "flatten"

[[layer]]
kind = "dense"
width = 2
activation = "sigmoid"
"""


def test_report_of_a_conv_network_states_its_equations_and_batch_form(tmp_path, capsys):
    spec = tmp_path / "net.toml"
    spec.write_text(SMALL)
    out = tmp_path / "report.tex"
    assert main(["report", str(spec), "-o", str(out), "--layers", "absolute"]) == 0
    tex = out.read_text()
    for line in (
            # the definition, the shared weight's gradient, a pool's gradient passed back
            (r"z_{o,p,q}^{(1)} = \sum_{c=0}^{0} \sum_{u=0}^{2} \sum_{v=0}^{2} w_{o,c,u,v}^{(1)} "
            r"x_{c,2p+u-1,2q+v-1}"),
            (r"\frac{\partial C_{0}}{\partial w_{o,c,u,v}^{(1)}} = \sum_{p=0}^{1} "
            r"\sum_{q=0}^{1} \delta_{o,p,q}^{(1)} x_{c,2p+u-1,2q+v-1}"),
            # the batch form: the sample index first, summed over the batch
            (r"\frac{\partial C}{\partial w_{o,c,u,v}^{(1)}} = \sum_{b=0}^{n - 1} \sum_{p=0}^{1} "
            r"\sum_{q=0}^{1} \Delta^{(1)}_{b,o,p,q} X_{b,c,2p+u-1,2q+v-1}"),
            (r"\Delta^{(1)}_{b,c,p,q} = \left(\frac{\partial C}{\partial A^{(1)}}\right)_{b,c,p,q} "
            r"\operatorname{ReLU}^{\prime}\left(Z^{(1)}_{b,c,p,q}\right)"),
            (r"\left(\frac{\partial C}{\partial A^{(2)}}\right)_{b,c,p,q} = "
            r"\left(\frac{\partial C}{\partial A^{(3)}}\right)_{b,c+p+q}")):
        assert line in tex, line
    assert "the sample index" in tex and r"\section*{The matrix form}" in tex


def test_a_wrong_batch_step_of_a_map_layer_is_refused(monkeypatch):
    """The weight's gradient without the padding's shift: the entries checked for a batch of
    two differ from the engine's, and the matrix form refuses to state it."""
    engine = backprop(Spec.from_toml_string(SMALL))
    right = conv.ConvLayer.general_parameters

    def unpadded(self):
        return [(p, rhs.xreplace({s: sympy.Symbol(s.name.replace("+u-1", "+u").replace(
            "+v-1", "+v")) for s in rhs.atoms(sympy.Symbol)})) for p, rhs in right(self)]
    monkeypatch.setattr(conv.ConvLayer, "general_parameters", unpadded)
    with pytest.raises(AssertionError, match="gradient of w_0,0,0,0"):
        matrix_form(engine)


@pytest.mark.needs("pdflatex")
def test_the_lenet_report_compiles_with_pdflatex(tmp_path):
    spec = Spec.from_toml(EXAMPLES / "lenet.toml")
    path = write_report(spec, tmp_path / "lenet.pdf")
    assert path.read_bytes().startswith(b"%PDF") and path.stat().st_size > 50_000


@pytest.mark.needs("chromium")
def test_the_lenet_report_renders_in_chromium(tmp_path):
    page = tmp_path / "lenet.html"
    write_report(Spec.from_toml(EXAMPLES / "lenet.toml"), page)
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", """<script>
document.body.setAttribute('data-check', JSON.stringify({
  maths: document.querySelectorAll('math').length,
  sums: document.querySelectorAll('munderover').length}));
</script></body>"""))
    run = subprocess.run([shutil.which("chromium"), *CHROMIUM_FLAGS,
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          probe.as_uri()], capture_output=True, text=True, timeout=120,
                         check=False)
    found = re.search(r'data-check="\{&quot;maths&quot;:(\d+),&quot;sums&quot;:(\d+)\}"',
                      run.stdout)
    assert found, run.stderr[-2000:]
    assert int(found.group(1)) > 100 and int(found.group(2)) > 30


def test_the_report_holds_every_map_equation_and_step_for_lenet():
    r = build_report(Spec.from_toml(EXAMPLES / "lenet.toml")).context
    assert any(r"w_{o,c,2-u,2-v}^{(L-2)}" in line for line in r["equations"])
    steps = [s for layer in r["matrix"] for s in layer["steps"]]
    assert {s["step"] for s in steps} >= {"delta", "weights", "biases", "inputs"}
    assert all(s["checked"] >= 1 for s in steps)


def _rects(view, style):
    return [r for r in view["rects"] if r["style"] == style]


def test_the_diagram_draws_channel_stacks_with_the_weight_s_window_and_its_channel():
    """w_{1,0,2,2}^(1) of lenet (kernel 3, padding 1): its window at the first position is
    clipped to the input's top-left 2 x 2 cells, the entry it reads there is x_{0,1,1}, its
    output channel 1 is drawn in front and filled (the weight is shared by every position),
    and every arrow after layer 1 is on the path."""
    from symprop.diagram_maps import SIDE, map_diagram_view
    from symprop.notation import Node

    spec = Spec.from_toml(EXAMPLES / "lenet.toml")
    view = map_diagram_view(spec, Node("w", 1, 1, 0, 2, 2))
    window, = _rects(view, "window")
    cell = SIDE / 8
    assert (round(window["w"], 6), round(window["h"], 6)) == (round(2 * cell, 6),
                                                               round(2 * cell, 6))
    channels = [r for r in view["rects"] if r["style"] == "channel" and r["x"] < 1.5]
    read = [r for r in _rects(view, "cell") if r["x"] < 1.5]
    assert len(read) == 1 and len(channels) == 1  # the input has one channel
    x0, y0 = channels[0]["x"], channels[0]["y"]
    assert (round(read[0]["x"] - x0, 6), round(y0 + SIDE - read[0]["y"] - cell, 6)) == \
        (round(cell, 6), round(cell, 6))  # row 1, column 1
    shared, = _rects(view, "shared")
    assert shared["w"] == pytest.approx(SIDE)
    assert [a["lit"] for a in view["arrows"]] == [False, True, True, True, True, True]
    assert view["loss"]["lit"]
    plain = map_diagram_view(spec)
    assert not _rects(plain, "window") and len(_rects(plain, "kernel")) == 3
    assert not any(a["lit"] for a in plain["arrows"])
