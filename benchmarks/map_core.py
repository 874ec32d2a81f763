"""The map core (explorer/mapjs/) in CPU-only headless Chromium: from an event to the drawn frame.

A standalone file:// page holds the core and a synthetic points layer (draw.PointsLayer, blobs with a
category colour) of each size. Measured, each the median of REPEATS: a box selection (the shape's
points found, the others faded, the frame drawn), a lasso, a search-hit highlight (1,000 hits set as
row ids, veil and markers drawn), a facet-style dimming mask, and a pan frame. "Before" runs the same
box (and pan) in main's widget code before issue 26 (the first script of its index.html:
parseLayer, createPointsView, pointsInside; plotly's own selection handling and the Python round
trip it waited for are not counted); main had no search highlight in the browser (a search was a
rerun of the page, 0.6-0.7 s in docs/benchmarks.md).

    .venv/bin/python benchmarks/map_core.py --rows 100000 1000000
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from streamlit_server import CHROMIUM_ARGS, chromium_path  # noqa: E402

from explorer import mapjs  # noqa: E402
from explorer.draw import MapStyle, points_layer  # noqa: E402

REPEATS = 7
BEFORE_COMMIT = "bac6180"
PAGE = """<!doctype html><html><head><meta charset="utf-8"><style>html,body{{margin:0}}
#map{{width:1000px;height:760px}}</style></head><body><div id="map"></div>
<script type="application/octet-stream" id="layer">{layer}</script>
<script>{script}</script></body></html>"""
AFTER = """
const frame = () => new Promise(r => requestAnimationFrame(() => r()));
const root = document.getElementById('map');
const map = ExplorerMap.create(root, {});
map.setLayer(ExplorerMap.layer.fromBase64(document.getElementById('layer').textContent));
map.draw();
window.measure = async (what) => {
  const v = map.view, s = v.state, L = root.pointsLayer;
  const [x0, x1, y0, y1] = L.extent;  // the same box as "before": a share of the points' extent
  const box = { box: { x: [x0 + (x1 - x0) * 0.3, x0 + (x1 - x0) * 0.6],
                       y: [y0 + (y1 - y0) * 0.4, y0 + (y1 - y0) * 0.7] } };
  const lasso = { lasso: { x: [], y: [] } };
  for (let k = 0; k < 60; k++) { const a = 2 * Math.PI * k / 60;
    lasso.lasso.x.push(v.dataX(s.w * (0.5 + 0.2 * Math.cos(a))));
    lasso.lasso.y.push(v.dataY(s.h * (0.5 + 0.25 * Math.sin(a)))); }
  const hits = Array.from({length: 1000}, (_, k) => L.ids[(k * 7919) % L.n]);
  const mask = new Uint8Array(L.n); for (let i = 0; i < L.n; i += 3) mask[i] = 1;
  map.setSelection(null); map.setHits([]); map.setMask(null); map.draw(); await frame();
  const t = performance.now();
  if (what === 'box') map.finishShape(box);
  else if (what === 'lasso') map.finishShape(lasso);
  else if (what === 'hits') { map.setHits(hits, null, 3); }
  else if (what === 'mask') { map.setMask(mask); }
  else if (what === 'pan') { v.panBy(40, 20); map.schedule(); }
  await frame();
  await frame();  // the frame the change was drawn in has been presented
  return { ms: performance.now() - t, selected: root.dataset.selectedCount, hits: root.dataset.hitCount,
           shown: root.dataset.shownCount };
};
window.ready = true;
"""
BEFORE = """
const frame = () => new Promise(r => requestAnimationFrame(() => r()));
const text = atob(document.getElementById('layer').textContent.trim()), bytes = new Uint8Array(text.length);
for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
const layer = parseLayer(bytes.buffer), canvas = document.createElement('canvas');
document.getElementById('map').appendChild(canvas);
const pv = createPointsView(canvas), [x0, x1, y0, y1] = layer.extent;
const v = { x0: x0, x1: x1, y0: y0, y1: y1, w: 1000, h: 760 };
pv.draw(layer, v);
window.measure = async (what) => {
  layer.selected = null; pv.draw(layer, v); await frame();
  const t = performance.now();
  if (what === 'box') {
    const ids = pointsInside(layer, { box: { x: [x0 + (x1 - x0) * 0.3, x0 + (x1 - x0) * 0.6],
                                             y: [y0 + (y1 - y0) * 0.4, y0 + (y1 - y0) * 0.7] } });
    const chosen = new Uint8Array(layer.n);
    for (const id of ids) chosen[layer.position[id]] = 1;
    layer.selected = chosen;
    requestAnimationFrame(() => pv.draw(layer, v));
  } else if (what === 'pan') { v.x0 += 0.01; v.x1 += 0.01; requestAnimationFrame(() => pv.draw(layer, v)); }
  await frame();
  await frame();
  return { ms: performance.now() - t, selected: layer.selected ? layer.selected.reduce((a, b) => a + b, 0) : 0 };
};
window.ready = true;
"""


def layer_of(rows: int) -> str:
    """A synthetic map's points layer (blobs, eight categories) as base64."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=6, size=(40, 2))
    which = rng.integers(0, 40, size=rows)
    xy = centres[which] + rng.normal(size=(rows, 2))
    points = pd.DataFrame({"row_id": np.arange(rows), "x": xy[:, 0], "y": xy[:, 1], "embedded": True,
                           "field": np.array(list("abcdefgh"))[which % 8]})
    return base64.b64encode(points_layer(points, MapStyle(color_by="field"), hover=False).to_bytes()).decode()


def before_script() -> str:
    """The first script of main's widget page before issue 26 (its canvas layer, without plotly)."""
    page = subprocess.run(["git", "-C", str(REPO), "show", f"{BEFORE_COMMIT}:explorer/ui/frontend/map/index.html"],
                          check=True, capture_output=True, text=True).stdout
    return re.findall(r"<script>\n(.*?)</script>", page, flags=re.S)[0]


def run(browser, page_html: str, whats: list[str]) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".html", delete=False, encoding="utf-8") as f:
        f.write(page_html)
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    try:
        page.goto(Path(f.name).as_uri())
        page.wait_for_function("window.ready === true", timeout=300_000)
        out = {}
        for what in whats:
            runs = [page.evaluate("w => window.measure(w)", what) for _ in range(REPEATS)]
            out[what] = {"median_ms": round(float(np.median([r["ms"] for r in runs])), 1), **{
                k: v for k, v in runs[-1].items() if k != "ms"}}
        return out
    finally:
        page.close()
        os.unlink(f.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    results = {"load": os.getloadavg(), "cpus": os.cpu_count()}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            for rows in args.rows:
                layer = layer_of(rows)
                results[f"before {rows}"] = run(browser, PAGE.format(layer=layer, script=before_script() + BEFORE),
                                                ["box", "pan"])
                results[f"after {rows}"] = run(browser, PAGE.format(layer=layer, script=mapjs.core_script() + AFTER),
                                               ["box", "lasso", "hits", "mask", "pan"])
        finally:
            browser.close()
    results["load_after"] = os.getloadavg()
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
