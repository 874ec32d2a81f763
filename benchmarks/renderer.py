"""The map's points layer in headless Chromium (issue 16): plotly's WebGL scatter against the canvas layer,
and since issue 26 the map core (explorer/mapjs/, no plotly): each helper below reads whichever it finds.

A synthetic saved map (Gaussian blobs with a category column, small random unit embeddings) is
opened in the real app, then: reopen → first paint, the frames of a pan and of scroll-zooms, a box
of about 50k points → the selection table, and the bytes that reached the browser for each (the
websocket's frames and every HTTP response, so a points file fetched once counts too). ``--old``
runs the same against HEAD's widget, unpacked into a temporary folder with ``git archive``.

    .venv/bin/python benchmarks/renderer.py --rows 100000 1000000 --old --new
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from streamlit_server import CHROMIUM_ARGS, chromium_path, map_frame, streamlit_server, wait_until_idle  # noqa: E402
from synthetic_map import synthetic_map  # noqa: E402

BOX_POINTS = 50_000
MOVES = 40
# Timestamps of plotly's view updates during a drag or a wheel (both renderers emit them once the
# new view is drawn: scattergl redraws before, the canvas on the next frame).
RELAYOUTING = """() => { const m = document.getElementById('map'); m.updates = [];
    if (!m.on) return;  // the map core: its drawTimes hold every frame it drew
    if (!m.updatesHooked) { m.updatesHooked = true;
        m.on('plotly_relayouting', () => requestAnimationFrame(() => m.updates.push(performance.now()))); } }"""
FRAME_TIMES = """ms => new Promise(resolve => {
    const times = []; const until = performance.now() + ms;
    const tick = t => { times.push(t); if (t < until) requestAnimationFrame(tick); else resolve(times); };
    requestAnimationFrame(tick);
})"""


def old_checkout(folder: Path) -> Path:
    """HEAD's tree (the plotly widget) unpacked into ``folder`` with `git archive`, for a side-by-side run."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "HEAD"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


class _Bytes:
    """Bytes that reached the page since the last take(): websocket frames and HTTP response bodies."""

    def __init__(self, page):
        self.total = 0
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))
        page.on("requestfinished", self._request)

    def _frame(self, payload) -> None:
        self.total += len(payload.encode("utf-8") if isinstance(payload, str) else payload)

    def _request(self, request) -> None:
        try:
            self.total += max(0, int(request.sizes()["responseBodySize"]))
        except Exception:  # a request torn down with its frame has no sizes
            pass

    def take(self) -> int:
        total, self.total = self.total, 0
        return total


def _frames(page, inner, action, *, ms: int = 2500) -> tuple[list[float], float]:
    """rAF gaps (ms) in the widget's frame while ``action`` runs, and the seconds ``action`` took."""
    handle = inner.evaluate_handle(FRAME_TIMES, ms)
    started = time.perf_counter()
    action()
    took = time.perf_counter() - started
    times = handle.json_value()
    return [b - a for a, b in zip(times, times[1:], strict=False)], took


def _gaps(inner, what: str) -> dict:
    """Median and longest gap (ms) between successive view updates of the last drag or wheel."""
    times = inner.evaluate("() => document.getElementById('map').updates || []")
    gaps = sorted(b - a for a, b in zip(times, times[1:], strict=False))
    if not gaps:
        return {}
    return {f"{what}_update_ms_median": gaps[len(gaps) // 2], f"{what}_update_ms_max": gaps[-1],
            f"{what}_updates": len(times)}


def _draw_times(inner, since: int, what: str) -> dict:
    """Median and longest time the canvas took to draw a frame, of the frames drawn after the first ``since``."""
    times = sorted(inner.evaluate("() => document.getElementById('map').drawTimes || []")[since:])
    if not times:
        return {}
    return {f"{what}_draw_ms_median": times[len(times) // 2], f"{what}_draw_ms_max": times[-1],
            f"{what}_draws": len(times)}


def _box_for(points: pd.DataFrame, inner, target: int) -> tuple[float, float, float, float]:
    """A centred box (data units) holding about ``target`` points, found by bisection on its half-size."""
    xr, yr = inner.evaluate("() => { const m = document.getElementById('map'), f = m._fullLayout;"
                            " if (!f) { const v = m.explorerMap.view, s = v.state;"
                            " return [[v.dataX(0), v.dataX(s.w)], [v.dataY(s.h), v.dataY(0)]]; }"
                            " return [f.xaxis.range, f.yaxis.range]; }")
    cx, cy = (xr[0] + xr[1]) / 2, (yr[0] + yr[1]) / 2
    x, y = points["x"].to_numpy(float), points["y"].to_numpy(float)
    lo, hi = 0.0, max(abs(xr[1] - xr[0]), abs(yr[1] - yr[0]))
    for _ in range(40):
        half = (lo + hi) / 2
        count = int(((abs(x - cx) <= half) & (abs(y - cy) <= half)).sum())
        lo, hi = (half, hi) if count < target else (lo, half)
    return cx - hi, cx + hi, cy - hi, cy + hi


def _to_page(inner, page, x: float, y: float) -> tuple[float, float]:
    """Page pixels of the data point (x, y) on the map (the widget's iframe offset added)."""
    px, py = inner.evaluate("([x, y]) => { const m = document.getElementById('map'), f = m._fullLayout;"
                            " if (!f) return m.explorerMap.project(x, y);"
                            " return [f._size.l + f.xaxis.l2p(x), f._size.t + f.yaxis.l2p(y)]; }", [x, y])
    frame = page.locator('iframe[title*="explorer_map"]').bounding_box()
    return frame["x"] + px, frame["y"] + py


def measure(home: Path, name: str, points: pd.DataFrame, *, repo: Path, shots: Path | None = None) -> dict:
    """Open the map ``name`` in the app served from ``repo`` and time what a user does with it."""
    from playwright.sync_api import sync_playwright

    out: dict = {}
    # PYTHONPATH: the old checkout's explorer package, not the editable install of this one.
    env = {"EXPLORER_DEFAULT_MODEL": "hashing", "PYTHONPATH": str(repo)}
    with streamlit_server(home, env=env, timeout=300, repo=repo) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1500, "height": 1050}).new_page()
        received = _Bytes(page)
        page.goto(url)
        wait_until_idle(page, timeout=600_000)
        _wait_for_warm_up(home / "streamlit.log")
        page.locator("[data-testid^=stBaseButton]", has_text="Open").wait_for(timeout=60_000)
        received.take()
        started = time.perf_counter()
        page.locator("[data-testid^=stBaseButton]", has_text="Open").click()
        map_frame(page).locator("#map:not([data-base-key=''])[data-base-key]").wait_for(timeout=900_000)
        out["first_paint_s"] = time.perf_counter() - started
        wait_until_idle(page, timeout=900_000)
        out["open_idle_s"] = time.perf_counter() - started
        out["open_bytes"] = received.take()
        inner = next(f for f in page.frames if "explorer_map" in f.url)
        frame = map_frame(page)
        if shots:
            page.screenshot(path=str(shots / f"{name}-full.png"))

        core = inner.evaluate("() => !!document.getElementById('map').explorerMap")
        chart = frame.locator("#map" if core else ".js-plotly-plot").first
        area = (page.locator('iframe[title*="explorer_map"]') if core else chart.locator(".nsewdrag").first
                ).bounding_box()
        cx, cy = area["x"] + area["width"] / 2, area["y"] + area["height"] / 2

        def tool(name: str) -> None:
            if core:
                frame.locator(f'#map .toolbar button[data-mode="{name.split()[0].lower()}"]').click()
            else:
                chart.hover()
                chart.locator(f'.modebar-btn[data-title="{name}"]').click()

        tool("Pan")

        def pan() -> None:
            page.mouse.move(cx, cy)
            page.mouse.down()
            page.mouse.move(cx + 160, cy + 80, steps=MOVES)
            page.mouse.up()

        # The same drag over the page's empty header, where nothing is drawn: what Playwright and
        # Chromium cost per mouse move by themselves.
        started = time.perf_counter()
        page.mouse.move(cx, 20)
        page.mouse.down()
        page.mouse.move(cx + 160, 100, steps=MOVES)
        page.mouse.up()
        out["idle_ms_per_move"] = (time.perf_counter() - started) * 1000 / MOVES
        drawn = inner.evaluate("() => (document.getElementById('map').drawTimes || []).length")
        inner.evaluate(RELAYOUTING)
        gaps, took = _frames(page, inner, pan)
        gaps = sorted(gaps)
        out["pan_frame_ms_median"], out["pan_frame_ms_max"] = gaps[len(gaps) // 2], gaps[-1]
        # rAF gaps miss work done off the main thread (WebGL runs in the GPU process, and rAF kept
        # a steady 16.7 ms even while plotly took seconds a move at 1M); the time each mouse move
        # took to be handled, and the gaps between plotly's view updates during the drag, do not.
        out["pan_ms_per_move"] = took * 1000 / MOVES
        out.update(_gaps(inner, "pan"))
        out.update(_draw_times(inner, drawn, "pan"))
        wait_until_idle(page, timeout=600_000)

        def zoom() -> None:
            page.mouse.move(cx, cy)
            for _ in range(6):
                page.mouse.wheel(0, -200)
                page.wait_for_timeout(120)
            for _ in range(6):
                page.mouse.wheel(0, 200)
                page.wait_for_timeout(120)

        drawn = inner.evaluate("() => (document.getElementById('map').drawTimes || []).length")
        inner.evaluate(RELAYOUTING)
        gaps, took = _frames(page, inner, zoom, ms=3500)
        gaps = sorted(gaps)
        out["zoom_frame_ms_median"], out["zoom_frame_ms_max"] = gaps[len(gaps) // 2], gaps[-1]
        # Each wheel step waits 120 ms after it (as a person scrolls): the rest is the map's.
        out["zoom_ms_per_wheel"] = (took * 1000 - 12 * 120) / 12
        out.update(_gaps(inner, "zoom"))
        out.update(_draw_times(inner, drawn, "zoom"))
        wait_until_idle(page, timeout=600_000)
        # Back to the full view (a double-click in pan mode autoscales), so the box is measured as opened.
        page.mouse.dblclick(cx, cy)
        page.wait_for_timeout(1500)
        wait_until_idle(page, timeout=600_000)
        received.take()

        tool("Box Select")
        x0, x1, y0, y1 = _box_for(points, inner, BOX_POINTS)
        (ax, ay), (bx, by) = _to_page(inner, page, x0, y1), _to_page(inner, page, x1, y0)
        page.mouse.move(ax, ay)
        page.mouse.down()
        page.mouse.move(bx, by, steps=10)
        started = time.perf_counter()
        page.mouse.up()
        heading = page.get_by_text(re.compile(r"^(Selection: [\d,]+ rows|[\d,]+ rows selected)$")).first
        heading.wait_for(timeout=900_000)
        out["select_shown_s"] = time.perf_counter() - started
        wait_until_idle(page, timeout=900_000)
        out["select_idle_s"] = time.perf_counter() - started
        out["select_bytes"] = received.take()
        out["selected"] = int(re.search(r"([\d,]+) rows", heading.inner_text()).group(1).replace(",", ""))
        if shots:
            page.screenshot(path=str(shots / f"{name}-selected.png"))
        out["state"] = inner.evaluate("() => Object.assign({}, document.getElementById('map').dataset)")
        browser.close()
    return out


def _wait_for_warm_up(log: Path, *, timeout: float = 600) -> None:
    """The server compiles UMAP at start-up on both cores; a map opened meanwhile would compete with it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and "UMAP warm-up done" not in log.read_text(errors="replace"):
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    """Measure the old and/or new points layer at the given sizes; print one JSON line per run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--old", action="store_true", help="HEAD's plotly widget")
    parser.add_argument("--new", action="store_true", help="the working tree's widget")
    parser.add_argument("--shots", type=Path, default=None, help="folder for screenshots")
    parser.add_argument("--out", type=Path, default=None, help="append the results to this JSON-lines file")
    args = parser.parse_args(argv)
    if args.shots:
        args.shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="renderer-") as tmp:
        tmp_path = Path(tmp)
        repos = []
        if args.old:
            (tmp_path / "old").mkdir()
            repos.append(("old", old_checkout(tmp_path / "old")))
        if args.new:
            repos.append(("new", REPO))
        for rows in args.rows:
            home = tmp_path / f"home-{rows}"
            saved = synthetic_map(home, f"blobs{rows // 1000}k", rows)
            for which, repo in repos:
                started = time.perf_counter()
                result = {"renderer": which, "rows": rows, "load": open("/proc/loadavg").read().split()[:3]}
                shots = args.shots / which if args.shots else None
                if shots:
                    shots.mkdir(exist_ok=True)
                try:
                    result.update(measure(home, saved.name, saved.points, repo=repo, shots=shots))
                except Exception as error:  # a run past its timeout is a result too
                    result["error"] = f"{type(error).__name__}: {str(error)[:300]}"
                result["wall_s"] = time.perf_counter() - started
                line = json.dumps(result, default=str)
                print(line, flush=True)
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
