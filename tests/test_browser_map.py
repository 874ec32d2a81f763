"""The map widget in Chromium: what it draws after a zoom, a selection and its clearing, and a focus.

Each test drives the real app (the sample papers, embedded with the fast hashing embedder) and
reads back what the map core has drawn: the labels and titles it placed (its data-* attributes and
the label elements), the points layer (its selection, groups and points), the box or lasso outline
it draws, and the rings on the overlay canvas.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import re

import pytest
from streamlit_server import (
    ARTIFACTS,
    MAP_IFRAME,
    map_frame,
    streamlit_server,
    wait_until_idle,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# What the widget says it has drawn (see explorer/ui/frontend/map/index.html).
DRAWN = """m => Object.fromEntries(Array.from(m.attributes).filter(a => a.name.startsWith('data-'))
    .map(a => [a.name.slice(5), a.value]))"""
# Every label placed on the map (cluster labels, titles, the query's label, ranks): its text and screen box.
ANNOTATIONS = """m => Array.from(m.querySelectorAll('.labels .label')).map(a => {
    const r = a.getBoundingClientRect();
    return { text: a.textContent, cls: a.className, x0: r.left, y0: r.top, x1: r.right, y1: r.bottom };
})"""
# The map's box on screen.
PLOT_AREA = """m => { const r = m.getBoundingClientRect();
    return { x0: r.left, y0: r.top, x1: r.right, y1: r.bottom }; }"""


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """One real server for this module, with the hashing embedder (no model to load) and a private workspace."""
    with streamlit_server(tmp_path_factory.mktemp("map-home"), env={"EXPLORER_DEFAULT_MODEL": "hashing"}) as url:
        yield url


@pytest.fixture(scope="module")
def sample(browser, app_url):
    """One page with the sample papers open (built once for the module); each test starts from the full view."""
    page = browser.new_page(viewport={"width": 1500, "height": 1050})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(app_url)
    wait_until_idle(page)
    page.get_by_role("button", name="Try the sample papers").click()
    map_frame(page).locator("#map[data-labels]").wait_for(timeout=240_000)
    wait_until_idle(page)
    yield page, errors
    page.close()


def _drawn(page) -> dict:
    return map_frame(page).locator("#map").evaluate(DRAWN)


def _wait_drawn(page, condition: str, timeout: float = 30_000) -> dict:
    """Wait until ``condition`` (JS over ``d``, the widget's data-* attributes) holds; returns them."""
    page.wait_for_function(
        f"""selector => {{ const m = document.querySelector(selector).contentDocument.getElementById('map');
            if (!m) return false;
            const d = Object.fromEntries(Array.from(m.attributes).filter(a => a.name.startsWith('data-'))
                .map(a => [a.name.slice(5), a.value]));
            return {condition}; }}""", arg=MAP_IFRAME, timeout=timeout)
    return _drawn(page)


def _reset_view(page) -> None:
    map_frame(page).locator('#map .toolbar button[data-mode="reset"]').click()
    _wait_drawn(page, "Number(d.zoom) < 1.05")


def _annotations(page, cls: str = "") -> list[dict]:
    return [a for a in map_frame(page).locator("#map").evaluate(ANNOTATIONS) if cls in a["cls"]]


def _assert_no_overlap(boxes: list[dict]) -> None:
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            overlap_x = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])
            overlap_y = min(a["y1"], b["y1"]) - max(a["y0"], b["y0"])
            assert overlap_x <= 1 or overlap_y <= 1, (a, b)


def _a_point_on_screen(page) -> tuple[float, float]:
    """The screen position of a point in the densest part of the map (the median point of the first group)."""
    frame_box = page.locator(MAP_IFRAME).bounding_box()
    x, y = map_frame(page).locator("#map").evaluate("""m => {
        const layer = m.pointsLayer, first = layer.legend[0].colours;
        const rows = Array.from(layer.colour.keys()).filter(i => first.includes(layer.colour[i]));
        rows.sort((a, b) => layer.x[a] - layer.x[b]);
        return m.explorerMap.at(rows[Math.floor(rows.length / 2)]);
    }""")
    return frame_box["x"] + x, frame_box["y"] + y


def test_labels_follow_the_zoom_and_titles_appear_close_up(sample):
    page, errors = sample
    map_frame(page).locator("#map").scroll_into_view_if_needed()
    start = _wait_drawn(page, "JSON.parse(d.labels || '[]').length > 0")
    start_labels = json.loads(start["labels"])
    levels = set(json.loads(start["label-levels"]))
    assert len(start_labels) >= 4 and levels == {"coarse"}, start
    assert start["titles-shown"] == "0"
    shown = [a["text"] for a in _annotations(page, "level-")]
    assert shown == start_labels, "the attribute must name exactly what the map draws"
    _assert_no_overlap(_annotations(page))
    page.screenshot(path=str(ARTIFACTS / "map_labels_full_view.png"))

    x, y = _a_point_on_screen(page)
    finer = titled = None
    for _ in range(60):
        before = _drawn(page)["zoom"]
        page.mouse.move(x, y)
        page.mouse.wheel(0, -300)
        drawn = _wait_drawn(page, f"d.zoom !== '{before}'")
        if finer is None and set(json.loads(drawn["label-levels"])) - levels:
            finer = drawn
            page.screenshot(path=str(ARTIFACTS / "map_labels_zoomed.png"))
        if drawn["points-in-view"] != "many" and int(drawn["points-in-view"]) > 0:
            titled = _wait_drawn(page, "Number(d['titles-shown']) > 0")
            break
    assert finer is not None, "no finer level's labels after zooming in"
    assert float(finer["zoom"]) > 1.2
    fine_labels = json.loads(finer["labels"])
    assert set(fine_labels) - set(start_labels), "zooming in must show labels the full view did not"
    assert titled is not None, "never fewer than 25 points in view"
    titles = json.loads(titled["titles"])
    assert 0 < len(titles) <= int(titled["points-in-view"]) <= 25
    drawn_texts = [a["text"] for a in _annotations(page)]
    assert all(t in drawn_texts for t in titles)
    # The titles are those of points in view: each names a paper of the sample set's points.
    names = map_frame(page).locator("#map").evaluate("m => m.pointsLayer.hover.map(h => h.split('<br>')[0])")
    assert all(any(n.startswith(t.rstrip("…")) for n in names) for t in titles), titles
    _assert_no_overlap(_annotations(page))
    area = map_frame(page).locator("#map").evaluate(PLOT_AREA)
    for box in _annotations(page):
        assert box["x0"] >= area["x0"] - 1 and box["x1"] <= area["x1"] + 1, (box, area)
    page.screenshot(path=str(ARTIFACTS / "map_titles_close_up.png"))
    _reset_view(page)
    assert json.loads(_drawn(page)["titles-shown"]) == 0
    assert not errors


def _select(page, tool: str) -> None:
    """Drag a box, or draw a lasso (a free-hand quadrilateral), over most of the map."""
    map_frame(page).locator(f'#map .toolbar button[data-mode="{tool}"]').click()
    box = page.locator(MAP_IFRAME).bounding_box()
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x + w * 0.15, y + h * 0.15)
    page.mouse.down()
    path = [(0.7, 0.7)] if tool == "box" else [(0.7, 0.15), (0.7, 0.7), (0.15, 0.7), (0.15, 0.2)]
    for px, py in path:
        page.mouse.move(x + w * px, y + h * py, steps=6)
    page.mouse.up()
    map_frame(page).locator('#map .toolbar button[data-mode="pan"]').click()


# The outline the core draws for a box or lasso (its SVG path's d), as the page shows it.
OUTLINE = "m => m.querySelector('svg.select path.outline').getAttribute('d') || ''"


def test_a_cleared_selection_leaves_no_outline_and_stays_cleared(sample):
    page, errors = sample
    box = page.get_by_label("Search the map")
    box.fill("protein folding")
    box.press("Enter")
    _wait_drawn(page, "d['query-label'] === 'protein folding'", timeout=60_000)
    wait_until_idle(page)
    for tool in ("box", "lasso"):
        _select(page, tool)
        selected = _wait_drawn(page, "Number(d['selected-count']) > 0 && Number(d['selection-outlines']) === 1")
        shape = map_frame(page).locator("#map").evaluate("m => m.lastShape")
        assert tool in shape and len(shape[tool]["x"]) >= (2 if tool == "box" else 10), shape
        sent = map_frame(page).locator("#map").evaluate("m => m.lastEvent")
        assert sent["kind"] == "selection" and sent["shape"] == tool and len(sent["ids"]) == int(selected["selected-count"])
        page.get_by_text(re.compile(r"[\d,]+ rows selected|Selection: [\d,]+ rows")).first.wait_for(timeout=60_000)
        wait_until_idle(page)
        # Python's rerun sends the same ids back: the outline the user drew stays.
        kept = _wait_drawn(page, "Number(d['selection-outlines']) === 1")
        assert kept["selected-count"] == selected["selected-count"]
        assert map_frame(page).locator("#map").evaluate(OUTLINE).startswith("M")
        page.screenshot(path=str(ARTIFACTS / f"map_{tool}.png"))

        # Clear: no fading, and no outline or handles left on the map (plotly's box handles stayed, issue 26).
        page.get_by_role("button", name="Clear selection").click()
        wait_until_idle(page)
        cleared = _wait_drawn(page, "d['selected-count'] === '0' && d['selection-outlines'] === '0'")
        assert map_frame(page).locator("#map").evaluate(OUTLINE) == "", cleared
        page.screenshot(path=str(ARTIFACTS / f"map_{tool}_cleared.png"))

    # A base-layer change redraws every point: the cleared selection must not come back.
    base_key = cleared["base-key"]
    page.get_by_text("Colour by similarity").click()
    wait_until_idle(page)
    recoloured = _wait_drawn(page, f"d['base-key'] !== '{base_key}'")
    page.wait_for_timeout(500)
    recoloured = _drawn(page)
    # The points are coloured on the similarity scale (one legend group with its colour bar).
    groups = map_frame(page).locator("#map").evaluate("m => m.pointsLayer.legend.map(g => g.name)")
    assert "similarity" in groups
    assert (recoloured["selected-count"], recoloured["selection-outlines"]) == ("0", "0"), recoloured
    assert map_frame(page).locator("#map").evaluate(OUTLINE) == ""
    assert map_frame(page).locator("#map .legend .colorbar").count() == 1, "the similarity scale's colour bar"
    assert not page.get_by_text(re.compile(r"[\d,]+ rows selected")).is_visible()
    page.screenshot(path=str(ARTIFACTS / "map_similarity_after_clear.png"))
    page.get_by_text("Colour by similarity").click()
    wait_until_idle(page)
    assert not errors


# The rings the overlay canvas draws: for each of the map's neighbours (or its focus) its pixel, and whether
# the canvas is painted on the ring's radius there (right of the point).
RINGS = """(m, which) => {
    const api = m.explorerMap, o = api.state.overlay, c = m.querySelector('canvas.overlay').getContext('2d');
    const positions = which === 'focus' ? (o.focus >= 0 ? [o.focus] : []) : o.neighbours;
    const radius = which === 'focus' ? 11 : 7;
    return positions.map(i => { const [x, y] = api.at(i);
        const alpha = c.getImageData(Math.round(x + radius), Math.round(y), 1, 1).data[3];
        return { id: m.pointsLayer.ids[i], painted: alpha > 100 }; });
}"""


def test_the_focused_points_neighbours_are_ringed_and_ranks_stay_clear(sample):
    page, errors = sample
    box = page.get_by_label("Search the map")
    if box.input_value() != "protein folding":
        box.fill("protein folding")
        box.press("Enter")
    _wait_drawn(page, "d['query-label'] === 'protein folding'", timeout=60_000)
    wait_until_idle(page)
    drawn = _drawn(page)
    # Only the top three hits carry their rank as text, and none where it would cover the query's label.
    ranks = json.loads(drawn["ranks-shown"])
    assert set(ranks) <= {"1", "2", "3"}, ranks
    notes = _annotations(page)
    query = next(a for a in notes if a["text"] == "protein folding" and "query" in a["cls"])
    area = map_frame(page).locator("#map").evaluate(PLOT_AREA)
    assert area["x0"] - 1 <= query["x0"] and query["x1"] <= area["x1"] + 1
    _assert_no_overlap(notes)
    # The query's star is drawn at the query's place (its red centre on the overlay canvas).
    star = map_frame(page).locator("#map").evaluate("""m => { const a = m.explorerMap, q = a.state.overlay.query;
        const [x, y] = a.project(q.x, q.y);
        return Array.from(m.querySelector('canvas.overlay').getContext('2d').getImageData(Math.round(x), Math.round(y),
                                                                                          1, 1).data); }""")
    assert star[3] > 200 and star[0] > 180 and star[1] < 90 and star[2] < 90, star

    page.locator('[data-testid="stButton"] button').filter(has_text=re.compile(r"^1\. ")).first.click()
    wait_until_idle(page)
    rings = []
    for _ in range(60):
        rings = map_frame(page).locator("#map").evaluate(RINGS, "neighbours")
        if rings:
            break
        page.wait_for_timeout(500)
    assert len(rings) == 10, "the focused point's ten neighbours are ringed"
    assert all(r["painted"] for r in rings), rings
    focus = map_frame(page).locator("#map").evaluate(RINGS, "focus")
    assert len(focus) == 1 and focus[0]["painted"] and focus[0]["id"] not in [r["id"] for r in rings]
    page.screenshot(path=str(ARTIFACTS / "map_neighbours.png"))
    assert not errors


def test_the_map_follows_the_windows_height(sample):
    """At 1440x900 the map's frame takes most of the window's height (the map fills the page, issue 26), and
    it follows a resize: at 420 px wide too. Screenshots of both go to test-artifacts/."""
    page, errors = sample
    try:
        for width, height in ((1440, 900), (420, 800)):
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_function(
                "([s, h]) => { const f = document.querySelector(s); return f && f.getBoundingClientRect().height "
                ">= 0.7 * (h - 60); }", arg=[MAP_IFRAME, height], timeout=30_000)
            wait_until_idle(page)
            frame = page.locator(MAP_IFRAME).bounding_box()
            drawn = _drawn(page)
            assert frame["height"] >= 0.7 * (height - 60), frame
            inner = map_frame(page).locator("#map").bounding_box()
            assert abs(inner["height"] - frame["height"]) <= 2, "the map element fills its frame"
            assert int(drawn["points-drawn"]) > 0
            page.locator(MAP_IFRAME).scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / f"map_page_{width}x{height}.png"))
    finally:
        page.set_viewport_size({"width": 1500, "height": 1050})
    assert not errors


def test_a_click_during_the_run_a_selection_started_is_not_lost(sample):
    page, errors = sample
    _reset_view(page)
    ids = map_frame(page).locator("#map").evaluate("m => Array.from(m.pointsLayer.ids.slice(0, 5))")
    # A selection, and a click one moment later: both leave the page before Python's run for the first.
    page.frame_locator(MAP_IFRAME).locator("body").evaluate(
        f"() => {{ emit({{ kind: 'selection', shape: 'box', ids: {ids[:4]} }}); emit({{ kind: 'click', ids: [{ids[4]}] }}); }}")
    wait_until_idle(page)
    page.wait_for_timeout(500)
    wait_until_idle(page)
    # Both reached Python: the selection's badge and the clicked row's details.
    page.get_by_text("4 selected").first.wait_for(timeout=60_000)
    page.get_by_role("tab", name="Details", selected=True).wait_for(timeout=60_000)
    assert not errors
