"""The map page's arrangement in Chromium: the map in the wide column with one side panel beside it (results,
details, selection, clusters), the search row above it; on a narrow window the panel goes under the map."""

from __future__ import annotations

import json

import pytest
from streamlit_server import ARTIFACTS, MAP_IFRAME, streamlit_server, wait_until_idle

from explorer import Workspace, build_map
from explorer.cluster import ClusterConfig

pytestmark = [pytest.mark.slow, pytest.mark.browser]

WIDE, NARROW = (1440, 900), (420, 900)


@pytest.fixture(scope="module")
def map_url(tmp_path_factory):
    from conftest import papers_table

    home = tmp_path_factory.mktemp("arrangement-home")
    build_map(papers_table(), name="papers", model="hashing", workspace=Workspace(home),
              clusters=ClusterConfig(method="kmeans", k=3, levels=1))
    with streamlit_server(home, env={"EXPLORER_DEFAULT_MODEL": "hashing"}) as url:
        yield f"{url}/?map=papers"


def _open(browser, url: str, size: tuple[int, int]):
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.goto(url)
    page.locator(MAP_IFRAME).wait_for(timeout=120_000)
    wait_until_idle(page)
    page.wait_for_timeout(1_500)  # the map's frame sizes itself once drawn
    return page


def _boxes(page) -> dict:
    return {
        "map": page.locator(MAP_IFRAME).bounding_box(),
        "panel": page.locator('[class*="st-key-side_panel"]').bounding_box(),
        "search": page.get_by_label("Search the map").bounding_box(),
        "clusters": page.get_by_role("heading", name="Clusters (3)").bounding_box(),
    }


def _share(box: dict, size: tuple[int, int], *, to_bottom: bool = False) -> float:
    """The map's share of the window: as drawn, or with its height running to the window's bottom (the height
    the component takes once it follows the window)."""
    height = size[1] - box["y"] if to_bottom else min(box["height"], size[1] - box["y"])
    return box["width"] * height / (size[0] * size[1])


def test_the_map_takes_the_wide_column_with_the_panel_beside_it(browser, map_url):
    page = _open(browser, map_url, WIDE)
    boxes = _boxes(page)
    page.screenshot(path=str(ARTIFACTS / "arrangement_1440x900.png"))
    m, panel = boxes["map"], boxes["panel"]
    assert panel["x"] >= m["x"] + m["width"] - 1, "the side panel sits beside the map"
    assert m["width"] >= 2.5 * panel["width"], "the map takes the wide column"
    assert boxes["clusters"]["x"] >= panel["x"] - 1, "the clusters are in the side panel"
    assert boxes["search"]["y"] + boxes["search"]["height"] <= m["y"] and m["y"] - boxes["search"]["y"] < 70, \
        "the search box is one row above the map"
    # The sidebar (the map's controls) is folded when a map opens: the map and the panel share the width.
    assert page.get_by_test_id("stExpandSidebarButton").is_visible()
    share = _share(m, WIDE)
    (ARTIFACTS / "arrangement_1440x900.json").write_text(json.dumps({"boxes": boxes, "share": share}, indent=1))
    print("the map's share of the 1440x900 window:", round(share, 3))
    assert m["height"] <= WIDE[1] - m["y"], "the whole map is in view"
    assert share >= 0.6, boxes
    # Opened, the controls stay open through a rerun (a search).
    page.get_by_test_id("stExpandSidebarButton").click()
    page.get_by_label("Search the map").fill("graph networks")
    page.keyboard.press("Enter")
    wait_until_idle(page)
    assert page.locator('[data-testid="stSidebar"]').get_by_text("Colour by").is_visible()
    page.close()


def test_a_narrow_window_puts_the_panel_under_the_map(browser, map_url):
    page = _open(browser, map_url, NARROW)
    boxes = _boxes(page)
    page.screenshot(path=str(ARTIFACTS / "arrangement_420.png"), full_page=True)
    m, panel = boxes["map"], boxes["panel"]
    assert panel["y"] >= m["y"] + m["height"] - 1, boxes
    assert m["width"] >= 0.85 * (NARROW[0] - 40), "the map takes the window's width"
    page.locator('[class*="st-key-side_panel"]').scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "arrangement_420_panel.png"))
    page.close()
