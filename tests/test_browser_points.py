"""The points layer in Chromium on a synthetic map of 200k points: density at the full view, single
points close up, a box and a click that return exactly the rows Python finds for them."""

from __future__ import annotations

import re

import numpy as np
import pytest
from streamlit_server import MAP_IFRAME, map_frame, streamlit_server, wait_until_idle
from synthetic_map import synthetic_map

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROWS = 200_000
STATE = """m => Object.fromEntries(Array.from(m.attributes).filter(a => a.name.startsWith('data-'))
    .map(a => [a.name.slice(5), a.value]))"""
# The map's area on the page, and the ranges of map units it shows now (the core's view).
GEOMETRY = """m => { const v = m.explorerMap.view, s = v.state;
    return { l: 0, t: 0, w: s.w, h: s.h, x: [v.dataX(0), v.dataX(s.w)], y: [v.dataY(s.h), v.dataY(0)] }; }"""
TOOLS = {"Box Select": "box", "Lasso Select": "lasso", "Reset axes": "reset", "Pan": "pan"}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    home = tmp_path_factory.mktemp("points-home")
    return home, synthetic_map(home, "blobs", ROWS)


@pytest.fixture(scope="module")
def opened(browser, saved):
    home, _ = saved
    with streamlit_server(home, env={"EXPLORER_DEFAULT_MODEL": "hashing"}) as url:
        page = browser.new_page(viewport={"width": 1500, "height": 1050})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        wait_until_idle(page)
        page.locator("[data-testid^=stBaseButton]", has_text="Open").click()
        map_frame(page).locator("#map[data-points-drawn]").wait_for(timeout=120_000)
        wait_until_idle(page)
        yield page, errors
        page.close()


def _state(page) -> dict:
    return map_frame(page).locator("#map").evaluate(STATE)


def _geometry(page) -> dict:
    geometry = map_frame(page).locator("#map").evaluate(GEOMETRY)
    frame = page.locator(MAP_IFRAME).bounding_box()
    geometry["left"], geometry["top"] = frame["x"] + geometry["l"], frame["y"] + geometry["t"]
    return geometry


def _pixels(points, g: dict) -> tuple[np.ndarray, np.ndarray]:
    """Plot-area pixels of every point, computed as the canvas does (float32 coordinates)."""
    x, y = points["x"].to_numpy(np.float32).astype(float), points["y"].to_numpy(np.float32).astype(float)
    (x0, x1), (y0, y1) = sorted(g["x"]), sorted(g["y"])
    return (x - x0) * g["w"] / (x1 - x0), (y1 - y) * g["h"] / (y1 - y0)


def _tool(page, title: str) -> None:
    map_frame(page).locator(f'#map .toolbar button[data-mode="{TOOLS[title]}"]').click()


def _reset(page) -> None:
    _tool(page, "Reset axes")
    page.wait_for_timeout(500)
    wait_until_idle(page)


def test_density_at_the_full_view_and_single_points_close_up(opened):
    page, errors = opened
    state = _state(page)
    assert state["points-total"] == str(ROWS) and state["points-drawn"] == str(ROWS)
    assert state["density"] == "on", "200k points on a ~500 px map: many share a pixel"
    page.screenshot(path="test-artifacts/points_full.png")
    g = _geometry(page)
    # Zoom in on the point nearest the map's centre (blobs leave gaps between them).
    at = map_frame(page).locator("#map").evaluate(
        "m => { const a = m.explorerMap, s = a.view.state; return a.at(a.nearest(s.w / 2, s.h / 2) >= 0 ? "
        "a.nearest(s.w / 2, s.h / 2) : 0); }")
    page.mouse.move(g["left"] + at[0], g["top"] + at[1])
    for _ in range(12):
        page.mouse.wheel(0, -400)
        page.wait_for_timeout(100)
    page.wait_for_function(
        "s => document.querySelector(s).contentDocument.getElementById('map').dataset.density === 'off'",
        arg=MAP_IFRAME, timeout=30_000)
    zoomed = _state(page)
    assert 0 < int(zoomed["points-drawn"]) < ROWS
    page.screenshot(path="test-artifacts/points_zoomed.png")
    _reset(page)
    assert _state(page)["density"] == "on"
    assert not errors


def test_a_box_returns_exactly_the_points_inside_it(opened, saved):
    page, errors = opened
    _, saved_map = saved
    points = saved_map.points
    _tool(page, "Box Select")
    g = _geometry(page)
    page.mouse.move(g["left"] + g["w"] * 0.35, g["top"] + g["h"] * 0.3)
    page.mouse.down()
    page.mouse.move(g["left"] + g["w"] * 0.6, g["top"] + g["h"] * 0.55, steps=8)
    page.mouse.up()
    heading = page.get_by_text(re.compile(r"^[\d,]+ rows selected$")).first
    heading.wait_for(timeout=60_000)
    box = map_frame(page).locator("#map").evaluate("m => m.lastShape.box")
    sent = map_frame(page).locator("#map").evaluate("m => m.lastEvent")
    x = points["x"].to_numpy(np.float32)
    y = points["y"].to_numpy(np.float32)
    (x0, x1), (y0, y1) = sorted(box["x"]), sorted(box["y"])
    inside = points["row_id"].to_numpy()[(x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)]
    assert sent["kind"] == "selection" and sent["shape"] == "box" and len(inside) > 1_000
    assert sorted(sent["ids"]) == sorted(inside.tolist())
    assert int(heading.inner_text().split()[0].replace(",", "")) == len(inside)
    assert _state(page)["selected-count"] == str(len(inside))
    page.screenshot(path="test-artifacts/points_box.png")
    page.get_by_role("button", name="Clear selection").click()
    # The rerun the click starts closes the Selection tab (and its heading) and clears the map.
    heading.wait_for(state="detached", timeout=30_000)
    wait_until_idle(page)
    assert _state(page)["selected-count"] == "0"
    assert not errors


def _inside_lasso(x: np.ndarray, y: np.ndarray, px: list[float], py: list[float]) -> np.ndarray:
    """Even-odd rule over the polygon's edges (as the map core's lasso tests its points)."""
    inside = np.zeros(len(x), dtype=bool)
    for k in range(len(px)):
        j = k - 1
        crosses = (py[k] > y) != (py[j] > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            edge = (px[j] - px[k]) * (y - py[k]) / (py[j] - py[k]) + px[k]
        inside ^= crosses & (x < edge)
    return inside


def test_a_lasso_returns_exactly_the_points_inside_it(opened, saved):
    page, errors = opened
    points = saved[1].points
    _reset(page)
    _tool(page, "Lasso Select")
    g = _geometry(page)
    page.mouse.move(g["left"] + g["w"] * 0.3, g["top"] + g["h"] * 0.3)
    page.mouse.down()
    for fx, fy in [(0.7, 0.35), (0.55, 0.75), (0.35, 0.6), (0.3, 0.32)]:
        page.mouse.move(g["left"] + g["w"] * fx, g["top"] + g["h"] * fy, steps=5)
    page.mouse.up()
    heading = page.get_by_text(re.compile(r"^[\d,]+ rows selected$")).first
    heading.wait_for(timeout=60_000)
    shape = map_frame(page).locator("#map").evaluate("m => m.lastShape.lasso")
    sent = map_frame(page).locator("#map").evaluate("m => m.lastEvent")
    x, y = (points[c].to_numpy(np.float32).astype(float) for c in ("x", "y"))
    inside = points["row_id"].to_numpy()[_inside_lasso(x, y, shape["x"], shape["y"])]
    assert len(inside) > 1_000 and sorted(sent["ids"]) == sorted(inside.tolist())
    assert int(heading.inner_text().split()[0].replace(",", "")) == len(inside)
    page.get_by_role("button", name="Clear selection").click()
    heading.wait_for(state="detached", timeout=30_000)
    wait_until_idle(page)
    assert not errors


def test_a_click_returns_the_nearest_point(opened, saved):
    page, errors = opened
    _, saved_map = saved
    points = saved_map.points
    _reset(page)
    g = _geometry(page)
    px, py = _pixels(points, g)
    # A spot at the edge of a blob, a few pixels off a point: the nearest one within reach is the answer.
    target = int(np.argmax(px * (px < g["w"] * 0.9) * (py > g["h"] * 0.1)))
    cx, cy = px[target] - 2.0, py[target] + 1.0
    distance = np.hypot(px - cx, py - cy)
    expected = int(points["row_id"].iloc[int(np.argmin(distance))])
    _tool(page, "Pan")
    page.mouse.click(g["left"] + cx, g["top"] + cy)
    sent = map_frame(page).locator("#map").evaluate("m => m.lastEvent")
    assert sent == {"kind": "click", "ids": [expected]}
    page.get_by_role("tab", name="Details", selected=True).wait_for(timeout=60_000)
    page.get_by_text(f"Synthetic paper {expected} of").first.wait_for(timeout=60_000)
    assert not errors
