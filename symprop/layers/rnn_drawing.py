"""The drawing of an rnn layer unrolled over its steps: h_0 = 0, then one node h_t per step
reading x_t through W and h_(t-1) through U (the same U and W at every step, marked), the
layers above reading h_T (every h_t with sequence = true), and the gradient's path back
through time (delta_t to delta_(t-1) through U^T) dashed.  A view of boxes and arrows for
the templates ``documents/unrolled.tikz.j2`` and ``documents/unrolled.svg.j2``."""

from __future__ import annotations

__all__ = ["unrolled_view"]

_DX, _DY = 2.2, 1.7  # between steps, between rows (cm)
_SHOWN = 6  # steps drawn before the middle ones are elided


def unrolled_view(config) -> dict:
    """Nodes (key, x, y, LaTeX, text) and arrows (from, to, kind, LaTeX label, text label)
    of rnn layer ``config`` unrolled; kinds: w, u (shared, marked), out, back."""
    l, T = config.index, config.steps
    below = "x" if l == 1 else f"h^{{({l - 1})}}"
    below_text = "x_{}" if l == 1 else f"h^({l - 1})_{{}}"
    own_text = "h_{}" if l == 1 else f"h^({l})_{{}}"
    steps = list(range(1, T + 1)) if T <= _SHOWN else [1, 2, 3, None, T - 1, T]
    nodes = [{"key": "start", "x": 0.0, "y": 0.0, "tex": f"h_{{0}}^{{({l})}} = 0",
              "text": "h_0 = 0"}]
    arrows = []
    previous = "start"
    for column, t in enumerate(steps, 1):
        x = column * _DX
        if t is None:
            nodes.append({"key": "dots", "x": x, "y": 0.0, "tex": r"\cdots", "text": "..."})
            arrows.append(_arrow(previous, "dots", "u", f"U^{{({l})}}", "U"))
            previous = "dots"
            continue
        h, xin = f"h{t}", f"x{t}"
        nodes += [{"key": h, "x": x, "y": 0.0, "tex": f"h_{{{t}}}^{{({l})}}",
                   "text": own_text.format(t)},
                  {"key": xin, "x": x, "y": -_DY, "tex": f"{below}_{{{t}}}",
                   "text": below_text.format(t)}]
        arrows += [_arrow(xin, h, "w", f"W^{{({l})}}", "W"),
                   _arrow(previous, h, "u", f"U^{{({l})}}", "U")]
        if previous.startswith("h"):
            arrows.append(_arrow(h, previous, "back", rf"U^{{({l})\top}} \delta_{{{t}}}",
                                 f"U^T delta_{t}"))
        if config.sequence or t == T:
            out = f"out{t}"
            nodes.append({"key": out, "x": x, "y": _DY, "tex": rf"\text{{layer {l + 1}}}",
                          "text": f"layer {l + 1}"})
            arrows.append(_arrow(h, out, "out", "", ""))
        previous = h
    width = (len(steps) + 1) * _DX
    where = {n["key"]: n for n in nodes}
    for a in arrows:  # SVG lines end at the circles, not at their centres
        a.update(_clipped(where[a["start"]], where[a["end"]]))
    return {"nodes": nodes, "arrows": arrows, "width": width, "layer": l, "steps": T,
            "index": {n["key"]: n for n in nodes}}


def _arrow(start: str, end: str, kind: str, tex: str, text: str) -> dict:
    return {"start": start, "end": end, "kind": kind, "tex": tex, "text": text}


def _clipped(p: dict, q: dict, r: float = 0.42) -> dict:
    """The segment from p to q shortened by a circle's radius (or a label's) at each end."""
    dx, dy = q["x"] - p["x"], q["y"] - p["y"]
    length = (dx * dx + dy * dy) ** 0.5
    ux, uy = dx / length, dy / length
    a = r if p["key"].startswith("h") else 0.5
    b = r if q["key"].startswith("h") else 0.5
    return {"x1": p["x"] + a * ux, "y1": p["y"] + a * uy, "x2": q["x"] - b * ux,
            "y2": q["y"] - b * uy}
