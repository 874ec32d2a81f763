"""The real app in Chromium: upload, build, search, click a result, and the injection canary."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from streamlit_server import (
    ARTIFACTS,
    MAP_IFRAME,
    map_frame,
    streamlit_server,
    upload_file,
    wait_until_idle,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CANARY = '<img src=x onerror="window.__pwned=1">'
TOPICS = {
    "biology": [
        ("Protein folding pathways observed in single molecules", "How a chain of amino acids folds into its native protein structure, tracked molecule by molecule."),
        ("Chaperones that assist protein folding in the cell", "Molecular chaperones prevent misfolding and aggregation of newly made proteins."),
        ("Predicting protein structure from sequence", "Deep networks predict the folded three-dimensional structure of a protein from its amino acid sequence."),
        ("Gene expression in yeast under stress", "Transcription of yeast genes changes when cells are starved or heated."),
        ("DNA repair enzymes at replication forks", "Enzymes that fix broken DNA strands while the genome is copied."),
        ("Ribosome structure at atomic resolution", "The ribosome that translates messenger RNA into protein, seen in a crystal structure."),
    ],
    "physics": [
        ("Gravitational waves from merging black holes", "Interferometers detect ripples in spacetime from two black holes spiralling together."),
        ("Superconductivity in layered copper oxides", "Electrical resistance vanishes below a critical temperature in these ceramic materials."),
        ("Quantum entanglement over long distances", "Photon pairs stay correlated across kilometres of optical fibre."),
        ("Dark matter in galaxy rotation curves", "Stars orbit galaxies faster than visible mass explains."),
        ("Neutrino oscillations between flavours", "Neutrinos change type as they travel, so they must have mass."),
        ("Cosmic microwave background anisotropies", "Tiny temperature differences in the oldest light of the universe."),
    ],
    "economics": [
        ("Minimum wage and employment in fast food", "Raising the minimum wage did not reduce jobs in restaurants."),
        ("Inflation expectations and central bank policy", "How interest rate decisions shape what households expect prices to do."),
        ("Trade tariffs and consumer prices", "Import taxes were passed on almost fully to the prices consumers pay."),
        ("Housing markets and mortgage credit", "Easy mortgage lending drove up house prices before the crisis."),
        ("Labour market effects of immigration", "Wages of native workers after a large wave of immigrants."),
        ("Stock market returns and investor sentiment", "Optimistic investors push share prices above fundamentals."),
    ],
}


def _dataset(path):
    rows = [{"title": t, "abstract": a, "field": f} for f, items in TOPICS.items() for t, a in items]
    rows.append({"title": CANARY, "abstract": "Protein folding and misfolding of amino acid chains in cells.",
                 "field": "biology"})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """One real server for this module, with the bundled model and a private workspace."""
    with streamlit_server(tmp_path_factory.mktemp("browser-home")) as url:
        yield url


def _new_page(browser, url):
    """A fresh page on the app, with page errors collected."""
    page = browser.new_page(viewport={"width": 1500, "height": 1050})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    wait_until_idle(page)
    return page, errors


def _search(page, query: str) -> None:
    box = page.get_by_label("Search the map")
    box.fill(query)
    box.press("Enter")
    # The query's label on the map proves this search (not an earlier one) has been drawn.
    map_frame(page).locator("#map .labels .label.query", has_text=query).first.wait_for(timeout=120_000)
    page.locator('[class*="st-key-hitlist"] button').first.wait_for(timeout=60_000)
    wait_until_idle(page)


def test_upload_build_search_and_details(browser, app_url, tmp_path):
    page, errors = _new_page(browser, app_url)
    csv_path = _dataset(tmp_path / "papers_upload.csv")
    upload_file(page, csv_path)
    page.get_by_role("button", name="Build map").wait_for(timeout=60_000)
    wait_until_idle(page)
    page.get_by_role("button", name="Build map").click()
    map_frame(page).locator("#map[data-points-total]").first.wait_for(timeout=180_000)
    wait_until_idle(page)
    # Every point is drawn into the core's canvas (no WebGL, no plotly.js), from the points file.
    drawn = map_frame(page).locator("#map[data-points-drawn]")
    drawn.wait_for(timeout=60_000)
    assert int(drawn.get_attribute("data-points-drawn")) == int(drawn.get_attribute("data-points-total")) > 0
    assert map_frame(page).locator("#map canvas").count() == 2, "the points and the overlay: two 2D canvases"
    assert map_frame(page).locator("script[src*='plotly']").count() == 0

    _search(page, "protein folding")
    page.screenshot(path=str(ARTIFACTS / "upload_search.png"), full_page=True)
    # Hits are drawn by the core over the veiled points: one marker per ranked result, plus the query star.
    assert int(map_frame(page).locator("#map").get_attribute("data-hit-count")) >= 10
    _assert_overlay_on_points(page)
    results = page.locator('[class*="st-key-hitlist"] button')
    labels = results.all_inner_texts()
    assert any("Protein folding pathways" in label for label in labels[:4]), labels
    assert any(CANARY in label for label in labels), "the canary title must show as literal text"

    results.filter(has_text="Chaperones that assist protein folding").first.click()
    page.get_by_role("tab", name="Details", selected=True).wait_for(timeout=60_000)
    wait_until_idle(page)
    assert page.get_by_role("heading", name="Chaperones that assist protein folding in the cell").is_visible()
    assert page.get_by_text("Molecular chaperones prevent misfolding", exact=False).is_visible(), \
        "the row's abstract can be read in Details"
    assert page.get_by_role("button", name=re.compile("Close details")).is_visible()

    _hover_every_hit_until(page, CANARY)
    page.screenshot(path=str(ARTIFACTS / "upload_details.png"), full_page=True)

    page.get_by_role("button", name="Why this match?").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(re.compile(r"Cosine 0\.\d{3}")).wait_for(timeout=60_000)
    wait_until_idle(page)
    figure = dialog.locator(".js-plotly-plot .main-svg").first
    figure.wait_for(timeout=60_000)
    assert figure.bounding_box()["width"] >= 600, "the explanation is drawn at a readable width"
    assert dialog.locator(".colorbar").count() == 2, "each row of tokens has its colour key"
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "upload_why.png"))
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached", timeout=30_000)
    wait_until_idle(page)

    _box_select_whole_map(page)
    page.get_by_text(re.compile(r"^\d+ rows selected$")).wait_for(timeout=60_000)
    selected = page.get_by_text(re.compile(r"^\d+ rows selected$")).inner_text()
    count = int(selected.split()[0])
    assert count >= 5
    assert page.get_by_text(f"{count} selected", exact=True).is_visible(), "the badge by the map counts them"
    _search(page, "black holes and gravity")
    assert page.get_by_text(f"{count} selected", exact=True).is_visible(), "a new search must keep the selection"
    _zoom_in(page)
    _assert_overlay_on_points(page)
    page.get_by_role("tab", name="Selection").click()
    page.screenshot(path=str(ARTIFACTS / "upload_selection.png"), full_page=True)
    page.locator('[data-testid="stDownloadButton"]').filter(has_text="Download CSV").wait_for(timeout=30_000)
    assert page.evaluate("window.__pwned") is None
    assert map_frame(page).locator("body").evaluate("() => window.__pwned") is None
    assert not [e for e in errors if "pwned" in e]


# Each search hit in view: its pixel on the map (from the core's view) and whether the overlay canvas is
# painted in the hits' gold or their red ring there.
HIT_PIXELS = """m => {
    const api = m.explorerMap, c = m.querySelector('canvas.overlay').getContext('2d'), v = api.view.state;
    return api.state.overlay.hits.map(i => api.at(i)).filter(([x, y]) => x >= 0 && y >= 0 && x < v.w && y < v.h)
        .map(([x, y]) => { const d = c.getImageData(Math.round(x), Math.round(y), 1, 1).data;
                           return [x, y, d[3] > 200 && d[0] > 170 && d[2] < 90]; });
}"""


def _assert_overlay_on_points(page) -> None:
    """Every hit in view is marked on the overlay exactly where its point is drawn."""
    pixels = map_frame(page).locator("#map").evaluate(HIT_PIXELS)
    assert pixels, "no search hits on the overlay"
    assert all(marked for _, _, marked in pixels), pixels


def _zoom_in(page) -> None:
    """Wheel-zoom into the map; the core redraws points and overlay from the same view."""
    map_frame(page).locator("#map").scroll_into_view_if_needed()
    area = page.locator(MAP_IFRAME).bounding_box()
    before = map_frame(page).locator("#map").get_attribute("data-zoom")
    page.mouse.move(area["x"] + area["width"] / 3, area["y"] + area["height"] / 3)
    page.mouse.wheel(0, -400)
    page.wait_for_function(
        "([selector, before]) => { const f = document.querySelector(selector).contentDocument; "
        "return f.getElementById('map').getAttribute('data-zoom') !== before; }", arg=[MAP_IFRAME, before],
        timeout=30_000)
    page.wait_for_timeout(100)


def _box_select_whole_map(page) -> None:
    """Pick the map's Box tool and drag across most of the map."""
    map_frame(page).locator('#map .toolbar button[data-mode="box"]').click()
    box = page.locator(MAP_IFRAME).bounding_box()
    page.mouse.move(box["x"] + 5, box["y"] + 45)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=5)
    page.mouse.move(box["x"] + box["width"] - 5, box["y"] + box["height"] - 5, steps=5)
    page.mouse.up()
    map_frame(page).locator('#map .toolbar button[data-mode="pan"]').click()
    wait_until_idle(page)


def _hover_every_hit_until(page, text: str) -> None:
    """Hover the highlighted hits one by one until the map's hover card shows ``text`` literally."""
    frame = page.locator(MAP_IFRAME).bounding_box()
    for x, y, _ in map_frame(page).locator("#map").evaluate(HIT_PIXELS):
        page.mouse.move(frame["x"] + x, frame["y"] + y)
        page.wait_for_timeout(150)
        hover = map_frame(page).locator("#map .hover").text_content() or ""
        if text in hover:
            return
    raise AssertionError(f"no hover label showed {text!r} as text")


def test_sample_papers_protein_folding(browser, app_url):
    page, _ = _new_page(browser, app_url)
    page.get_by_role("button", name="Try the sample papers").click()
    map_frame(page).locator("#map[data-points-total]").first.wait_for(timeout=180_000)
    wait_until_idle(page)
    _search(page, "protein folding")
    results = page.locator('[class*="st-key-hitlist"] button')
    top = results.all_inner_texts()[:5]
    assert sum("rotein" in label or "olding" in label for label in top) >= 4, top
    # Cluster labels are drawn on the map, readable (boxed) and not piled on each other.
    placed = map_frame(page).locator("#map .labels .label")
    labels = placed.all_text_contents()
    assert len(labels) >= 4, labels
    assert any("protein" in label or "folding" in label for label in labels), labels
    boxes = [placed.nth(i).bounding_box() for i in range(len(labels))]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            overlap_x = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
            overlap_y = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
            assert overlap_x <= 2 or overlap_y <= 2, (a, b)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / "sample_protein_folding.png"))
    assert page.evaluate("window.__pwned") is None


# The names of the points layer's groups ("filtered out" holds the dimmed points).
BASE_TRACES = """selector => {
    const map = document.querySelector(selector).contentDocument.getElementById('map');
    return map && map.pointsLayer ? map.pointsLayer.legend.map(g => g.name) : [];
}"""


def test_sample_papers_cluster_pick_dims_the_rest_at_once(browser, app_url):
    page, errors = _new_page(browser, app_url)
    page.get_by_role("button", name="Try the sample papers").click()
    map_frame(page).locator("#map[data-points-total]").first.wait_for(timeout=180_000)
    wait_until_idle(page)
    assert "filtered out" not in page.evaluate(BASE_TRACES, MAP_IFRAME)
    heading = page.get_by_role("heading", name=re.compile(r"^Clusters \(\d+\)$"))
    heading.scroll_into_view_if_needed()
    # The clusters table is the only table on the page now; its row markers are the first 30 px,
    # its rows 35 px tall under a 35 px header (Streamlit's own e2e tests click it the same way).
    table = page.locator('[data-testid="stDataFrame"]').first
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    page.mouse.click(box["x"] + 15, box["y"] + 35 + 35 / 2)
    page.get_by_text("Rename this cluster").wait_for(timeout=60_000)
    wait_until_idle(page)
    # One click: the map dims the other clusters in the run that click started, not one click later.
    page.wait_for_function(f"s => ({BASE_TRACES})(s).includes('filtered out')", arg=MAP_IFRAME, timeout=30_000)
    assert page.get_by_text(re.compile(r"highlighted \([\d,]+ rows\)")).is_visible()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / "sample_cluster_pick.png"), full_page=True)
    assert not errors
