"""Ten people at once on one server: each uploads, builds and searches their own data and sees only it.

Ten Playwright browser contexts (separate cookies and storage, like separate people) drive one real
`streamlit run app.py` concurrently. Every session's titles carry a marker word of its own and an HTML
injection canary; after each step, no page may contain another session's marker, in its DOM or in its
chart's data, and the canary must never have run, there or in the exported HTML page.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hostile_inputs import CANARY, papers
from streamlit_server import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    IDLE_SCRIPT,
    chromium_path,
    map_frame,
    streamlit_server,
    upload_file,
)

from explorer import ProjectionConfig, Workspace, build_map
from explorer.export import to_html_bytes

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SESSIONS = 10
TIMEOUT = 300_000  # ms: ten builds share two busy cores
MARKERS = [f"sess{i:02d}marker" for i in range(SESSIONS)]
# Everything the page shows: its DOM text, the data and layout behind every plotly chart, and the map's
# points layer (its hover labels and groups). The map is drawn in a same-origin iframe, so its document is read too.
PAGE_TEXT = """() => [document, ...[...document.querySelectorAll('iframe')].map(f => f.contentDocument).filter(Boolean)]
    .map(doc => doc.documentElement.textContent + [...doc.querySelectorAll('.js-plotly-plot, .explorer-map')]
        .map(chart => JSON.stringify(chart.data || []) + JSON.stringify(chart.layout || {})
             + (chart.pointsLayer ? JSON.stringify([chart.pointsLayer.hover, chart.pointsLayer.legend]) : ''))
        .join(' ')).join(' ')"""
PWNED = """() => window.__pwned !== undefined
    || [...document.querySelectorAll('iframe')].some(f => f.contentWindow && f.contentWindow.__pwned !== undefined)"""


def _session_csv(folder: Path, i: int) -> Path:
    """Eight rows whose titles all carry session i's marker, one of them the canary."""
    frame = papers(7)
    frame["title"] = [f"{title} {MARKERS[i]}" for title in frame["title"]]
    frame.loc[len(frame)] = {"title": f"{CANARY} {MARKERS[i]}", "abstract": "Folding of protein chains.",
                             "year": 2024}
    path = folder / f"dataset-{i}.csv"  # the map is named after the file: one map per session
    frame.to_csv(path, index=False)
    return path


async def _idle(page) -> None:
    await page.wait_for_function(IDLE_SCRIPT, timeout=TIMEOUT)


async def _assert_private(page, i: int, step: str) -> str:
    text = await page.evaluate(PAGE_TEXT)
    foreign = [marker for j, marker in enumerate(MARKERS) if j != i and marker in text]
    assert not foreign, f"session {i} saw {foreign} after {step}"
    assert not await page.evaluate(PWNED), f"the canary ran in session {i} after {step}"
    return text


async def _session(browser, url: str, csv_path: Path, i: int) -> list[str]:
    """Upload, build, search; return the labels of the search results."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        await page.goto(url, timeout=TIMEOUT)
        await _idle(page)
        await upload_file(page, csv_path)
        build = page.get_by_role("button", name="Build map")
        await build.wait_for(timeout=TIMEOUT)
        await _idle(page)
        assert MARKERS[i] in await _assert_private(page, i, "the upload preview")

        await build.click()
        await map_frame(page).locator("#map[data-points-total]").first.wait_for(timeout=TIMEOUT)
        await _idle(page)
        assert MARKERS[i] in await _assert_private(page, i, "the build")

        box = page.get_by_label("Search the map")
        await box.fill(f"protein {MARKERS[i]}")
        await box.press("Enter")
        results = page.locator('[class*="st-key-hitlist"] button')
        await results.first.wait_for(timeout=TIMEOUT)
        await _idle(page)
        await _assert_private(page, i, "the search")
        labels = await results.all_inner_texts()
        await page.screenshot(path=str(ARTIFACTS / f"session-{i}.png"))
        assert not [e for e in errors if "pwned" in e]
        return labels
    finally:
        await context.close()


async def _all_sessions(executable: str, url: str, folder: Path) -> list[list[str] | BaseException]:
    from playwright.async_api import async_playwright

    paths = [_session_csv(folder, i) for i in range(SESSIONS)]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            return await asyncio.gather(*(_session(browser, url, paths[i], i) for i in range(SESSIONS)),
                                        return_exceptions=True)
        finally:
            await browser.close()


def test_ten_concurrent_sessions_see_only_their_own_data(tmp_path):
    executable = chromium_path()
    assert executable, "Chromium is missing: `make test` installs it with apt-get (package chromium)."
    ARTIFACTS.mkdir(exist_ok=True)
    home = tmp_path / "home"
    with streamlit_server(home, env={"EXPLORER_DEFAULT_MODEL": "hashing"}) as url:
        outcomes = asyncio.run(_all_sessions(executable, url, tmp_path))
    failures = [f"session {i}: {type(o).__name__}: {o}" for i, o in enumerate(outcomes)
                if isinstance(o, BaseException)]
    assert not failures, "\n".join(failures)
    for i, labels in enumerate(outcomes):
        assert len(labels) >= 5, (i, labels)
        assert all(MARKERS[i] in label for label in labels), (i, labels)
        assert any(CANARY in label for label in labels), "the canary title shows as literal text"
    assert sorted(info.name for info in Workspace(home).list()) == sorted(f"dataset-{i}" for i in range(SESSIONS))


def test_the_exported_html_shows_the_canary_as_text(tmp_path):
    from playwright.sync_api import sync_playwright

    frame = papers(8)
    frame.loc[0, "title"] = CANARY
    saved = build_map(frame, name=CANARY, model="hashing", projection=ProjectionConfig(method="pca"),
                      workspace=Workspace(tmp_path / "home")).saved
    page_path = tmp_path / "map.html"
    page_path.write_bytes(to_html_bytes(saved, color_by="title"))
    executable = chromium_path()
    assert executable, "Chromium is missing: `make test` installs it with apt-get (package chromium)."
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(page_path.as_uri())
            # Polled: the page's CSP forbids the eval that wait_for_function uses.
            for _ in range(600):
                if page.evaluate("!!(window.explorerExport && window.explorerExport.textsReady)"):
                    break
                page.wait_for_timeout(100)
            # Hover every point (the map core, explorer/mapjs) so each hover label is drawn once.
            shown = page.evaluate("""() => {
                const s = window.explorerExport;
                return Array.from({length: s.total}, (_, i) => s.hover(i)).join(' ')
                    + document.querySelector('#map .legend').textContent;
            }""")
            assert CANARY in shown, "the title shows literally in the hover label and the legend"
            assert page.evaluate("window.__pwned") is None
            assert page.evaluate("document.querySelectorAll('img[src]').length") == 0
        finally:
            browser.close()
