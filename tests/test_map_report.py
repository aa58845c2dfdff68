"""``symprop report`` on networks of maps (conv, pooling, flatten): the general equations and
the batch (correlation) form of every map layer, each checked before it is printed, a wrong
one refused; the documents compile with pdflatex and render in Chromium."""

import itertools
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


# ------------------------------------------------ the interactive report of a conv network
def _interactive(tmp_path) -> Path:
    spec = tmp_path / "net.toml"
    spec.write_text(SMALL)
    page = tmp_path / "net.html"
    assert main(["report", str(spec), "-o", str(page), "--interactive"]) == 0
    return page


def test_every_parameter_and_map_node_of_a_conv_network_is_in_its_layer_s_menu(tmp_path):
    from test_interactive import Dom, Menus, data_of

    page = _interactive(tmp_path)
    text = page.read_text()
    dom, menus = Dom(text), Menus(text)
    spec = Spec.from_toml_string(SMALL)
    expected = {f"w_{o},0,{u},{v}^(L-3)" for o in range(2) for u in range(3) for v in range(3)}
    expected |= {f"a_{c},{p},{q}^(L-3)" for c in range(2) for p in range(2) for q in range(2)}
    expected |= {f"x_0,{p},{q}" for p in range(4) for q in range(4)}
    assert expected <= set(dom.sections)
    assert len(dom.sections) == spec.n_parameters + sum(spec.layers)
    in_menus = {n for m in menus.menus.values() for n in m}
    assert in_menus == set(dom.sections)  # every choice through a layer's column
    assert {o["data-menu"] for o in menus.openers} == set(menus.menus)
    paths = data_of(page)["paths"]
    assert paths["w_1,0,2,2^(L-3)"] == ["e-map-2", "e-map-3", "e-map-4", "e-map-loss",
                                         "n-loss"]
    assert paths["x_0,1,1"] == ["e-map-1", "e-map-2", "e-map-3", "e-map-4", "e-map-loss",
                                "n-loss"]


MAP_MENU = """
setTimeout(function () {
  var log = {};
  var column = document.querySelector('svg g.more[data-menu="more-1"]');
  var menu = document.getElementById("more-1");
  column.dispatchEvent(new MouseEvent("click", {bubbles: true}));
  log.open = !menu.hidden;
  menu.querySelector('a[data-name="w_1,0,2,2^(L-3)"]').click();
  setTimeout(function () {
    log.shown = Array.prototype.filter.call(document.querySelectorAll("section.derivation"),
      function (s) { return !s.hidden; }).map(function (s) { return s.getAttribute("data-name"); });
    log.on = Array.prototype.map.call(document.querySelectorAll(".on-path"),
                                      function (e) { return e.id; });
    document.body.setAttribute("data-log", JSON.stringify(log));
  }, 300);
}, 100);
"""


@pytest.mark.needs("chromium")
def test_a_conv_weight_is_chosen_from_its_layer_s_column_in_chromium(tmp_path):
    """A click on layer 1's channel stack opens its menu; choosing w_{1,0,2,2}^(1) there
    shows its derivation alone and marks the arrows from layer 1 to the loss."""
    from test_interactive import Browser, _log, with_script

    page = with_script(_interactive(tmp_path), MAP_MENU, "clicked.html")
    log = _log(Browser(tmp_path).dom(page.as_uri()))
    assert log["open"] and log["shown"] == ["w_1,0,2,2^(L-3)"]
    assert set(log["on"]) == {"e-map-2", "e-map-3", "e-map-4", "e-map-loss", "n-loss"}


def test_every_node_before_a_max_pool_of_relus_passes_the_quick_self_check():
    """relu makes exact zeros, and a max pool's window of zeros is a tie: at such a point
    C_0 has a kink in the node and central differences cannot judge the derivative there.
    The self-check (every section of an interactive report runs it) moves to another random
    point instead of calling a right derivation wrong (found by lenet's interactive report:
    dC_0/da_{0,4,0}^(1))."""
    from symprop.self_check import ensure

    engine = backprop(Spec.from_dict({
        "input": [1, 6, 6], "loss": "sse",
        "layer": [{"kind": "conv2d", "channels": 3, "kernel": 3, "padding": 1,
                   "activation": "relu"},
                  {"kind": "maxpool2d", "kernel": 2}, {"kind": "flatten"},
                  {"kind": "dense", "width": 2}]}))
    for c, p, q in itertools.product(range(3), range(6), range(6)):
        ensure(engine.derive(f"a_{{{c},{p},{q}}}^{{(1)}}"), quick=True)


def test_an_entry_no_window_reads_has_no_section_of_the_interactive_report(tmp_path):
    """A 5 x 5 map under a 2 x 2 max pool: its last row and column reach the loss by no
    path (derive says so, exit 2); the interactive report leaves them out and offers the
    rest."""
    from test_interactive import Dom

    spec = Spec.from_dict({
        "input": [1, 5, 5], "loss": "sse",
        "layer": [{"kind": "conv2d", "channels": 1, "kernel": 3, "padding": 1,
                   "activation": "tanh"},
                  {"kind": "maxpool2d", "kernel": 2}, {"kind": "flatten"},
                  {"kind": "dense", "width": 2}]})
    from symprop.interactive import write_interactive

    sections = set(Dom(write_interactive(spec, tmp_path / "net.html").read_text()).sections)
    assert "a_0,3,3^(L-3)" in sections and "a_0,0,4^(L-3)" not in sections
    assert "a_0,4,0^(L-3)" not in sections and "x_0,4,4" in sections  # x_4,4 feeds z_3,3
