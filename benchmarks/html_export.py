"""The offline HTML export (issue 17): file size and open time in Chromium, HEAD's plotly page against the new one.

Two maps: 800 real arXiv rows (80 per class of arxiv_cs10_2500.csv, built with the hashing embedder,
PCA and clusters on the 2D map: seconds, and the export does not care how x and y were found), and
100k rows of real arXiv titles and abstracts (the 11,899 rows of the 12k files, repeated) on
synthetic Gaussian blobs, clustered on the 2D map (up to three levels; HDBSCAN finds few on blobs). "before" is HEAD's
export.to_html_bytes (plotly.js inlined, a WebGL scatter), reproduced below; "after" is
explorer.html_export.to_html. Open time: from page.goto to the points drawn (plotly: its first
afterplot; the new page: window.explorerExport.ready), then to hover and search ready (texts unpacked).

    flock /tmp/bench.lock .venv/bin/python benchmarks/html_export.py --keep /tmp/html-bench --write

(--write takes /tmp/docs.lock around the write of docs/benchmarks.md.)
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
# The last commit with draw.build_figure (main before issue 26): the "before" page is built there.
PLOTLY_COMMIT = "bac6180"
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

from quality import invocation_of, machine_header, publish  # noqa: E402
from streamlit_server import CHROMIUM_ARGS, chromium_path  # noqa: E402
from synthetic_map import synthetic_points  # noqa: E402

DATA = Path("/work/shared/data/arxiv_cs")
SECTION = "html-export"
SIZES = (800, 100_000)
QUERY = "graph neural"


def old_html(saved) -> bytes:
    """The plotly page exports made before issue 17 (a plotly figure with plotly.js inlined), from the tree
    before issue 26 removed draw.build_figure: `git archive` of ``PLOTLY_COMMIT`` into a temporary folder."""
    with tempfile.TemporaryDirectory() as folder:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", PLOTLY_COMMIT], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        script = ("import sys; from explorer import Workspace; from explorer.draw import MapStyle, build_figure, "
                  "default_colour_column, escape_text, title_column\n"
                  "saved = Workspace(sys.argv[1]).open(sys.argv[2]); points = saved.points\n"
                  "style = MapStyle(color_by=default_colour_column(points), "
                  "title_column=title_column(points, saved.manifest.get('text_columns') or []))\n"
                  "fig = build_figure(points, style=style)\n"
                  "fig.update_layout(title={'text': escape_text(saved.name)}, margin={'t': 40}, dragmode='pan')\n"
                  "sys.stdout.buffer.write(fig.to_html(include_plotlyjs=True, full_html=True, "
                  "config={'scrollZoom': True}).encode('utf-8'))")
        return subprocess.run([sys.executable, "-c", script, str(saved.path.parent.parent), saved.name], cwd=folder,
                              check=True, capture_output=True).stdout


def arxiv_rows() -> pd.DataFrame:
    parts = sorted(glob.glob(str(DATA / "arxiv_cs10_12k_part*.csv")))
    return pd.concat([pd.read_csv(p, dtype={"arxiv_id": str}) for p in parts], ignore_index=True)


def small_map(home: Path):
    """800 real rows, 80 per class, hashing embedder + PCA, clustered on the 2D map."""
    from explorer import ClusterConfig, ProjectionConfig, Workspace, build_map

    workspace = Workspace(home)
    if "arxiv-800" in {info.name for info in workspace.list()}:
        return workspace.open("arxiv-800")
    frame = pd.read_csv(DATA / "arxiv_cs10_2500.csv", dtype={"arxiv_id": str})
    frame = frame.groupby("primary_category", sort=False).head(80).reset_index(drop=True)
    return build_map(frame, name="arxiv-800", model="hashing", text_columns=["title", "abstract"],
                     projection=ProjectionConfig(method="pca"), clusters=ClusterConfig(space="2d", levels=2),
                     workspace=workspace).saved


def big_map(home: Path, rows: int = 100_000):
    """``rows`` real arXiv titles and abstracts (repeated) on synthetic blobs, clustered on the 2D map."""
    from explorer import ClusterConfig, Workspace
    from explorer.map_clusters import add_clusters

    workspace = Workspace(home)
    name = f"arxiv-{rows // 1000}k"
    if name in {info.name for info in workspace.list()}:
        return workspace.open(name)
    real = arxiv_rows()
    take = real.iloc[np.arange(rows) % len(real)].reset_index(drop=True)
    points = synthetic_points(rows).drop(columns=["title", "category"])
    points["title"] = take["title"].to_numpy()
    points["abstract"] = take["abstract"].to_numpy()
    points["primary_category"] = take["primary_category"].to_numpy()
    points["listing_date"] = take["listing_date"].to_numpy()
    vectors = np.random.default_rng(1).normal(size=(rows, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    manifest = {"kind": "text", "rows": rows, "embedded_rows": rows, "text_columns": ["title", "abstract"],
                "template": None, "model_id": "hashing-16", "model": "hashing-16", "model_hash": "", "dimension": 16,
                "projection": {"method": "synthetic"}, "notes": [], "seconds": {},
                "source": {"name": "synthetic", "format": "dataframe", "sha256": "", "encoding": None}}
    saved = workspace.save(name, points=points, embeddings=vectors, manifest=manifest)
    return add_clusters(saved, config=ClusterConfig(space="2d", levels=3), workspace=workspace)


def _poll(page, expression: str, timeout_s: float = 120) -> float:
    """Seconds until ``expression`` holds, polled every 10 ms (the new page's CSP forbids wait_for_function's eval)."""
    started = time.perf_counter()
    while not page.evaluate(expression):
        if time.perf_counter() - started > timeout_s:
            raise TimeoutError(expression)
        time.sleep(0.01)
    return time.perf_counter() - started


def open_times(browser, path: Path, *, new: bool, repeats: int) -> dict:
    """Median seconds from navigation to the points drawn (and, new page, to hover and search ready)."""
    drawn, ready, search_ms, zoom_ms = [], [], [], []
    for _ in range(repeats):
        page = browser.new_page(viewport={"width": 1300, "height": 850})
        if not new:
            # plotly's first afterplot: the scatter has been drawn once.
            page.add_init_script("""document.addEventListener('DOMContentLoaded', () => {
                const d = document.querySelector('.js-plotly-plot');
                if (d && d.on) d.on('plotly_afterplot', () => { window.__drawn = true; }); });""")
        started = time.perf_counter()
        page.goto(path.as_uri(), wait_until="commit", timeout=300_000)
        if new:
            _poll(page, "!!(window.explorerExport && window.explorerExport.ready)")
            drawn.append(time.perf_counter() - started)
            _poll(page, "!!(window.explorerExport && window.explorerExport.textsReady)")
            ready.append(time.perf_counter() - started)
            search_ms.append(page.evaluate("""q => { const t = performance.now();
                const input = document.getElementById('query'); input.value = q;
                input.form.requestSubmit(); return performance.now() - t; }""", QUERY))
            box = page.locator("#map").bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            for _ in range(5):
                page.mouse.wheel(0, -200)
                page.wait_for_timeout(50)
            page.wait_for_timeout(200)
            zoom_ms.append(float(page.evaluate("window.explorerExport.drawMs")))
        else:
            _poll(page, "!!(window.__drawn || (document.querySelector('.js-plotly-plot') || {})._fullLayout && "
                        "document.querySelector('.gl-canvas-context'))")
            drawn.append(time.perf_counter() - started)
        page.close()
    out = {"drawn": float(np.median(drawn))}
    if new:
        out.update(ready=float(np.median(ready)), search_ms=float(np.median(search_ms)),
                   zoom_ms=float(np.median(zoom_ms)))
    return out


def run(home: Path, *, repeats: int) -> list[dict]:
    from playwright.sync_api import sync_playwright

    from explorer.html_export import TEXT_CHARS, TEXT_ROWS, to_html
    from explorer.map_clusters import label_layers

    maps = {800: small_map(home), 100_000: big_map(home)}
    results = []
    out = Path(tempfile.mkdtemp(prefix="html-export-"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        for rows, saved in maps.items():
            writers = [("before (plotly)", old_html), ("after (canvas)", to_html)]
            if rows > TEXT_ROWS:  # what keeping the abstracts would cost
                writers.append((f"after, abstracts kept (text_chars={TEXT_CHARS})",
                                lambda s: to_html(s, text_chars=TEXT_CHARS)))
            for number, (label, writer) in enumerate(writers):
                started = time.perf_counter()
                data = writer(saved)
                seconds = time.perf_counter() - started
                path = out / f"{saved.name}-{number}.html"
                path.write_bytes(data)
                times = open_times(browser, path, new=writer is not old_html, repeats=repeats)
                counts = label_layers(saved).groupby("level", sort=False).size()
                results.append({"rows": rows, "version": label, "bytes": len(data), "export_s": seconds, **times,
                                "labels": " + ".join(f"{k} {level}" for level, k in counts.items())})
                print(results[-1], flush=True)
        browser.close()
    return results


def render(results: list[dict], *, invocation: str, load: str, repeats: int) -> str:
    lines = [f"<!-- {SECTION}:begin -->", "## Offline HTML export (issue 17)", "",
             f"Command: `{invocation}` (wrapped in `flock /tmp/bench.lock`). {machine_header().splitlines()[2]}",
             f"Load average before the run: {load}. Headless Debian Chromium (`--disable-gpu`: plotly's WebGL on "
             f"SwiftShader), viewport 1300×850, median of {repeats} opens of the file over file://.", "",
             "800 rows: real arXiv rows (80 per class of arxiv_cs10_2500.csv). 100k rows: the 11,899 real titles "
             "and abstracts of the 12k files repeated, on synthetic blobs, clustered on the 2D map (HDBSCAN, up to "
             "three levels). Cluster labels in the new files: "
             + "; ".join(f"{n:,} rows {labels}" for n, labels in {r["rows"]: r["labels"] for r in results}.items())
             + ".",
             "Before: HEAD's plotly page (plotly.js inlined, no labels, no search, no hover text above 20k "
             "points). After: explorer.html_export (canvas, labels of every level, hover, legend, keyword search; "
             "titles cut to 160 characters, abstracts to 300 up to 20,000 rows and left out above).", "",
             "| rows | export | file size | Python export | open → points drawn | → hover and search ready "
             f"| search \"{QUERY}\" | zoom frame |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        ready, search, zoom = ((f"{r['ready']:.2f} s", f"{r['search_ms']:.0f} ms", f"{r['zoom_ms']:.1f} ms")
                               if "ready" in r else ("—", "—", "—"))
        lines.append(f"| {r['rows']:,} | {r['version']} | {r['bytes'] / 1e6:.2f} MB | {r['export_s']:.2f} s | "
                     f"{r['drawn']:.2f} s | {ready} | {search} | {zoom} |")
    lines += ["", f"<!-- {SECTION}:end -->", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="workspace for the two maps, reused by later runs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="replace the html-export section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    home = args.keep or Path(tempfile.mkdtemp(prefix="html-bench-"))
    results = run(home, repeats=args.repeats)
    section = render(results, invocation=invocation_of(__file__, argv), load=load, repeats=args.repeats)
    publish(section, write=args.write, marker=SECTION)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
