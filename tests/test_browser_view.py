"""The view a person can trust, in Chromium: what the screen shows after each action equals the state.

A reload or a shared link reopens the map and its query; a cluster picked in the table is highlighted
on the map in the same run; opening a result keeps the result list in its tab; a rename in the
Library keeps the picker on the renamed map. Each check reads back what the browser drew."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect
from streamlit_server import ARTIFACTS, MAP_IFRAME, open_sidebar, streamlit_server, wait_until_idle

from explorer import Workspace, build_map

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# The names of the points layer's groups (its legend: "filtered out" holds the dimmed rows) and what the
# map core's overlay holds now (hits, the query, the focused point, its neighbours).
TRACE_NAMES = """() => { const m = document.getElementById('map'), o = m.explorerMap.state.overlay;
    return {
        base: ((m.pointsLayer || {}).legend || []).map(g => g.name),
        overlay: [o.hits.length ? 'search hits' : '', o.query ? 'query' : '', o.focus >= 0 ? 'focused' : '',
                  o.neighbours.length ? 'neighbours' : ''].filter(Boolean),
        baseKey: m.getAttribute('data-base-key'),
    }; }"""


@pytest.fixture(scope="module")
def server_home(tmp_path_factory):
    """The workspace of this module's server."""
    return tmp_path_factory.mktemp("view-home")


@pytest.fixture(scope="module")
def app_url(server_home):
    """One server with the weights-free hashing model: these tests are about the view, not the model."""
    with streamlit_server(server_home, env={"EXPLORER_DEFAULT_MODEL": "hashing"}) as url:
        yield url


@pytest.fixture(scope="module")
def sample_url(browser, app_url):
    """The URL of the sample papers map, built once through the first screen's button."""
    page = _page(browser, app_url)
    page.get_by_role("button", name="Try the sample papers").click()
    page.frame_locator(MAP_IFRAME).locator("#map[data-points-total]").first.wait_for(timeout=240_000)
    wait_until_idle(page)
    url = page.url
    page.close()
    assert parse_qs(urlparse(url).query)["map"] == ["Sample papers"], url
    return url


def _page(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    wait_until_idle(page)
    return page


def _traces(page) -> dict:
    frame = page.frame_locator(MAP_IFRAME)
    frame.locator("#map[data-points-total]").first.wait_for(timeout=60_000)
    return frame.locator("body").evaluate(TRACE_NAMES)


def _wait_for_trace(page, name: str, *, present: bool = True, timeout: float = 60_000) -> None:
    """Wait until the map's points layer has (or no longer has) a group called ``name``."""
    page.wait_for_function(
        "([selector, name, present]) => { const d = document.querySelector(selector).contentDocument; "
        "const map = d && d.getElementById('map'); if (!map || !map.pointsLayer) return false; "
        "return map.pointsLayer.legend.some(g => g.name === name) === present; }",
        arg=[MAP_IFRAME, name, present], timeout=timeout)


def _search(page, query: str) -> None:
    box = page.get_by_label("Search the map")
    box.fill(query)
    box.press("Enter")
    wait_until_idle(page)
    page.locator('[class*="st-key-hitlist"] button').first.wait_for(timeout=60_000)


def test_a_reload_and_a_shared_link_reopen_the_map_and_its_query(browser, sample_url):
    page = _page(browser, sample_url)
    _search(page, "protein folding")
    params = parse_qs(urlparse(page.url).query)
    assert params == {"map": ["Sample papers"], "query": ["protein folding"]}, page.url
    page.reload()
    wait_until_idle(page)
    page.locator('[class*="st-key-hitlist"] button').first.wait_for(timeout=60_000)
    expect(page.get_by_label("Search the map")).to_have_value("protein folding", timeout=30_000)
    assert "search hits" in _traces(page)["overlay"], "the reloaded map draws the query's hits"
    page.screenshot(path=str(ARTIFACTS / "view_after_reload.png"))

    # The same link in another browser context (a colleague's) opens the same view.
    other = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    other.goto(page.url)
    wait_until_idle(other)
    other.locator('[class*="st-key-hitlist"] button').first.wait_for(timeout=60_000)
    # Retried: under load the box can get its value a moment after the results list appears.
    expect(other.get_by_label("Search the map")).to_have_value("protein folding", timeout=30_000)
    other.context.close()

    open_sidebar(page).get_by_role("button", name="New map").click()
    wait_until_idle(page)
    # The URL changes once the run that "New map" started has reached the browser.
    page.wait_for_url(lambda url: "map=" not in url and "query=" not in url, timeout=30_000)
    page.get_by_role("button", name="Try the sample papers").wait_for(timeout=30_000)
    page.close()


def test_a_link_to_an_unknown_map_says_so(browser, app_url):
    page = _page(browser, f"{app_url}/?map=No+such+map&query=x")
    page.get_by_text("The link names the map 'No such map'").wait_for(timeout=30_000)
    page.get_by_role("button", name="Try the sample papers").wait_for(timeout=30_000)  # the first screen is usable
    page.screenshot(path=str(ARTIFACTS / "view_unknown_link.png"))
    assert "map=" not in page.url
    page.close()


def test_a_cluster_picked_in_the_table_is_highlighted_at_once(browser, sample_url):
    page = _page(browser, sample_url)
    assert "filtered out" not in _traces(page)["base"]
    table = page.locator('[data-testid="stDataFrame"]').last
    table.scroll_into_view_if_needed()
    table.locator("canvas").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1_000)  # the grid binds its mouse handlers after it first paints
    box = table.bounding_box()
    # The row-selection column sits left of the first row, below the header row (35 px each).
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
    _wait_for_trace(page, "filtered out", present=True)
    caption = page.get_by_text(re.compile(r"highlighted \(\d+ rows\)"))
    caption.wait_for(timeout=30_000)
    assert caption.is_visible()
    page.screenshot(path=str(ARTIFACTS / "view_cluster_highlighted.png"), full_page=True)
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)  # the same row again: the pick is cleared
    _wait_for_trace(page, "filtered out", present=False)
    wait_until_idle(page)
    assert page.get_by_text(re.compile(r"highlighted \(\d+ rows\)")).count() == 0, "no stale line by the map"
    page.close()


def test_opening_a_result_keeps_the_list_and_shows_the_row(browser, sample_url):
    page = _page(browser, sample_url)
    _search(page, "protein folding")
    hits = page.locator('[class*="st-key-hitlist"] button')
    first = hits.first.inner_text()
    title = re.sub(r"^\d+\.\s*", "", first).rsplit(" · ", 1)[0]
    hits.first.click()
    wait_until_idle(page)
    page.get_by_role("tab", name="Details", selected=True).wait_for(timeout=30_000)
    assert page.get_by_role("heading", name=title).is_visible(), "the full title heads Details"
    assert "focused" in _traces(page)["overlay"]
    assert "neighbours" in " ".join(_traces(page)["overlay"]), "the focused row's neighbours are ringed"
    page.screenshot(path=str(ARTIFACTS / "view_details.png"))
    page.get_by_role("tab", name="Results").click()
    # Only the open tab runs: the list is drawn again by the rerun the click starts.
    hits.first.wait_for(timeout=30_000)
    wait_until_idle(page)
    assert hits.count() == 10 and hits.first.is_visible(), "the result list is where it was"
    assert hits.first.inner_text().startswith("▶"), "the open result is marked"
    page.close()


def test_a_rename_in_the_library_keeps_the_picker_on_that_map(browser, app_url, sample_url, server_home,
                                                              papers_frame):
    # Another map beside the sample: a picker that lost its map would fall back to this one.
    build_map(papers_frame, name="Another map", model="hashing", workspace=Workspace(server_home))
    page = _page(browser, f"{app_url}/Library")
    page.get_by_label("Map", exact=True).click()
    page.get_by_role("option", name="Sample papers").click()
    wait_until_idle(page)
    page.get_by_label("New name").fill("Renamed papers")
    page.get_by_label("New name").press("Enter")
    page.get_by_role("button", name="Rename", exact=True).click()
    wait_until_idle(page)
    page.get_by_text("Renamed 'Sample papers' to 'Renamed papers'.").wait_for(timeout=30_000)
    assert page.get_by_label("Map", exact=True).input_value() == "Renamed papers", "the picker shows the renamed map"
    page.screenshot(path=str(ARTIFACTS / "view_library_renamed.png"))
    # Give the sample its name back for the other tests of this module.
    page.get_by_label("New name").fill("Sample papers")
    page.get_by_label("New name").press("Enter")
    page.get_by_role("button", name="Rename", exact=True).click()
    wait_until_idle(page)
    page.close()
