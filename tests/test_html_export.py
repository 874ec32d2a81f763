"""The offline HTML export (explorer.html_export): what the file holds, read back in Python, and what
Chromium shows from it over file:// (no request leaves the page; points, search, labels by zoom, hover).
Screenshots go to test-artifacts/."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_PAPERS
from synthetic_map import synthetic_map

from explorer import ClusterConfig, HashingEmbedder, ProjectionConfig, Workspace, build_map
from explorer.cli import main
from explorer.draw import PointsLayer, label_payload, shorten
from explorer.export import to_html_bytes
from explorer.html_export import TEXT_CHARS, page, to_html, unpack_texts
from explorer.map_clusters import label_layers, point_labels

CANARY = '<img src=x onerror="window.__pwned=1">'
TOPICS = {
    "machine learning": "gradient descent optimiser training loss network",
    "molecular biology": "protein enzyme gene sequence folding cell",
    "economics": "market price inflation trade labour policy",
}


def papers_with_abstracts() -> pd.DataFrame:
    """The sample papers (496 rows, 8 fields) with an abstract each; a few are longer than TEXT_CHARS."""
    frame = pd.read_csv(SAMPLE_PAPERS)
    rng = np.random.default_rng(3)
    words = " ".join(TOPICS.values()).split()
    abstracts = []
    for i, field in enumerate(frame["field"]):
        vocab = TOPICS.get(field, "study model data method result").split()
        length = 90 if i % 50 == 0 else 14  # every 50th runs past the 300 characters kept
        abstracts.append(" ".join(rng.choice(vocab + words[:4], size=length)))
    frame["abstract"] = abstracts
    frame.loc[7, "title"] = CANARY
    return frame


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    """The papers built once with the hashing embedder, PCA and clusters (two levels) on the 2D map."""
    workspace = Workspace(tmp_path_factory.mktemp("html-home"))
    return build_map(papers_with_abstracts(), name="papers (v1)", model=HashingEmbedder(dimension=64),
                     text_columns=["title", "abstract"], projection=ProjectionConfig(method="pca"),
                     clusters=ClusterConfig(space="2d", levels=3), workspace=workspace).saved


def blocks(html: str) -> tuple[dict, str, str]:
    """The page's meta JSON and its two base64 blocks (points, texts)."""
    found = {}
    for name in ("meta", "points-data", "texts-data"):
        match = re.search(rf'<script type="[^"]+" id="{name}">(.*?)</script>', html, flags=re.S)
        assert match, name
        found[name] = match.group(1)
    return json.loads(found["meta"]), found["points-data"], found["texts-data"]


def keyword_matches(frame: pd.DataFrame, query: str) -> int:
    """Rows whose title and abstract, as the page keeps them (cut to 160 and TEXT_CHARS characters), hold
    every word of ``query`` (case-insensitive substrings)."""
    words = query.lower().split()
    haystack = [f"{shorten(t, 160)}\n{shorten(a, TEXT_CHARS)}".lower() for t, a in zip(frame["title"], frame["abstract"],
                                                                                  strict=True)]
    return int(sum(all(w in text for w in words) for text in haystack))


# ---------------------------------------------------------------- the file


def test_the_title_is_escaped_and_the_page_allows_no_network(clustered):
    html = to_html(clustered).decode("utf-8")

    assert "<title>papers (v1)</title>" in html
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert csp and "default-src 'none'" in csp.group(1) and "img-src data: blob:" in csp.group(1)
    assert "connect-src" not in csp.group(1), "default-src 'none' alone forbids every fetch"
    # Nothing fetched from anywhere: no external script, style, image or link, and no URL at all.
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, flags=re.I)
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<script[^>]+src=", html) and "<link" not in html

    hostile = page('<b>x</b> & "co"</title><script>', meta={"a": "</script><!--"}, points="", texts="").decode()
    assert '<title>&lt;b&gt;x&lt;/b&gt; &amp; &quot;co&quot;&lt;/title&gt;&lt;script&gt;</title>' in hostile
    assert "</script><!--" not in hostile and '"\\u003c/script\\u003e\\u003c!--"' in hostile


def layer_of(block: str) -> PointsLayer:
    """The page's points block read as the browser reads it: draw.PointsLayer's bytes, base64."""
    return PointsLayer.from_bytes(base64.b64decode(block))


def test_the_points_are_the_apps_layer_with_the_maps_coordinates_and_categories(clustered):
    meta, points, _ = blocks(to_html(clustered).decode("utf-8"))
    layer = layer_of(points)
    n = len(clustered.points)

    assert meta["drawn"] == layer.x.size == n and layer.hover is None, "the page's texts carry the hover"
    assert len(points) * 3 // 4 <= 13 * n + 4_000, "13 bytes a point and a small header, base64"
    assert meta["colour"] == "field"
    name_of = {c: entry["name"] for entry in layer.legend for c in entry["colours"]}
    got = sorted(zip(layer.ids.tolist(), layer.x.tolist(), layer.y.tolist(), [name_of[c] for c in layer.colour],
                     strict=True))
    saved = clustered.points
    want = sorted(zip(saved["row_id"].tolist(), saved["x"].astype("<f4").tolist(), saved["y"].astype("<f4").tolist(),
                      saved["field"], strict=True))
    assert got == want
    assert [len(ids) for ids in layer.groups().values()] == saved["field"].value_counts().tolist()


def test_every_levels_labels_are_in_the_file_as_the_app_gets_them(clustered):
    meta, _, _ = blocks(to_html(clustered).decode("utf-8"))
    layers = label_layers(clustered)
    labels = meta["labels"]

    assert labels == label_payload(layers)
    assert len(set(layers["level"])) == 2, "496 rows get two levels (a finest one from 5,000 rows)"
    assert labels["levels"] == ["coarse", "fine"] and labels["zooms"][0] == 1.0
    assert sorted(labels["zooms"]) == labels["zooms"]
    priorities = [row[4] for row in labels["labels"]]
    assert priorities == sorted(priorities, reverse=True)


def test_the_texts_are_shortened_and_the_hover_names_clusters_not_ids(clustered):
    meta, _, texts_block = blocks(to_html(clustered).decode("utf-8"))
    texts = unpack_texts(texts_block)
    saved = clustered.points

    assert sorted(texts["title"]) == sorted(shorten(t, meta["title_chars"]) for t in saved["title"])
    # In the layer's point order: the browser reads texts by the layer's positions.
    ids = layer_of(blocks(to_html(clustered).decode("utf-8"))[1]).ids
    by_id = dict(zip(saved["row_id"], saved["title"], strict=True))
    assert texts["title"] == [shorten(by_id[i], meta["title_chars"]) for i in ids]
    assert meta["text_columns"] == ["abstract"] and meta["text_chars"] == TEXT_CHARS
    long = [t for t in texts["text"] if len(t) >= TEXT_CHARS - 1]
    assert long and all(len(t) <= TEXT_CHARS and t.endswith("…") for t in long)
    # Default hover fields: the colour, the coarse cluster's name, the year.
    assert meta["fields"] == ["field", "cluster label", "year"]
    cluster = texts["fields"]["cluster label"]
    assert set(cluster["values"]) <= set(point_labels(clustered, "coarse")) | {"Unclustered"}
    assert not any(value.isdigit() for value in cluster["values"])
    # The canary is in the texts, as data: nowhere in the page's markup.
    assert CANARY in texts["title"] and CANARY not in to_html(clustered).decode("utf-8")


def test_chosen_fields_and_colour(clustered):
    meta, _, texts_block = blocks(to_html(clustered, color_by="year", fields=["authors", "nope"]).decode())

    assert meta["colour"] == "year" and meta["fields"] == ["authors"]
    assert set(unpack_texts(texts_block)["fields"]) == {"authors"}
    # Year has too many values for a legend of them: one group on the app's colour scale, with its colour bar.
    layer = layer_of(blocks(to_html(clustered, color_by="year").decode())[1])
    bar = layer.legend[0]["colorbar"]
    assert len(layer.legend) == 1 and bar["title"] == "year"
    assert (bar["cmin"], bar["cmax"]) == (clustered.points["year"].min(), clustered.points["year"].max())


def test_a_big_map_is_small_and_keeps_its_titles(explorer_home):
    saved = synthetic_map(explorer_home, "big", 50_000)
    html = to_html(saved)
    meta, points, texts = blocks(html.decode())

    assert meta["drawn"] == 50_000
    # The layer takes 13 bytes a point (17.3 in base64); the titles deflate to a few more.
    assert len(html) < 50_000 * 34, len(html)
    assert len(unpack_texts(texts)["title"]) == 50_000


def test_texts_can_be_left_out_and_the_page_says_which(clustered):
    meta, _, texts_block = blocks(to_html(clustered, text_chars=0).decode())

    assert meta["text_columns"] == [] and meta["omitted_text"] == ["abstract"]
    assert unpack_texts(texts_block)["text"] is None
    meta, _, texts_block = blocks(to_html(clustered, text_chars=40).decode())
    assert meta["text_chars"] == 40 and max(len(t) for t in unpack_texts(texts_block)["text"]) == 40


def test_library_export_is_the_new_page(clustered):
    assert to_html_bytes(clustered) == to_html(clustered)


def test_cli_export_html_writes_the_page(clustered, tmp_path, capsys):
    out = tmp_path / "map.html"

    assert main(["--home", str(clustered.path.parent.parent), "export", clustered.name, "--format", "html",
                 "-o", str(out)]) == 0

    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and "<title>papers (v1)</title>" in html
    assert blocks(html)[0]["drawn"] == len(clustered.points)
    assert f"wrote {out}" in capsys.readouterr().out


# ---------------------------------------------------------------- in Chromium

ALLOWED = ("file:", "data:", "blob:")


def _wait(page, expression: str, timeout_s: float = 60) -> None:
    """Poll ``expression`` until truthy (the page's CSP forbids eval, which wait_for_function uses)."""
    for _ in range(int(timeout_s * 10)):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out waiting for {expression}")


def _painted(page) -> int:
    """Canvas pixels that are not white: the points really drawn."""
    return page.evaluate("""() => { const c = document.querySelector('#map canvas.points');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let k = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250) k++;
        return k; }""")


@pytest.mark.slow
@pytest.mark.browser
def test_the_page_offline_in_chromium(clustered, tmp_path, browser):
    from streamlit_server import ARTIFACTS

    path = tmp_path / "map.html"
    path.write_bytes(to_html(clustered))
    page = browser.new_page(viewport={"width": 1300, "height": 850})
    requests, errors = [], []
    # The network is blocked: anything but the file itself (and data:/blob: URIs) is aborted.
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(ALLOWED) else route.abort())
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(path.as_uri())
        _wait(page, "window.explorerExport && window.explorerExport.textsReady")
        state = page.evaluate("window.explorerExport")
        assert state["drawn"] == len(clustered.points) and state["error"] is None
        assert _painted(page) > 1000
        assert page.title() == "papers (v1)"
        page.screenshot(path=str(ARTIFACTS / "html_export_full.png"))

        # Keyword search: the count equals Python's over the same title and abstract.
        frame = clustered.points
        for query in ("protein", "Market PRICE", "gradient enzyme"):
            page.fill("#query", query)
            _wait(page, f"window.explorerExport.query === {json.dumps(query)} && window.explorerExport.matches !== null")
            expected = keyword_matches(frame, query)
            assert page.evaluate("window.explorerExport.matches") == expected, query
            assert page.locator("#count").inner_text().startswith(f"{expected:,} of {len(frame):,}")
        assert 0 < keyword_matches(frame, "protein") < len(frame)
        assert "not a search by meaning" in page.locator("#about").inner_text()
        assert "Keyword search" in page.locator("#search label").inner_text()
        # The matches are drawn over the veiled map: gold pixels on the overlay canvas.
        assert page.locator("#map").get_attribute("data-hit-count") == str(keyword_matches(frame, "gradient enzyme"))
        assert _gold(page) > 20
        page.screenshot(path=str(ARTIFACTS / "html_export_search.png"))
        page.fill("#query", "")
        _wait(page, "window.explorerExport.matches === null")

        # Wheel zoom over the biggest fine cluster's centre: its level's labels take over from the coarse ones.
        full = page.evaluate("window.explorerExport")
        box = page.locator("#map").bounding_box()
        fine = next(row for row in blocks(path.read_text())[0]["labels"]["labels"] if row[3] == 1)
        at = page.evaluate(f"window.explorerExport.project({fine[0]}, {fine[1]})")
        page.mouse.move(box["x"] + at[0], box["y"] + at[1])
        for _ in range(7):
            page.mouse.wheel(0, -250)
            page.wait_for_timeout(60)
        _wait(page, "window.explorerExport.zoom > 8")
        page.wait_for_timeout(200)
        zoomed = page.evaluate("window.explorerExport")
        assert zoomed["labels"] != full["labels"], (full["labels"], zoomed["labels"])
        assert set(full["levels"]) == {"coarse"} and "fine" in zoomed["levels"], zoomed["levels"]
        assert fine[2] in zoomed["labels"]
        assert json.loads(page.locator("#map").get_attribute("data-labels")) == zoomed["labels"]
        assert zoomed["drawn"] < state["drawn"]
        page.screenshot(path=str(ARTIFACTS / "html_export_zoomed.png"))
        # Further in, with at most 25 points in view, their titles show beside them.
        for _ in range(20):
            if page.evaluate("window.explorerExport.drawn") <= 25:
                break
            page.mouse.wheel(0, -250)
            page.wait_for_timeout(60)
        page.wait_for_timeout(200)
        close = page.evaluate("window.explorerExport")
        assert 0 < close["drawn"] <= 25 and 0 < len(close["titles"]) <= close["drawn"], close
        assert set(close["titles"]) <= {shorten(t, 48) for t in frame["title"]}
        page.screenshot(path=str(ARTIFACTS / "html_export_titles.png"))

        # Hover: title and fields as text; the canary title stays text.
        page.dblclick("#map", position={"x": 600, "y": 400})  # not on the tool bar or the legend
        _wait(page, "window.explorerExport.zoom < 1.01")
        hovers = page.evaluate(f"Array.from({{length: {len(frame)}}}, (_, i) => window.explorerExport.hover(i))")
        assert any(text.startswith(CANARY) for text in hovers) and all("cluster label: " in text for text in hovers)
        assert page.evaluate("window.__pwned") is None
        assert page.evaluate("document.querySelectorAll('img[src]').length") == 0, "no image but a thumbnail's"

        # A real pointer over a drawn point shows its hover (the nearest point: maybe one drawn on top of it).
        page.mouse.move(box["x"] + 5, box["y"] + 5)
        _wait(page, "window.explorerExport.hoverRow === -1")
        at = page.evaluate("window.explorerExport.at(0)")
        page.mouse.move(box["x"] + at[0], box["y"] + at[1])
        _wait(page, "window.explorerExport.hoverRow >= 0")
        assert page.locator("#map .hover").is_visible() and page.locator("#map .hover .t").inner_text()

        _box_and_lasso(page, box, len(frame))
    finally:
        page.close()
    assert not errors, errors
    outside = [url for url in requests if not url.startswith(ALLOWED)]
    assert not outside, outside


def _gold(page) -> int:
    """Overlay pixels in the search hits' gold (R high, G high, B low)."""
    return page.evaluate("""() => { const c = document.querySelector('#map canvas.overlay');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let k = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 200 && d[i] > 230 && d[i + 1] > 180 && d[i + 2] < 80) k++;
        return k; }""")


def _inside(page, shape: dict) -> int:
    """Points of the layer inside a box or lasso in map units, counted in Python (even-odd rule)."""
    xs, ys = page.evaluate("(() => { const l = document.getElementById('map').pointsLayer; "
                           "return [Array.from(l.x), Array.from(l.y)]; })()")
    if "box" in shape:
        (a, b), (c, d) = sorted(shape["box"]["x"]), sorted(shape["box"]["y"])
        return sum(a <= x <= b and c <= y <= d for x, y in zip(xs, ys, strict=True))
    px, py = shape["lasso"]["x"], shape["lasso"]["y"]

    def inside(x, y):
        hit, j = False, len(px) - 1
        for k in range(len(px)):
            if (py[k] > y) != (py[j] > y) and x < (px[j] - px[k]) * (y - py[k]) / (py[j] - py[k]) + px[k]:
                hit = not hit
            j = k
        return hit
    return sum(inside(x, y) for x, y in zip(xs, ys, strict=True))


def _box_and_lasso(page, box: dict, total: int) -> None:
    """A box dragged over the map's middle, then a lasso (a free-hand triangle): the page counts the points
    inside each as Python does, fades the others, and Reset/double-click leave the selection alone."""
    page.click('#map .toolbar button[data-mode="box"]')
    x0, y0 = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 80, y0 + 60, steps=4)
    page.mouse.move(x0 + box["width"] * 0.4, y0 + box["height"] * 0.4, steps=4)
    page.mouse.up()
    _wait(page, "document.getElementById('map').dataset.selectedCount !== '0'")
    shape = page.evaluate("document.getElementById('map').lastShape")
    selected = int(page.locator("#map").get_attribute("data-selected-count"))
    assert 0 < selected < total and selected == _inside(page, shape), (selected, shape)
    assert page.locator("#map").get_attribute("data-selection-outlines") == "1"
    assert page.evaluate("window.explorerExport.selected") == selected

    page.click('#map .toolbar button[data-mode="lasso"]')
    cx, cy = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5
    page.mouse.move(cx, cy - 150)
    page.mouse.down()
    for x, y in ((cx + 160, cy + 120), (cx - 160, cy + 120), (cx - 5, cy - 145)):
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    _wait(page, "document.getElementById('map').lastShape.lasso !== undefined")
    shape = page.evaluate("document.getElementById('map').lastShape")
    lassoed = int(page.locator("#map").get_attribute("data-selected-count"))
    assert len(shape["lasso"]["x"]) > 10 and 0 < lassoed < total and lassoed == _inside(page, shape), lassoed
    assert lassoed != selected


@pytest.mark.slow
@pytest.mark.browser
def test_the_pages_facets_and_lasso_work_offline(clustered, tmp_path, browser):
    from explorer.facets import facet_mask

    path = tmp_path / "map.html"
    path.write_bytes(to_html(clustered))
    page = browser.new_page(viewport={"width": 1300, "height": 850})
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(ALLOWED) else route.abort())
    try:
        page.goto(path.as_uri())
        _wait(page, "window.explorerExport && window.explorerExport.ready")
        box = page.locator("#map")
        assert {el.get_attribute("data-facet") for el in page.locator("[data-facet]").all()} >= {"field", "year"}
        page.click("[data-facets-toggle]")
        page.locator("[data-facet=field] .em-facet-bar").filter(has_text="computer vision").click()
        expected = int(facet_mask(clustered.points, {"field": {"computer vision"}}).sum())
        assert 0 < expected < len(clustered.points)
        assert box.get_attribute("data-shown-count") == str(expected)
        assert page.locator("[data-facets-toggle]").inner_text().endswith("1 active")
        # The lasso draws a free-hand shape and selects what is inside it.
        page.click("button:has-text('Lasso')")
        frame = box.bounding_box()
        cx, cy = frame["x"] + frame["width"] / 2, frame["y"] + frame["height"] / 2
        page.mouse.move(cx - 200, cy - 150)
        page.mouse.down()
        for dx, dy in ((200, -150), (200, 150), (0, 150), (-200, 150), (-200, -150)):
            page.mouse.move(cx + dx, cy + dy, steps=4)
        page.mouse.up()
        assert int(box.get_attribute("data-selected-count")) > 0
    finally:
        page.close()
