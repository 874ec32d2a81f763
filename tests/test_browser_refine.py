"""The progressive build in Chromium: upload → the fast map → the refinement's progress in the sidebar →
a search works meanwhile → search by meaning on the titles, the map as drawn → the switch to the
transformer's map, whose ranking differs."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from streamlit_server import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    chromium_path,
    map_frame,
    open_sidebar,
    streamlit_server,
    upload_file,
    wait_until_idle,
)
from test_browser import TOPICS, _search

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# A table this small takes the progressive build only with a tiny budget; chunks of 4 rows with a
# rest between them stretch each stage of the refinement (titles, then the whole text) to ~15 s, long enough
# to search during it.
SERVER_ENV = {"EXPLORER_QUALITY_BUDGET_SECONDS": "0.001", "EXPLORER_REFINE_CHUNK_ROWS": "4",
              "EXPLORER_REFINE_PAUSE_SECONDS": "3", "EXPLORER_DEFAULT_MODEL": ""}


def _ranking(page) -> list[str]:
    """The titles of the ranked results, in order (ranks and scores left out)."""
    labels = page.locator('[class*="st-key-hitlist"] button').all_inner_texts()
    return [re.sub(r"^\W*\d+\.\s*|\s*·\s*[\d.]+\s*$", "", label.strip()) for label in labels]


def test_progressive_build_refines_in_the_background(tmp_path):
    from playwright.sync_api import sync_playwright

    csv_path = tmp_path / "papers.csv"
    # Abstracts twice their titles' length at least, as a paper's are: the refinement reads the titles first.
    pd.DataFrame([{"title": t, "abstract": f"{a} {a}", "field": f} for f, items in TOPICS.items()
                  for t, a in items]).to_csv(csv_path, index=False)
    with streamlit_server(tmp_path / "home", env=SERVER_ENV) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1050})
        page.goto(url)
        wait_until_idle(page)
        upload_file(page, csv_path)
        # The form says the waits: the map's, search by meaning's on the titles, and on the whole text.
        page.get_by_text(re.compile("search by meaning on the titles in about .* on the whole text in about")).wait_for(
            timeout=60_000)
        page.get_by_role("button", name="Build map").click()
        map_frame(page).locator("#map[data-points-total]").first.wait_for(timeout=180_000)
        sidebar = open_sidebar(page)
        assert "tfidf-svd" in sidebar.inner_text()

        # Progress while the transformer reads the rows, and a search of the fast map meanwhile.
        sidebar.get_by_text(re.compile(r"Search by meaning: ")).wait_for(timeout=120_000)
        _search(page, "protein folding")
        fast_ranking = _ranking(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "refine_progress.png"))
        assert fast_ranking and not sidebar.get_by_role("button", name="Use the refined map").is_visible()
        assert "Search reads words" in sidebar.inner_text()
        assert "by words, fast map" in page.get_by_text(re.compile(r"\d+ results \(")).first.inner_text()

        # The titles are read first: search by meaning on them is offered, and the map stays as drawn.
        use_titles = sidebar.get_by_role("button", name="Search by meaning", exact=True)
        use_titles.wait_for(timeout=240_000)
        drawn = map_frame(page).locator("#map").get_attribute("data-points-total")
        use_titles.click()
        sidebar.get_by_text("Search reads meaning, on the titles").wait_for(timeout=60_000)
        wait_until_idle(page)
        _search(page, "protein folding")
        title_ranking = _ranking(page)
        assert "by meaning, on titles" in page.get_by_text(re.compile(r"\d+ results \(")).first.inner_text()
        assert title_ranking and "Protein folding pathways" in " ".join(title_ranking[:3])
        assert map_frame(page).locator("#map").get_attribute("data-points-total") == drawn
        page.screenshot(path=str(ARTIFACTS / "refine_titles.png"))

        # The switch is offered, never made under the cursor: the fast map stays until the button.
        sidebar.get_by_role("button", name="Use the refined map").wait_for(timeout=240_000)
        fast_layer = map_frame(page).locator("#map").get_attribute("data-base-key")
        sidebar.get_by_role("button", name="Use the refined map").click()
        sidebar.get_by_text(re.compile("all-MiniLM-L6-v2")).first.wait_for(timeout=60_000)
        wait_until_idle(page)
        # The refined map's points replace the fast map's: a new points layer, every row drawn.
        refined = map_frame(page).locator(f"#map[data-points-drawn]:not([data-base-key='{fast_layer}'])")
        refined.wait_for(timeout=60_000)
        assert refined.get_attribute("data-points-drawn") == refined.get_attribute("data-points-total") != "0"
        page.locator('[class*="st-key-hitlist"] button').first.wait_for(timeout=60_000)
        refined_ranking = _ranking(page)
        page.screenshot(path=str(ARTIFACTS / "refine_done.png"))
        assert refined_ranking and refined_ranking != fast_ranking
        assert "Protein folding pathways" in " ".join(refined_ranking[:3])
        browser.close()
