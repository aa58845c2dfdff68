"""The interactive report (design.md section 7): `symprop report SPEC -o FILE.html --interactive`.

The files are written through the command line. What the script does is checked in a real
headless Chromium: the DOM it leaves (--dump-dom after a virtual-time budget) for a fragment,
after a simulated click, key presses and the back button, and with scripts blocked by a
Content-Security-Policy (headless Chromium cannot dump a page with scripts switched off
altogether). Screenshots of each state are kept in $SYMPROP_ARTIFACTS (default: the test's
temporary folder) and must be larger than a blank page's.
"""

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import CHROMIUM_FLAGS

from symprop import Spec
from symprop.cli import main
from symprop.interactive import INTERACTIVE_LIMIT, interactive_estimate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The interactive reports of four examples, written by the command line."""
    folder = tmp_path_factory.mktemp("interactive")
    out = {}
    for name in ("tutorial", "softmax_ce", "residual", "seed001"):
        out[name] = folder / f"{name}.html"
        assert main(["report", str(EXAMPLES / f"{name}.toml"), "-o", str(out[name]),
                     "--interactive"]) == 0
    return out


class Dom(HTMLParser):
    """What the tests read from a page: sections, marked elements, choices, ids, links."""

    def __init__(self, text: str):
        super().__init__()
        self.sections: dict[str, bool] = {}  # data-name -> hidden
        self.on_path: set[str] = set()
        self.choices: list[dict] = []
        self.ids: set[str] = set()
        self.attrs: list[tuple[str, str, str]] = []
        self.html_class = ""
        self.body: dict = {}
        self.notice_hidden = True
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key, value in attrs:
            self.attrs.append((tag, key, value or ""))
        classes = (a.get("class") or "").split()
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "section" and "derivation" in classes:
            self.sections[a["data-name"]] = "hidden" in a
        if "on-path" in classes:
            self.on_path.add(a.get("id"))
        if tag == "g" and "choice" in classes:
            self.choices.append(a)
        if tag == "html":
            self.html_class = a.get("class") or ""
        if tag == "body":
            self.body = a
        if a.get("id") == "symprop-notice":
            self.notice_hidden = "hidden" in a

    @property
    def shown(self) -> list[str]:
        return [name for name, hidden in self.sections.items() if not hidden]


def data_of(page: Path) -> dict:
    found = re.search(r'<script type="application/json" id="symprop-data">(.*?)</script>',
                      page.read_text(), re.DOTALL)
    return json.loads(found.group(1))


def artifacts(tmp_path) -> Path:
    folder = Path(os.environ.get("SYMPROP_ARTIFACTS") or tmp_path) / "interactive"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Browser:
    """Headless Chromium on local files, one profile per run."""

    def __init__(self, tmp_path):
        self.exe = shutil.which("chromium")
        self.tmp = tmp_path
        self.runs = 0

    def _run(self, *args, timeout=180):
        self.runs += 1
        profile = self.tmp / f"profile{self.runs}"
        return subprocess.run([self.exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout, check=False)

    def dom(self, url: str) -> Dom:
        run = self._run("--virtual-time-budget=5000", "--dump-dom", url)
        assert "<section" in run.stdout, run.stderr[-2000:]
        return Dom(run.stdout)

    def shot(self, url: str, path: Path) -> int:
        self._run("--virtual-time-budget=5000", "--window-size=1100,1300",
                  f"--screenshot={path}", url)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        return path.stat().st_size

    def pages_printed(self, url: str) -> int:
        pdf = self.tmp / f"print{self.runs}.pdf"
        self._run("--virtual-time-budget=5000", "--no-pdf-header-footer",
                  f"--print-to-pdf={pdf}", url)
        return len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))


@pytest.fixture
def browser(tmp_path):
    return Browser(tmp_path)


@pytest.fixture
def blank(browser, tmp_path):
    """The size of a screenshot of an empty page at the same window size."""
    empty = tmp_path / "blank.html"
    empty.write_text("<!DOCTYPE html><html><body></body></html>")
    return browser.shot(empty.as_uri(), tmp_path / "blank.png")


def with_script(page: Path, script: str, name: str) -> Path:
    """A copy of ``page`` with a test script run after load (the simulated user)."""
    copy = page.with_name(name)
    copy.write_text(page.read_text().replace(
        "</body>", f"<script>window.addEventListener('load', function () {{\n{script}\n}});"
                   "</script></body>"))
    return copy


# ------------------------------------------------------------------ the file itself
def test_every_parameter_and_node_has_its_section(pages):
    tutorial = Dom(pages["tutorial"].read_text())
    expected = {f"w_{j}{k}^({lab})" for lab, rows, cols in (("L", 4, 6), ("L-1", 6, 6),
                                                             ("L-2", 6, 3))
                for j in range(rows) for k in range(cols)}
    expected |= {f"a_{j}^({lab})" for lab, n in (("L", 4), ("L-1", 6), ("L-2", 6))
                 for j in range(n)}
    expected |= {"x_0", "x_1", "x_2"}
    assert set(tutorial.sections) == expected and len(tutorial.sections) == 97
    # without the script nothing is hidden: the file is the full static report
    assert not any(tutorial.sections.values())
    text = pages["tutorial"].read_text()
    for heading in ("Notation", "The backpropagation equations", "The matrix form"):
        assert f">{heading}</h2>" in text
    residual = Dom(pages["residual"].read_text())
    assert {"gamma_1^(L-3)", "beta_7^(L-3)", "c_43^(L-1)", "s_4^(L-1)", "w_73^(L-4)",
            "b_2^(L)", "a_5^(L-2)", "x_3"} <= set(residual.sections)
    assert len(residual.sections) == 119 + 4 + 8 * 3 + 5 + 3


def test_a_wide_layers_other_parameters_show_the_general_formula_filled_in(pages):
    text = pages["residual"].read_text()
    sections = dict(re.findall(r'<section class="derivation" id="[^"]*" data-name="([^"]*)">'
                               r"(.*?)</section>", text, re.DOTALL))
    short = {n for n, body in sections.items() if "The general formula of its layer" in body}
    # layer 1 (8 wide) is derived step by step for w_12 and a_1 only
    assert "w_12^(L-4)" not in short and "a_1^(L-4)" not in short
    assert {"w_00^(L-4)", "w_73^(L-4)", "b_5^(L-4)", "gamma_0^(L-3)", "c_43^(L-1)"} <= short
    # the output layer reads 5 nodes and has 3: every parameter step by step
    assert not any(n.endswith("^(L)") for n in short)
    for name in short:
        link = re.search(r'one by one for <a href="#([^"]*)" data-name="([^"]*)"',
                         sections[name])
        assert link, name
        assert link.group(2) in sections and link.group(2) not in short


def test_a_backward_step_with_its_own_section_is_a_link_to_it(pages):
    text = pages["tutorial"].read_text()
    body = re.search(r'<section class="derivation" id="[^"]*" data-name="w_22\^\(L-1\)">'
                     r"(.*?)</section>", text, re.DOTALL).group(1)
    assert 'is worked out step by step in its own derivation: <a href="#a_2%5E%28L-1%29" ' \
           'data-name="a_2^(L-1)">' in body
    assert "Derivation of" in body and body.count("Derivation of") == 1


def test_no_element_references_the_network(pages):
    for page in pages.values():
        text = page.read_text()
        dom = Dom(text)
        assert not [(t, k) for t, k, _ in dom.attrs if k in ("src", "srcset", "action")]
        assert not [v for t, k, v in dom.attrs if k in ("href", "xlink:href")
                    and not v.startswith("#")]
        assert "<link" not in text and "@import" not in text and "fetch(" not in text
        assert set(re.findall(r"url\(([^)]*)\)", text)) <= {"#arrow-lit", "#arrow-dim"}
        namespaces = {"http://www.w3.org/2000/svg", "http://www.w3.org/1998/Math/MathML"}
        assert set(re.findall(r"https?://[^\"'\s<>]*", text)) <= namespaces


def test_every_path_is_drawn_and_reaches_the_loss(pages):
    for page in pages.values():
        dom, data = Dom(page.read_text()), data_of(page)
        drawn = {c["data-name"] for c in dom.choices}
        assert drawn <= set(dom.sections)
        for name, path in data["paths"].items():
            assert set(path) <= dom.ids and "n-loss" in path, name
        assert all(c["tabindex"] == "0" and c["role"] == "button" for c in dom.choices)
        assert set(data["aliases"].values()) == set(dom.sections)


def test_the_size_is_estimated_and_a_big_network_refused(tmp_path, capsys):
    for name in ("tutorial", "softmax_ce", "residual"):
        spec = Spec.from_toml(EXAMPLES / f"{name}.toml")
        out = tmp_path / f"{name}.html"
        assert main(["report", str(EXAMPLES / f"{name}.toml"), "-o", str(out),
                     "--interactive"]) == 0
        ratio = interactive_estimate(spec).size / out.stat().st_size
        assert 0.8 < ratio < 1.5, (name, ratio)
    big = tmp_path / "big.toml"
    big.write_text('layers = [784, 256, 256, 10]\nactivation = ["sigmoid", "sigmoid", '
                   '"softmax"]\nloss = "cross_entropy"\n')
    capsys.readouterr()
    assert main(["report", str(big), "-o", str(tmp_path / "big.html"), "--interactive"]) == 2
    err = capsys.readouterr().err
    assert "the interactive report" in err and "bytes" in err and "--force" in err
    assert f"{INTERACTIVE_LIMIT:,}" in err and "Traceback" not in err
    assert not (tmp_path / "big.html").exists()


def test_only_html_is_interactive(tmp_path, capsys):
    assert main(["report", str(EXAMPLES / "seed001.toml"), "-o", str(tmp_path / "r.pdf"),
                 "--interactive"]) == 2
    assert "an interactive report is an HTML file, not 'r.pdf'" in capsys.readouterr().err
    assert not (tmp_path / "r.pdf").exists()


def test_the_static_report_has_no_explorer(tmp_path):
    out = tmp_path / "r.html"
    assert main(["report", str(EXAMPLES / "seed001.toml"), "-o", str(out)]) == 0
    text = out.read_text()
    assert "<script" not in text and 'class="choice"' not in text
    assert "Derivations, one weight per layer" in text


# ------------------------------------------------------------------ in Chromium
#: (example, fragment as typed, the section it selects, ids that must be on its path,
#:  ids that must not)
FRAGMENTS = [
    ("tutorial", "w_12^(L)", "w_12^(L)",
     {"n-n3_1", "e-n2_2-n3_1", "e-n3_1-loss", "n-loss"}, {"n-n3_0", "e-n2_1-n3_1"}),
    ("softmax_ce", "b_0^(1)", "b_0^(L-1)",  # absolute layer; softmax couples every output
     {"n-n1_0", *(f"e-n1_0-n2_{j}" for j in range(3)), "n-n2_2", "n-loss"}, {"n-n1_1"}),
    ("tutorial", "a_2%5E(L-1)", "a_2^(L-1)",  # a hidden node, percent-encoded
     {"n-n2_2", *(f"e-n2_2-n3_{j}" for j in range(4)), *(f"n-n3_{j}" for j in range(4))},
     {"n-n2_1", "e-n1_2-n2_2"}),
    ("residual", "\\gamma_{1}^{(2)}", "gamma_1^(L-3)",  # a layernorm's gamma, in LaTeX
     {"n-n2_1", "e-n2_1-n3_1", "n-n3_1", "n-n4_0", "n-n5_2"}, {"n-n1_1", "n-n2_0"}),
    ("softmax_ce", "w_%7B12%7D%5E%7B(L)%7D", "w_12^(L)",
     {"e-n1_2-n2_1", "n-n2_1"}, {"e-n1_1-n2_2"}),
]


@pytest.mark.needs("chromium")
@pytest.mark.parametrize("example, fragment, name, on, off", FRAGMENTS)
def test_a_fragment_shows_exactly_its_derivation_and_marks_its_path(
        pages, browser, blank, tmp_path, example, fragment, name, on, off):
    url = f"{pages[example].as_uri()}#{fragment}"
    dom = browser.dom(url)
    assert dom.shown == [name]
    assert len(dom.sections) == len(Dom(pages[example].read_text()).sections)
    assert dom.on_path == set(data_of(pages[example])["paths"][name])
    assert on <= dom.on_path and not off & dom.on_path
    assert "js" in dom.html_class.split() and dom.notice_hidden
    assert [c["data-name"] for c in dom.choices if c.get("aria-pressed") == "true"] == (
        [name] if any(c["data-name"] == name for c in dom.choices) else [])
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    assert browser.shot(url, artifacts(tmp_path) / f"{example}-{safe}.png") > blank * 3


CLICK = """
var log = {};
var record = function (key) {
  log[key] = {hash: location.hash, shown: Array.prototype.filter.call(
    document.querySelectorAll("section.derivation"), function (s) { return !s.hidden; })
    .map(function (s) { return s.getAttribute("data-name"); }),
    on: Array.prototype.map.call(document.querySelectorAll(".on-path"),
                                 function (e) { return e.id; })};
  document.body.setAttribute("data-log", JSON.stringify(log));
};
setTimeout(function () {
  record("start");
  document.querySelector('g.choice[data-name="w_01^(L-1)"]').dispatchEvent(
    new MouseEvent("click", {bubbles: true}));
  setTimeout(function () {
    record("clicked");
    history.back();
    setTimeout(function () { record("back"); STOP }, 300);
  }, 300);
}, 100);
"""


def _log(dom: Dom) -> dict:
    return json.loads(dom.body["data-log"])


@pytest.mark.needs("chromium")
def test_a_click_on_another_edge_switches_to_it_and_back_returns(pages, browser, blank,
                                                                  tmp_path):
    paths = data_of(pages["tutorial"])["paths"]
    page = with_script(pages["tutorial"], CLICK.replace("STOP", ""), "click.html")
    log = _log(browser.dom(f"{page.as_uri()}#w_12^(L)"))
    assert log["start"]["shown"] == ["w_12^(L)"]
    assert log["clicked"]["shown"] == ["w_01^(L-1)"]
    assert log["clicked"]["hash"] == "#w_01%5E(L-1)"  # the fragment follows the selection
    assert set(log["clicked"]["on"]) == set(paths["w_01^(L-1)"])
    assert "e-n1_1-n2_0" in log["clicked"]["on"]
    assert log["back"]["shown"] == ["w_12^(L)"] and log["back"]["hash"] == "#w_12^(L)"
    # the state after the click, as a picture
    after = with_script(pages["tutorial"], CLICK.replace("history.back();", "")
                        .replace("STOP", ""), "clicked.html")
    assert browser.shot(f"{after.as_uri()}#w_12^(L)",
                        artifacts(tmp_path) / "tutorial-after-click.png") > blank * 3


KEYS = """
var press = function (key) {
  document.activeElement.dispatchEvent(new KeyboardEvent("keydown", {key: key, bubbles: true}));
  return document.activeElement.getAttribute("data-name");
};
setTimeout(function () {
  var log = {};
  document.querySelector('g.choice[data-name="x_0"]').focus();
  log.focused = document.activeElement.getAttribute("data-name");
  log.down = press("ArrowDown");
  log.right = press("ArrowRight");
  log.right2 = press("ArrowRight");
  log.left = press("ArrowLeft");
  press("Enter");
  setTimeout(function () {
    log.hash = decodeURIComponent(location.hash);
    log.shown = Array.prototype.filter.call(document.querySelectorAll("section.derivation"),
      function (s) { return !s.hidden; }).map(function (s) { return s.getAttribute("data-name"); });
    log.tabbable = Array.prototype.every.call(document.querySelectorAll("g.choice"),
      function (g) { return g.tabIndex === 0; });
    log.listed = document.querySelectorAll("nav.choices a[data-name]").length;
    document.body.setAttribute("data-log", JSON.stringify(log));
  }, 300);
}, 100);
"""


@pytest.mark.needs("chromium")
def test_the_keyboard_reaches_and_selects_every_choice(pages, browser):
    page = with_script(pages["tutorial"], KEYS, "keys.html")
    log = _log(browser.dom(page.as_uri()))
    assert log["focused"] == "x_0" and log["down"] == "x_1"
    assert log["right"].startswith("w_") and log["right"].endswith("^(L-2)")  # its arrows
    assert log["right2"].startswith("a_") and log["right2"].endswith("^(L-2)")  # layer 1
    assert log["left"].endswith("^(L-2)") and log["left"].startswith("w_")
    assert log["shown"] == [log["left"]] and log["hash"] == "#" + log["left"]
    assert log["tabbable"] and log["listed"] == 97


@pytest.mark.needs("chromium")
def test_an_unknown_fragment_says_so_and_shows_the_first(pages, browser):
    dom = browser.dom(f"{pages['tutorial'].as_uri()}#w_99^(L)")
    assert dom.shown == ["w_12^(L)"] and not dom.notice_hidden


@pytest.mark.needs("chromium")
def test_without_scripts_or_printed_every_derivation_shows(pages, browser, blank, tmp_path):
    page = pages["seed001"]
    blocked = page.with_name("blocked.html")  # the browser refuses every script of the page
    blocked.write_text(page.read_text().replace(
        "<head>", "<head>\n<meta http-equiv=\"Content-Security-Policy\" "
                  "content=\"script-src 'none'\">", 1))
    dom = browser.dom(f"{blocked.as_uri()}#w_01^(L-1)")
    assert len(dom.shown) == len(dom.sections) == len(Dom(page.read_text()).sections) > 10
    assert "js" not in dom.html_class.split() and not dom.on_path
    # (a screenshot after headless Chromium's jump to a fragment's id comes out blank)
    assert browser.shot(blocked.as_uri(),
                        artifacts(tmp_path) / "seed001-no-script.png") > blank * 3
    # printed with the script running, one derivation selected: every one is printed
    assert browser.dom(f"{page.as_uri()}#w_01^(L-1)").shown == ["w_01^(L-1)"]
    printed = browser.pages_printed(f"{page.as_uri()}#w_01^(L-1)")
    assert printed == browser.pages_printed(f"{blocked.as_uri()}#w_01^(L-1)") > 20


# ------------------------------------------------- what the diagram does not draw
class Menus(HTMLParser):
    """The diagram's menu openers (g.more: an ellipsis or a column heading, and the menu
    each opens) and each menu's choices."""

    def __init__(self, text: str):
        super().__init__()
        self.openers: list[dict] = []
        self.menus: dict[str, list[str]] = {}
        self._menu = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "g" and "more" in classes:
            self.openers.append(a)
        if tag == "div" and "more-menu" in classes:
            self._menu = a["id"]
            self.menus[self._menu] = []
        if tag == "a" and self._menu and "data-name" in a:
            self.menus[self._menu].append(a["data-name"])

    def handle_endtag(self, tag):
        if tag == "div":
            self._menu = None


def test_every_choice_is_reachable_from_the_diagram(pages):
    """Each section is a node or an arrow of the diagram, or in the menu that its layer's
    ellipsis or heading opens: the elided nodes, their weights, each node's own gamma, beta
    and b."""
    for name, page in pages.items():
        text = page.read_text()
        dom, menus = Dom(text), Menus(text)
        drawn = {c["data-name"] for c in dom.choices}
        opened = {o["data-menu"] for o in menus.openers}
        assert opened == set(menus.menus), name
        in_menus = {n for m in menus.menus.values() for n in m}
        assert drawn | in_menus == set(dom.sections), (name, set(dom.sections) - drawn
                                                       - in_menus)
        assert not drawn & in_menus
        assert all(o["tabindex"] == "0" and o["role"] == "button"
                   and o["aria-controls"] in menus.menus for o in menus.openers)
    residual = Menus(pages["residual"].read_text())
    assert residual.menus["more-2"] == [*(f"gamma_{j}^(L-3)" for j in range(8)),
                                        *(f"beta_{j}^(L-3)" for j in range(8)),
                                        *(f"a_{j}^(L-3)" for j in range(2, 6))]
    # layer 2's ellipsis and its heading both open it
    assert [o["data-menu"] for o in residual.openers].count("more-2") == 2
    assert Menus(pages["tutorial"].read_text()).menus == {}  # 6 wide, no biases: all drawn


ELISION = """
var names = function (list) {
  return Array.prototype.map.call(list, function (e) { return e.getAttribute("data-name"); });
};
var shown = function () {
  return names(Array.prototype.filter.call(document.querySelectorAll("section.derivation"),
                                           function (s) { return !s.hidden; }));
};
setTimeout(function () {
  var log = {};
  var dots = Array.prototype.filter.call(
    document.querySelectorAll('svg g.more[data-menu="more-2"]'),
    function (g) { return g.textContent.indexOf("\\u22EE") >= 0; })[0];
  var menu = document.getElementById("more-2");
  log.closed = menu.hidden;
  dots.dispatchEvent(new MouseEvent("click", {bubbles: true}));
  log.open = !menu.hidden && dots.getAttribute("aria-expanded") === "true";
  log.focused = document.activeElement.getAttribute("data-name");
  var gamma = menu.querySelector('a[data-name="gamma_3^(L-3)"]');
  log.visible = gamma.getBoundingClientRect().width > 0;
  gamma.click();
  setTimeout(function () {
    log.hash = location.hash;
    log.shown = shown();
    log.on = Array.prototype.map.call(document.querySelectorAll(".on-path"),
                                      function (e) { return e.id; });
    log.current = names(document.querySelectorAll("a[aria-current]"));
    /* the keyboard: Escape closes the menu and gives the focus back to the ellipsis,
       Enter on it opens the menu again on the chosen gamma */
    menu.dispatchEvent(new KeyboardEvent("keydown", {key: "Escape", bubbles: true}));
    log.escaped = menu.hidden && document.activeElement === dots;
    dots.dispatchEvent(new KeyboardEvent("keydown", {key: "Enter", bubbles: true}));
    log.reopened = !menu.hidden && document.activeElement.getAttribute("data-name");
    document.body.setAttribute("data-log", JSON.stringify(log));
  }, 300);
}, 100);
"""


@pytest.mark.needs("chromium")
def test_gamma_3_behind_the_ellipsis_is_chosen_from_the_diagram(pages, browser, blank,
                                                               tmp_path):
    """gamma_3^(2) of the residual network: its node is elided and a gamma has no arrow,
    so it is chosen through layer 2's ellipsis, whose menu the click opens."""
    paths = data_of(pages["residual"])["paths"]
    page = with_script(pages["residual"], ELISION, "elision.html")
    log = _log(browser.dom(f"{page.as_uri()}#w_12^(L)"))
    assert log["closed"] and log["open"] and log["visible"]
    assert log["focused"] == "gamma_0^(L-3)"  # the menu's first choice has the focus
    assert log["shown"] == ["gamma_3^(L-3)"] and log["hash"] == "#gamma_3%5E%28L-3%29"
    assert set(log["on"]) == set(paths["gamma_3^(L-3)"]) and "n-loss" in log["on"]
    assert log["current"] == ["gamma_3^(L-3)", "gamma_3^(L-3)"]  # in the list and the menu
    assert log["escaped"] and log["reopened"] == "gamma_3^(L-3)"
    # the same choice by the address of a gamma typed with its absolute layer
    assert browser.dom(f"{pages['residual'].as_uri()}#gamma_3^(2)").shown == ["gamma_3^(L-3)"]
    opened = with_script(pages["residual"], ELISION.split("var gamma")[0] + "}, 100);",
                         "elision-open.html")
    assert browser.shot(opened.as_uri(),
                        artifacts(tmp_path) / "residual-elision-menu.png") > blank * 3
