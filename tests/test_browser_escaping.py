"""Every user string is escaped wherever it is shown, in Chromium: a map whose column names and values are
Markdown and HTML, and a link naming a map made of Markdown, draw no link, image or script and fetch nothing.

The page is driven with every request outside the app's own host blocked and recorded, over the whole test."""

from __future__ import annotations

import contextlib
import re
from urllib.parse import quote, urlparse

import pandas as pd
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect
from streamlit_server import ARTIFACTS, map_frame, open_sidebar, streamlit_server, wait_until_idle

from explorer import ProjectionConfig, Workspace, build_map
from explorer.cluster import ClusterConfig

pytestmark = [pytest.mark.slow, pytest.mark.browser]

EVIL = "https://evil.example"
LINK = f"[verify your session]({EVIL}/phish)"
IMAGE = f"![t]({EVIL}/pixel.png)"
IMG_TAG = '<img src=x onerror="window.__pwned=1">'
REMOTE_IMG = f'<img src="{EVIL}/tag.png">'
SCRIPT = "<script>window.__pwned=1</script>"
ANCHOR = f'<a href="{EVIL}/a">anchor</a>'
BOLD = "**BOLD**"
# Column names and values a renderer would obey: links, remote images, HTML with handlers, bold, and
# Streamlit's own directives (colour, LaTeX).
LINK_COLUMN = f"{LINK} {IMAGE}"
HTML_COLUMN = f"{IMG_TAG} {ANCHOR} {BOLD}"
VALUES = [f"{BOLD} {LINK}", f"{IMAGE} {SCRIPT}", f"{IMG_TAG} {ANCHOR}", f"{REMOTE_IMG} :red[red] $x^2$"]
MARKDOWN_MAP = f"evil [m]({EVIL}/n) **b**"  # the map's name (the store keeps what a folder name may hold)
MAP_LINK = f"[verify]({EVIL}/phish) ![t]({EVIL}/pixel.png)"
# Markdown a renderer would obey in a string meant to show the hostile text above literally: a link or an
# image, raw HTML, bold. Escaped, each of them has a backslash inside.
UNESCAPED_MARKDOWN = re.compile(r"(?<!\\)\]\(|(?<!\\)!\[|(?<!\\)<(?:img|script|a)\b|(?<!\\)\*\*BOLD")
# GFM links bare URLs, www. names and e-mail addresses after the backslashes are read: none may be left whole.
AUTOLINK = re.compile(r"https?://|www\.|\w@\w", re.IGNORECASE)


def obeyed(text: str) -> bool:
    """Whether Streamlit's Markdown would make a link, an image, HTML or bold of ``text``'s hostile parts."""
    return bool(UNESCAPED_MARKDOWN.search(text) or AUTOLINK.search(text.replace("\\", "")))


_TOPICS = ["protein folding enzyme cell gene", "quantum particle field energy spin", "market price inflation trade wage"]


def markdown_frame(n: int = 24) -> pd.DataFrame:
    """Titles, values and column names made of Markdown and HTML, over three clearly different topics."""
    rows = []
    for i in range(n):
        words = _TOPICS[i % 3]
        rows.append({"title": f"{VALUES[i % 4]} {words.split()[0]} {i}", "abstract": f"{words} {VALUES[i % 4]}",
                     LINK_COLUMN: VALUES[i % 4], HTML_COLUMN: VALUES[(i + 1) % 4], "year": 2000 + i % 2})
    return pd.DataFrame(rows)


# --- the browser test (the names above are shared with the AppTests of tests/test_app.py) -------------

# Every URL-bearing attribute of every element (SVG links included) that names the hostile host.
EVIL_URLS = """() => {
    const named = ['href', 'xlink:href', 'src', 'srcset', 'action', 'formaction', 'poster', 'data', 'background'];
    const found = [];
    for (const el of document.querySelectorAll('*')) {
        for (const attr of el.attributes) {
            const url = named.includes(attr.name) || (attr.name === 'style' && attr.value.includes('url('));
            if (url && attr.value.includes('evil.example')) found.push(el.tagName + ' ' + attr.name + '=' + attr.value);
        }
    }
    return found;
}"""


@pytest.fixture(scope="module")
def escaping_url(tmp_path_factory):
    """A server on a workspace holding the Markdown map, and the map's name as the store kept it."""
    home = tmp_path_factory.mktemp("escaping-home")
    saved = build_map(markdown_frame(), name=MARKDOWN_MAP, model="hashing", text_columns=["title", "abstract"],
                      clusters=ClusterConfig(method="kmeans", k=3, levels=1),
                      projection=ProjectionConfig(method="pca"), workspace=Workspace(home)).saved
    with streamlit_server(home, env={"EXPLORER_DEFAULT_MODEL": "hashing"}) as url:
        yield url, saved.name


def _assert_nothing_obeyed(page, where: str) -> None:
    """No link or image to the hostile host in the page or in any of its frames, and no script ran."""
    for frame in page.frames:
        with contextlib.suppress(PlaywrightError):  # a frame replaced meanwhile
            assert frame.evaluate(EVIL_URLS) == [], f"{where}: {frame.url}"
            assert frame.evaluate("() => window.__pwned") is None, f"{where}: a script ran in {frame.url}"


def _literal(text: str) -> re.Pattern:
    """``text`` as shown: the app puts an invisible word joiner where GFM would start a link (explorer.ui.text)."""
    return re.compile(re.escape(text).replace(":", ":\u2060?").replace("@", "@\u2060?").replace("www", "www\u2060?"))


def _choose(page, widget: str, label: str, typed: str) -> None:
    """Pick an option of the sidebar's ``widget`` (its test id) whose label holds ``label``, by typing."""
    sidebar = open_sidebar(page)
    box = sidebar.get_by_test_id(widget).filter(has_text=_literal(label))
    box.locator("input").first.click()
    page.keyboard.type(typed)
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    wait_until_idle(page)


def test_markdown_and_html_in_names_values_and_links_stay_text(browser, escaping_url):
    url, name = escaping_url
    own = urlparse(url).netloc
    requests, blocked = [], []
    context = browser.new_context(viewport={"width": 1400, "height": 1000})

    def guard(route) -> None:
        target = urlparse(route.request.url)
        if target.scheme in ("http", "https", "ws", "wss") and target.netloc != own:
            blocked.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", guard)
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()

    # A link naming a map made of Markdown: one message, shown as text, and the URL forgets it.
    page.goto(f"{url}/?map={quote(MAP_LINK)}")
    wait_until_idle(page)
    page.get_by_text("The link names the map").wait_for(timeout=30_000)
    _assert_nothing_obeyed(page, "the link")
    expect(page.locator('[data-testid="stAlert"]')).to_contain_text(_literal(MAP_LINK))
    page.wait_for_url(lambda current: "map=" not in current, timeout=30_000)

    # The map whose column names and values are Markdown and HTML: filters, colour, legend, search, details.
    page.goto(f"{url}/?map={quote(name)}")
    wait_until_idle(page)
    map_frame(page).locator("#map[data-points-total]").first.wait_for(timeout=120_000)
    sidebar = open_sidebar(page)
    _assert_nothing_obeyed(page, "the open map")
    expect(sidebar).to_contain_text(_literal(LINK_COLUMN))
    expect(sidebar).to_contain_text(_literal(HTML_COLUMN))
    _choose(page, "stSelectbox", "Colour by", "verify your")
    expect(map_frame(page).locator(".legend")).to_contain_text("verify your session", timeout=30_000)
    _choose(page, "stMultiSelect", LINK_COLUMN, "BOLD")
    expect(sidebar).to_contain_text(_literal(VALUES[0]))
    _assert_nothing_obeyed(page, "filters, colour and legend")
    box = page.get_by_label("Search the map")
    box.fill(MAP_LINK)
    box.press("Enter")
    wait_until_idle(page)
    hits = page.locator('[class*="st-key-hitlist"] button')
    hits.first.wait_for(timeout=60_000)
    hits.first.click()
    wait_until_idle(page)
    page.get_by_role("tab", name="Details").wait_for(timeout=30_000)
    expect(page.locator('[data-testid="stMain"]')).to_contain_text("abstract:", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "escaping_details.png"), full_page=True)
    _assert_nothing_obeyed(page, "a search and a row's details")
    text = page.locator('[data-testid="stMain"]').inner_text().replace("\u2060", "")
    assert any(value in text for value in VALUES), "the values are shown as the text they are"
    page.close()
    context.close()
    assert blocked == [], f"requests outside the app: {blocked}"
    assert all(urlparse(r).netloc in ("", own) for r in requests), requests
