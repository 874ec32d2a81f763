"""Screening in Chromium: ten papers judged by keyboard (y / n / u), the queue, the progress chart, the heat
layer on the map, a reload that keeps every decision, and the BibTeX of the relevant papers."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from streamlit_server import ARTIFACTS, map_frame, streamlit_server, wait_until_idle

from explorer import ProjectionConfig, Workspace, build_map
from explorer.screening import IRRELEVANT, RELEVANT, decisions_of, history_of

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def papers() -> pd.DataFrame:
    rows = [(f"Graph neural networks predict molecule properties, part {i}", 2015 + i % 8) for i in range(30)] + \
           [(f"Medieval poetry in its manuscripts, essay {i}", 1990 + i % 8) for i in range(30)]
    return pd.DataFrame(rows, columns=["title", "year"])


def screened_count(page) -> int:
    text = page.get_by_text(re.compile(r"screened of \d+")).first.inner_text()
    return int(re.search(r"(\d+) screened of", text).group(1))


def test_screening_ten_papers_by_keyboard(browser, tmp_path):
    home = tmp_path / "home"
    build_map(papers(), source_name="papers.csv", name="papers", model="hashing", text_columns=["title"],
              projection=ProjectionConfig(method="pca"), workspace=Workspace(home))
    with streamlit_server(home, env={"EXPLORER_DEFAULT_MODEL": "hashing"}) as url:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{url}/?map=papers")
        map_frame(page).locator("[data-testid=explorer-map][data-shown-count]").wait_for(timeout=120_000)
        page.get_by_role("tab", name="Screening").click()
        current = page.locator('[class*="st-key-screen_current_paper"]')
        current.wait_for(timeout=60_000)
        judged = []
        for number in range(10):
            title = current.locator("strong").first.inner_text()
            key = "y" if "molecule" in title else "n"
            judged.append((title, key))
            page.evaluate("document.activeElement && document.activeElement.blur()")  # keys to the page, not a box
            page.keyboard.press(key)
            page.wait_for_function(f"() => document.body.innerText.includes('{number + 1} screened of')",
                                   timeout=60_000)
            wait_until_idle(page)
        assert screened_count(page) == 10
        relevant = sum(key == "y" for _, key in judged)
        assert relevant >= 6, judged  # after the first molecule paper, the model puts the others first
        # u undoes the last decision.
        page.keyboard.press("u")
        page.wait_for_function("() => document.body.innerText.includes('9 screened of')", timeout=60_000)
        wait_until_idle(page)
        assert current.locator("strong").first.inner_text() == judged[-1][0]
        page.keyboard.press(judged[-1][1])
        page.wait_for_function("() => document.body.innerText.includes('10 screened of')", timeout=60_000)
        wait_until_idle(page)
        # The queue, the progress chart and the hint.
        assert page.get_by_text("Most likely relevant next").is_visible()
        assert page.locator('[class*="st-key-screen_queue_"]').count() == 10
        assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 1
        assert page.get_by_text(re.compile(r"screened since the last relevant one")).is_visible()
        # The heat layer: the map is coloured on the "likely relevant" scale.
        page.get_by_text("Likely relevance on the map").click()
        wait_until_idle(page)
        frame = map_frame(page)
        frame.locator(".legend-title", has_text="likely relevant").wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "screening_1440x900.png"))
        # A reload keeps every decision.
        page.reload()
        page.get_by_role("tab", name="Screening").click()
        page.get_by_text(re.compile(r"10 screened of 60")).wait_for(timeout=120_000)
        # The relevant papers as BibTeX.
        with page.expect_download() as download:
            page.get_by_role("button", name="BibTeX").click()
        bib = download.value.path().read_text()
        assert bib.count("@") == relevant
        assert all(title in bib for title, key in judged if key == "y")
        page.close()
    saved = Workspace(home).open("papers")
    assert (decisions_of(saved) == RELEVANT).sum() == relevant
    assert (decisions_of(saved) == IRRELEVANT).sum() == 10 - relevant
    assert len(history_of(saved)) == 12  # ten, an undo, and the redo
