"""The one map core (explorer/mapjs/) and its three hosts: the app's component, the offline HTML export and
the notebook widget load the same files, every constant is declared once, and the notebook widget works
both ways in Chromium (a minimal page hosting its ESM with a fake anywidget model)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import SAMPLE_PAPERS

from explorer import ClusterConfig, HashingEmbedder, ProjectionConfig, Workspace, build_map, mapjs

EXPLORER = Path(mapjs.__file__).parent.parent


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    import pandas as pd

    workspace = Workspace(tmp_path_factory.mktemp("mapjs-home"))
    return build_map(pd.read_csv(SAMPLE_PAPERS), name="papers", model=HashingEmbedder(dimension=64),
                     text_columns=["title"], projection=ProjectionConfig(method="pca"),
                     clusters=ClusterConfig(space="2d", levels=3), workspace=workspace).saved


def test_the_three_hosts_load_every_core_file(saved, tmp_path):
    pytest.importorskip("streamlit")
    from explorer.html_export import to_html
    from explorer.notebook import esm
    from explorer.ui.widget import stage_frontend

    names = mapjs.core_files()
    assert {"constants.js", "layer.js", "view.js", "points.js", "pick.js", "select.js", "overlays.js", "labels.js",
            "legend.js", "hover.js", "map.js"} <= set(names)
    assert set(names) == {p.name for p in (EXPLORER / "mapjs").glob("*.js")}, "every file of the folder is loaded"
    export, notebook = to_html(saved).decode("utf-8"), esm()
    stage_frontend(tmp_path)
    app = (tmp_path / "index.html").read_text(encoding="utf-8")
    tags = re.findall(r'<script src="mapjs/([^"]+)"></script>', app)
    assert tags == names, "the app's page loads each core file, in load order"
    for name in names:
        text = mapjs.source(name)
        assert text in export, f"the export inlines {name}"
        assert text in notebook, f"the notebook's ESM holds {name}"
        assert (tmp_path / "mapjs" / name).read_text(encoding="utf-8") == text, f"the app serves {name} as it is"
    # Nothing but the core draws: no plotly.js in any host, and the app's page has no script of its own but the host.
    assert "Plotly" not in app and "Plotly" not in export and "Plotly" not in notebook


def test_every_constant_is_declared_once():
    constants = mapjs.source("constants.js")
    names = re.findall(r"^\s+([A-Z][A-Z_]+):", constants, flags=re.M)
    assert {"MAX_LABELS", "PICK_RADIUS", "GRID_PX", "FONT", "LEVEL_STYLE", "RETIRE_FACTOR", "TITLE_POINTS"} <= set(names)
    sources = [p for p in EXPLORER.rglob("*") if p.suffix in (".js", ".html") and p.name != "constants.js"]
    assert sources
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for name in names:
            assert not re.search(rf"\b(const|let|var)\s+{name}\b|^\s*{name}\s*[:=]", text, flags=re.M), (path, name)


def test_the_notebook_widget_syncs_both_ways_in_python(saved):
    pytest.importorskip("anywidget")
    import anywidget

    import explorer
    from explorer.draw import PointsLayer

    widget = explorer.widget(saved)
    assert isinstance(widget, anywidget.AnyWidget)
    import base64
    layer = PointsLayer.from_bytes(base64.b64decode(widget.layer))
    assert len(layer.x) == len(saved.points) and widget.labels["levels"] == ["coarse", "fine"]
    widget.query = "protein folding"
    assert len(widget.hits) == 10 and len(widget.scores) == 10
    assert set(widget.hits) <= set(saved.points["row_id"].tolist())
    widget.query = ""
    assert widget.hits == []


PAGE = """<!doctype html><html><head><meta charset="utf-8"></head><body><div id="el"></div>
<script type="module">
{esm}
const data = {data}, handlers = {{}};
window.saves = [];
window.model = {{
  get: key => data[key],
  set: (key, value) => {{ data[key] = value; (handlers["change:" + key] || []).forEach(f => f()); }},
  on: (event, f) => {{ (handlers[event] = handlers[event] || []).push(f); }},
  save_changes: () => {{ window.saves.push(JSON.parse(JSON.stringify(data))); }},
}};
render({{ model: window.model, el: document.getElementById("el") }});
window.ready = true;
</script></body></html>"""


@pytest.mark.slow
@pytest.mark.browser
def test_the_notebook_widget_in_chromium(saved, browser, tmp_path):
    pytest.importorskip("anywidget")
    import base64

    import explorer
    from explorer.draw import PointsLayer
    from explorer.notebook import esm

    widget = explorer.widget(saved, height=600)
    data = {k: getattr(widget, k) for k in ("layer", "labels", "legend_title", "height", "selection", "query", "hits",
                                            "scores")}
    path = tmp_path / "notebook.html"
    path.write_text(PAGE.format(esm=esm(), data=json.dumps(data)), encoding="utf-8")
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # No network: the ESM carries the whole core.
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    try:
        page.goto(path.as_uri())
        page.wait_for_function("window.ready === true")
        root = page.locator('[data-testid="notebook-map"]')
        assert root.get_attribute("data-points-total") == str(len(saved.points))
        assert json.loads(root.get_attribute("data-labels")), "cluster labels placed"
        # The hover card shows the layer's own hover label (title and fields) as text.
        first = page.evaluate("(() => { const m = document.querySelector('[data-testid=\"notebook-map\"]');"
                              " return [m.pointsLayer.ids[0], m.explorerMap.showHover(0)]; })()")
        title = saved.points.set_index("row_id").loc[first[0], "title"]
        assert first[1].startswith(title[:40]) and "field: " in first[1], first

        # An external dimming mask (the facets' hook): every other point shown, counted on the element.
        shown = page.evaluate("(() => { const m = document.querySelector('[data-testid=\"notebook-map\"]');"
                              " const mask = new Uint8Array(m.pointsLayer.n); for (let i = 0; i < mask.length; i += 2)"
                              " mask[i] = 1; m.explorerMap.setMask(mask); return m.dataset.shownCount; })()")
        assert int(shown) == (len(saved.points) + 1) // 2
        page.evaluate("document.querySelector('[data-testid=\"notebook-map\"]').explorerMap.setMask(null)")
        assert root.get_attribute("data-shown-count") == str(len(saved.points))

        # A box drawn in the page reaches the model (and its save_changes).
        page.click('[data-testid="notebook-map"] .toolbar button[data-mode="box"]')
        box = root.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.7, steps=8)
        page.mouse.up()
        selected = int(root.get_attribute("data-selected-count"))
        sent = page.evaluate("window.model.get('selection')")
        assert 0 < selected == len(sent) < len(saved.points)
        assert page.evaluate("window.saves.length") >= 1 and page.evaluate("window.saves.at(-1).selection") == sent
        assert root.get_attribute("data-selection-outlines") == "1"

        # The model's changes reach the page: Python's selection, then Python's search hits.
        ids = saved.points["row_id"].tolist()[:3]
        page.evaluate(f"window.model.set('selection', {ids})")
        assert root.get_attribute("data-selected-count") == "3"
        assert root.get_attribute("data-selection-outlines") == "0", "another selection drops the user's outline"
        widget.query = "protein folding"
        page.evaluate(f"window.model.set('scores', {widget.scores}); window.model.set('hits', {widget.hits})")
        assert root.get_attribute("data-hit-count") == "10"
        page.wait_for_timeout(100)
        assert json.loads(root.get_attribute("data-ranks-shown")), "the top hits' ranks are written"
        # A new layer (a recolour: another draw order) keeps the focus and neighbours on their rows.
        ids = saved.points["row_id"].tolist()
        layer = PointsLayer.from_bytes(base64.b64decode(widget.layer))
        reversed_layer = PointsLayer(x=layer.x[::-1], y=layer.y[::-1], ids=layer.ids[::-1], colour=layer.colour[::-1],
                                     palette=layer.palette, legend=layer.legend, hover=layer.hover[::-1])
        other = base64.b64encode(reversed_layer.to_bytes()).decode("ascii")
        moved = page.evaluate("""([other, focus, near]) => {
            const m = document.querySelector('[data-testid="notebook-map"]'), api = m.explorerMap;
            api.setOverlay({ focus: focus, neighbours: near });
            api.setLayer(ExplorerMap.layer.fromBase64(other), true);
            const o = api.state.overlay;
            return [m.pointsLayer.ids[o.focus], o.neighbours.map(i => m.pointsLayer.ids[i])]; }""",
                              [other, ids[5], ids[10:13]])
        assert moved == [ids[5], ids[10:13]], moved
        # A query typed in the page goes to the model.
        page.fill('input[type="search"]', "gene sequence")
        page.press('input[type="search"]', "Enter")
        assert page.evaluate("window.model.get('query')") == "gene sequence"
    finally:
        page.close()
    assert not errors, errors
