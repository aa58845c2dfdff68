"""Size and time of the interactive report (``symprop report SPEC -o F.html --interactive``).

For each example: the time to write the file (the real command, a fresh process each run,
start-up included), its size, and the time headless Chromium takes to render it, read from
the page's own Navigation Timing (navigation start to the end of the load event, after which
the script has shown the derivation of the fragment), with the wall time of the whole
Chromium run beside it. Medians of --repeat runs.

    python benchmarks/interactive_report.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: (example, the fragment opened)
CASES = [("tutorial", "w_22^(L-1)"), ("softmax_ce", "b_0^(L-1)"), ("residual", "gamma_1^(L-3)")]
CHROMIUM = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMING = """<script>
window.addEventListener("load", function () { setTimeout(function () {
  var t = performance.getEntriesByType("navigation")[0];
  document.body.setAttribute("data-timing", JSON.stringify({
    load: t.loadEventEnd - t.startTime, dom: t.domContentLoadedEventEnd - t.startTime,
    shown: document.body.getAttribute("data-selected")}));
}, 0); });
</script>"""


def write_time(example: str, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "symprop", "report", str(EXAMPLES / f"{example}.toml"),
                    "-o", str(out), "--interactive"], check=True, capture_output=True)
    return time.perf_counter() - start


def render_time(chromium: str, page: Path, fragment: str, profile: Path) -> tuple[dict, float]:
    probe = page.with_name(f"probe-{page.name}")
    probe.write_text(page.read_text().replace("</body>", TIMING + "</body>"))
    start = time.perf_counter()
    run = subprocess.run([chromium, *CHROMIUM, f"--user-data-dir={profile}", "--dump-dom",
                          f"{probe.as_uri()}#{fragment}"], capture_output=True, text=True,
                         check=True, timeout=300)
    wall = time.perf_counter() - start
    found = re.search(r'data-timing="([^"]*)"', run.stdout)
    if not found:
        raise SystemExit(f"no timing in Chromium's DOM of {page.name}")
    return json.loads(found.group(1).replace("&quot;", '"')), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    print(f"{os.cpu_count()} cores; medians of {args.repeat} runs")
    print(f"{'example':<12} {'size MB':>8} {'write s':>8} {'render ms':>10} {'chromium s':>11}"
          "  shown")
    with tempfile.TemporaryDirectory(prefix="symprop-bench-") as folder:
        for n, (example, fragment) in enumerate(CASES):
            out = Path(folder) / f"{example}.html"
            writes = [write_time(example, out) for _ in range(args.repeat)]
            size = out.stat().st_size / 1e6
            loads, walls, shown = [], [], ""
            for r in range(args.repeat if chromium else 0):
                timing, wall = render_time(chromium, out, fragment, Path(folder) / f"p{n}{r}")
                loads.append(timing["load"])
                walls.append(wall)
                shown = timing["shown"]
            render = f"{statistics.median(loads):10.0f}" if loads else f"{'-':>10}"
            wall = f"{statistics.median(walls):11.2f}" if walls else f"{'-':>11}"
            print(f"{example:<12} {size:8.2f} {statistics.median(writes):8.2f} {render} {wall}"
                  f"  {shown or '(no chromium)'}")


if __name__ == "__main__":
    main()
