"""A network of maps drawn as channel stacks: each map layer a stack of channel squares (a
grid of its positions on the front one), each flat layer a bar, arrows layer to layer and
the loss node C_0 on the right.  A conv layer's kernel window is drawn on its input, with
the output position it makes; the quantity a derivation is about is marked on its path:

* a conv weight w_{o,c,u,v}^(l): the window on input channel c at the first position, the
  entry (u, v) it reads there, and every position of output channel o (the weight is shared:
  it enters each of them), then the arrows to the loss;
* a map's node a_{c,p,q}^(l) (or x_{c,p,q}): its cell, then the arrows to the loss;
* anything else: its layer and the arrows from it to the loss.

The value is a list of drawing primitives (rectangles, lines, arrows, labels) in layout
units, already styled; ``templates/documents/diagram_maps.tikz.j2`` and ``.svg.j2`` draw
them one by one.
"""

from __future__ import annotations

from .diagram import SVG_MARGIN, SVG_SCALE
from .notation import Node, layer_label

__all__ = ["map_diagram_view"]

#: Layout units (TikZ cm): the gap between columns, a channel's side, the offset between
#: stacked channels, a flat layer's bar, channels drawn per stack.
COLUMN_GAP, SIDE, STACK_STEP, BAR = 1.3, 1.3, 0.2, (0.35, 2.2)
MAX_CHANNELS = 4
#: Positions a channel's grid shows cell by cell (a larger map is a plain square).
MAX_GRID = 16

#: style -> (TikZ options, SVG fill, SVG stroke, SVG stroke width, SVG dash)
STYLES = {
    "channel": ("draw=black!60, fill=white", "#ffffff", "#999999", 1, ""),
    "bar": ("draw=black!60, fill=black!5", "#f2f2f2", "#999999", 1, ""),
    "shared": ("draw=red!75!black, fill=red!12", "#fbe3e3", "#b22222", 1.5, ""),
    "window": ("draw=red!75!black, very thick", "none", "#b22222", 2.5, ""),
    "kernel": ("draw=black!55, thick, dashed", "none", "#777777", 1.5, "4 3"),
    "cell": ("draw=red!75!black, fill=red!55", "#d46a6a", "#b22222", 1, ""),
    "made": ("draw=black!55, fill=black!20", "#cccccc", "#777777", 1, ""),
    "grid": ("draw=black!18, very thin", "none", "#dddddd", 0.5, ""),
}


def _spatial(shape: tuple[int, ...]) -> tuple[int, int]:
    """(rows, columns) of a map's channel: (H, W), or (1, L) for a 1-D map."""
    return (shape[1], shape[2]) if len(shape) == 3 else (1, shape[1])


def _size(shape: tuple[int, ...]) -> tuple[float, float]:
    rows, cols = _spatial(shape)
    big = max(rows, cols)
    return SIDE * cols / big, max(SIDE * rows / big, 0.3)


class _Canvas:
    def __init__(self):
        self.rects: list[dict] = []
        self.lines: list[dict] = []
        self.arrows: list[dict] = []
        self.labels: list[dict] = []
        self.columns: list[dict] = []

    def rect(self, x, y, w, h, style):
        self.rects.append({"x": x, "y": y, "w": w, "h": h, "style": style})

    def line(self, x1, y1, x2, y2, style="grid"):
        self.lines.append({"x1": x1, "y1": y1, "x2": x2, "y2": y2, "style": style})


class _Stack:
    """Where a map layer's channels are drawn: the front channel's corner and cell size."""

    def __init__(self, shape, x, mid, wanted: set[int]):
        self.shape = shape
        channels = shape[0]
        wanted = sorted(c for c in wanted if 0 <= c < channels)
        others = [c for c in sorted({0, 1, channels - 1}) if c < channels and c not in wanted]
        # the channel on the path in front (its grid drawn), then the first and the last
        self.shown = (wanted + others)[:MAX_CHANNELS]
        self.w, self.h = _size(shape)
        self.rows, self.cols = _spatial(shape)
        depth = (len(self.shown) - 1) * STACK_STEP
        # the first channel in front; each later one behind it, up and to the right
        self.corners = {c: (x + k * STACK_STEP, mid - self.h / 2 + k * STACK_STEP)
                        for k, c in enumerate(self.shown)}
        self.right = x + depth + self.w

    def cell(self, channel: int, p: int, q: int) -> tuple[float, float, float, float]:
        """The rectangle of position (p, q) of a channel (row 0 on top)."""
        cx, cy = self.corners[channel]
        cw, ch = self.w / self.cols, self.h / self.rows
        return cx + q * cw, cy + self.h - (p + 1) * ch, cw, ch

    def draw(self, canvas: _Canvas, lit: dict[int, str]):
        for c in reversed(self.shown):  # back to front
            cx, cy = self.corners[c]
            canvas.rect(cx, cy, self.w, self.h, lit.get(c, "channel"))
        front = self.shown[0]
        if max(self.rows, self.cols) <= MAX_GRID:
            cx, cy = self.corners[front]
            for i in range(1, self.cols):
                canvas.line(cx + i * self.w / self.cols, cy, cx + i * self.w / self.cols,
                            cy + self.h)
            for i in range(1, self.rows):
                canvas.line(cx, cy + i * self.h / self.rows, cx + self.w,
                            cy + i * self.h / self.rows)


def _window(stack: _Stack, config, channel: int, position: tuple[int, ...]):
    """The window of output ``position`` on input ``channel``, clipped to the map."""
    rows = _axis(config, 0, position) if len(stack.shape) == 3 else (0, 1)
    cols = _axis(config, len(stack.shape) - 2, position)
    x, y, cw, ch = stack.cell(channel, rows[0], cols[0])
    return x, y - (rows[1] - rows[0] - 1) * ch, (cols[1] - cols[0]) * cw, \
        (rows[1] - rows[0]) * ch


def _axis(config, axis: int, position) -> tuple[int, int]:
    start = position[axis] * config.stride[axis] - config.padding[axis]
    size = config.in_shape[axis + 1]
    return max(start, 0), min(start + config.kernel[axis], size)


def map_diagram_view(spec, target: Node | None = None, layers: str = "relative",
                     interactive: bool = False) -> dict:
    """The drawing primitives of the network with ``target``'s path marked (see the module
    docstring), in TikZ and SVG coordinates; ``interactive``: arrows and the loss node have
    ids, and each layer's column (heading and stack) opens its menu in the interactive
    report (``columns``)."""
    L = spec.L
    rel = L if layers == "relative" else None
    shapes = spec.shapes
    canvas = _Canvas()
    mid = 0.0
    wanted: dict[int, set[int]] = {l: set() for l in range(L + 1)}
    origin = None
    if target is not None:
        origin = 0 if target.kind == "x" else target.layer
        if target.kind == "w" and len(shapes[target.layer]) > 1:
            wanted[target.layer - 1].add(target.indices[1])
            wanted[target.layer].add(target.indices[0])
        elif len(shapes[origin]) > 1 and not target.is_parameter:
            wanted[origin].add(target.indices[0])
    x, stacks, edges = 0.0, {}, []
    for l in range(L + 1):
        shape = shapes[l]
        if len(shape) > 1:
            stacks[l] = _Stack(shape, x, mid, wanted[l])
            left, right = x, stacks[l].right
            size = " \\times ".join(map(str, shape))
        else:
            left, right = x, x + BAR[0]
            size = str(shape[0])
        edges.append((left, right))
        head = "x" if l == 0 else f"a^{{({layer_label(l, rel)})}}"
        kind = spec.layer(l).kind if l else ""
        canvas.labels.append({"x": (left + right) / 2, "y": mid + 1.55, "latex": head,
                              "base": "x" if l == 0 else "a",
                              "sup": f"({layer_label(l, rel)})" if l else "", "small": False})
        canvas.columns.append({"x": left - 0.15, "y": mid - 1.7, "w": right - left + 0.3,
                               "h": 3.5, "latex": head, "group": 2 * l, "kind": kind,
                               "sup": f"({layer_label(l, rel)})" if l else ""})
        canvas.labels.append({"x": (left + right) / 2, "y": mid - 1.45, "latex": size,
                              "base": size.replace(" \\times ", "\u00d7"), "sup": "",
                              "small": True, "kind": kind})
        x = right + COLUMN_GAP
    lit_from = origin if origin is not None else L + 1
    for l in range(L + 1):
        fills: dict[int, str] = {}
        if target is not None and target.kind == "w" and target.layer == l and l in stacks:
            fills[target.indices[0]] = "shared"
        if l in stacks:
            stacks[l].draw(canvas, fills)
        else:
            left, _ = edges[l]
            canvas.rect(left, mid - BAR[1] / 2, BAR[0], BAR[1],
                        "shared" if origin == l and target.kind != "x" else "bar")
    for l, stack in stacks.items():  # each conv or pooling layer's window on its input
        if l == 0 or (l - 1) not in stacks or not hasattr(spec.layer(l), "kernel"):
            continue
        config = spec.layer(l)
        mine = target is not None and target.kind == "w" and target.layer == l
        channel = target.indices[1] if mine else stacks[l - 1].shown[0]
        position = (0,) * (len(shapes[l]) - 1)
        wx, wy, ww, wh = _window(stacks[l - 1], config, channel, position)
        canvas.rect(wx, wy, ww, wh, "window" if mine else "kernel")
        out_channel = target.indices[0] if mine else stack.shown[0]
        canvas.rect(*stack.cell(out_channel, 0, 0), "cell" if mine else "made")
        if mine:  # the entry this weight reads at the first position, when not padding
            offset = target.indices[2:]
            at = [u - pad for u, pad in zip(offset, config.padding)]  # p s + u - P at p = 0
            if all(0 <= a < n for a, n in zip(at, shapes[l - 1][1:])):
                p, q = (at[0], at[1]) if len(at) == 2 else (0, at[0])
                canvas.rect(*stacks[l - 1].cell(channel, p, q), "cell")
    if target is not None and target.kind in ("a", "x") and origin in stacks:
        c, *pos = target.indices
        p, q = (pos[0], pos[1]) if len(pos) == 2 else (0, pos[0])
        canvas.rect(*stacks[origin].cell(c, p, q), "cell")
    for l in range(1, L + 1):
        canvas.arrows.append({"x1": edges[l - 1][1] + 0.12, "y1": mid,
                              "x2": edges[l][0] - 0.12, "y2": mid, "lit": l > lit_from,
                              "id": f"e-map-{l}"})
    loss_x = edges[L][1] + 1.2
    canvas.arrows.append({"x1": edges[L][1] + 0.12, "y1": mid, "x2": loss_x - 0.4, "y2": mid,
                          "lit": target is not None, "id": "e-map-loss"})
    return {**_view(canvas, loss_x, mid, target, rel), "interactive": interactive}


def _view(canvas: _Canvas, loss_x: float, mid: float, target, rel) -> dict:
    top, bottom, right = mid + 1.9, mid - 1.8, loss_x + 0.6

    def px(x, y):
        return round(SVG_MARGIN + x * SVG_SCALE, 1), round(SVG_MARGIN + (top - y) * SVG_SCALE, 1)

    def styled(item, keys):
        tikz, fill, stroke, width, dash = STYLES[item["style"]]
        return {**item, "tikz": tikz, "fill": fill, "stroke": stroke, "width": width,
                "dash": dash, **keys}
    rects = []
    for r in canvas.rects:
        sx, sy = px(r["x"], r["y"] + r["h"])
        rects.append(styled(r, {"sx": sx, "sy": sy, "sw": round(r["w"] * SVG_SCALE, 1),
                                "sh": round(r["h"] * SVG_SCALE, 1),
                                "at": f"({r['x']:.3f},{r['y']:.3f})",
                                "to": f"({r['x'] + r['w']:.3f},{r['y'] + r['h']:.3f})"}))
    lines = []
    for e in canvas.lines:
        (x1, y1), (x2, y2) = px(e["x1"], e["y1"]), px(e["x2"], e["y2"])
        lines.append(styled(e, {"sx1": x1, "sy1": y1, "sx2": x2, "sy2": y2,
                                "at": f"({e['x1']:.3f},{e['y1']:.3f})",
                                "to": f"({e['x2']:.3f},{e['y2']:.3f})"}))
    arrows = []
    for a in canvas.arrows:
        (x1, y1), (x2, y2) = px(a["x1"], a["y1"]), px(a["x2"], a["y2"])
        arrows.append({**a, "sx1": x1, "sy1": y1, "sx2": x2, "sy2": y2,
                       "at": f"({a['x1']:.3f},{a['y1']:.3f})",
                       "to": f"({a['x2']:.3f},{a['y2']:.3f})"})
    labels = []
    for t in canvas.labels:
        sx, sy = px(t["x"], t["y"])
        labels.append({**t, "sx": sx, "sy": sy, "at": f"({t['x']:.3f},{t['y']:.3f})",
                       "kind": t.get("kind", ""),
                       "kind_at": f"({t['x']:.3f},{t['y'] - 0.35:.3f})", "ky": sy + 13})
    columns = []
    for c in canvas.columns:
        sx, sy = px(c["x"], c["y"] + c["h"])
        columns.append({**c, "sx": sx, "sy": sy, "sw": round(c["w"] * SVG_SCALE, 1),
                        "sh": round(c["h"] * SVG_SCALE, 1)})
    lx, ly = px(loss_x, mid)
    return {"rects": rects, "lines": lines, "arrows": arrows, "labels": labels,
            "columns": columns,
            "loss": {"at": f"({loss_x:.3f},{mid:.3f})", "sx": lx, "sy": ly,
                     "lit": target is not None},
            "svg_width": round(2 * SVG_MARGIN + right * SVG_SCALE, 1),
            "svg_height": round(2 * SVG_MARGIN + (top - bottom) * SVG_SCALE, 1),
            "target": target.latex(rel) if target is not None else None}
