"""The facet strip (explorer/mapjs/facets.js) in Chromium on a page built from explorer.facets' encoding: a brush
and clicks keep the rows Python's facet_mask keeps, each facet counts over the others, the state survives its URL
text, and a brush move at a million rows is timed."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from explorer.facets import (
    CATEGORY,
    OTHER_VALUES,
    encode_facets,
    facet_columns,
    facet_mask,
    format_state,
    parse_state,
    state_from_json,
    state_to_json,
)

pytestmark = [pytest.mark.browser]

FACETS_JS = Path(__file__).resolve().parents[1] / "explorer" / "mapjs" / "facets.js"
ROWS = 3_000
ATTRS = """el => Object.fromEntries(Array.from(el.attributes).filter(a => a.name.startsWith('data-'))
    .map(a => [a.name.slice(5), a.value]))"""


def random_table(rows: int = ROWS, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    years = rng.integers(2005, 2025, rows).astype("float64")
    years[rng.random(rows) < 0.05] = np.nan
    venues = np.array([f"Venue|{i}" for i in range(26)], dtype=object)  # a "|" to be escaped in the URL text
    field = rng.choice(["bio", "cs", "med", "phys"], rows).astype(object)
    field[rng.random(rows) < 0.03] = None
    return pd.DataFrame({
        "row_id": np.arange(rows), "x": rng.normal(size=rows), "y": rng.normal(size=rows),
        "year": years, "citations": rng.exponential(25, rows), "venue": venues[rng.zipf(1.4, rows) % 26],
        "field": field,
        "published": pd.to_datetime("2012-01-01") + pd.to_timedelta(rng.integers(0, 4000, rows), unit="D"),
    })


def page_html(header: str, blob: bytes) -> str:
    return f"""<!doctype html><html><head><meta charset="utf-8"></head><body>
<div id="strip"></div>
<script>{FACETS_JS.read_text(encoding="utf-8")}</script>
<script>
const raw = atob({json.dumps(base64.b64encode(blob).decode())});
const bytes = new Uint8Array(raw.length);
for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
window.events = [];
window.strip = ExplorerMap.facets.create(document.getElementById("strip"),
    ExplorerMap.facets.decode({json.dumps(header)}, bytes), {{ onChange: (mask, state) => window.events.push(state) }});
</script></body></html>"""


@pytest.fixture(scope="module")
def opened(browser):
    points = random_table()
    facets = facet_columns(points)
    header, blob = encode_facets(points, facets)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.route("**/*", lambda route: route.abort())  # the strip fetches nothing
    page.set_content(page_html(header, blob))
    assert page.evaluate("typeof window.strip") == "object", errors
    yield page, points, facets, errors
    page.close()


def js_mask(page) -> np.ndarray:
    return np.array(page.evaluate("Array.from(window.strip.mask())"), dtype=bool)


def facet_attrs(page, name: str) -> dict:
    return page.locator(f'[data-facet="{name}"]').evaluate(ATTRS)


def expected_counts(points, facets, state, external, name) -> list[int]:
    """A facet's counts as the rule says: over the rows every OTHER_VALUES facet and the external mask keep."""
    others = {k: v for k, v in state.items() if k != name}
    keep = facet_mask(points, others) & external
    facet = next(f for f in facets if f.name == name)
    if facet.kind == CATEGORY:
        lookup = {value: code for code, value in enumerate(facet.categories)}
        codes = points[name].map(lookup).fillna(-1).to_numpy(dtype=int)
        counts = np.bincount(codes[keep & (codes >= 0)], minlength=len(facet.categories)).tolist()
        return counts + ([int((keep & (codes < 0) & points[name].notna().to_numpy()).sum())] if facet.other else [])
    raise AssertionError("histograms are checked through their bins")


def histogram_counts(page, points, state, external, name) -> list[int]:
    edges = json.loads(facet_attrs(page, name)["bins"])
    others = {k: v for k, v in state.items() if k != name}
    keep = facet_mask(points, others) & external
    values = points[name].to_numpy(dtype="float64")
    if pd.api.types.is_datetime64_any_dtype(points[name]):
        values = ((points[name] - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).to_numpy()
    width, count = edges[1] - edges[0], len(edges) - 1
    kept = values[keep & np.isfinite(values)]
    bins = np.minimum(count - 1, np.floor((kept - edges[0]) / width)).astype(int)
    return np.bincount(bins, minlength=count).tolist()


def check_against_python(page, points, facets, external=None):
    state = state_from_json(page.evaluate("window.strip.state()"))
    external = np.ones(len(points), bool) if external is None else external
    expected = facet_mask(points, state) & external
    assert (js_mask(page) == expected).all(), state
    assert int(page.locator("#strip").get_attribute("data-shown-count")) == expected.sum()
    for facet in facets:
        counts = [int(c) for c in json.loads(facet_attrs(page, facet.name)["counts"])]
        if facet.kind == CATEGORY:
            assert counts == expected_counts(points, facets, state, external, facet.name), facet.name
        else:
            assert counts == histogram_counts(page, points, state, external, facet.name), facet.name
    return state


def test_brush_click_clear_and_the_url_round_trip(opened):
    page, points, facets, errors = opened
    names = [f.name for f in facets]
    assert names == ["year", "citations", "venue", "field", "published"], names
    for name in names:
        assert page.locator(f'[data-facet="{name}"]').count() == 1
    assert int(page.locator("#strip").get_attribute("data-shown-count")) == ROWS

    # Brush 2010..2014 on the year histogram: drag from the bin of 2010 to the bin of 2014.
    edges = json.loads(facet_attrs(page, "year")["bins"])
    box = page.locator('[data-facet="year"] canvas').bounding_box()
    bin_x = [box["x"] + (k + 0.5) * box["width"] / (len(edges) - 1) for k in range(len(edges) - 1)]
    first, last = edges.index(2010), edges.index(2014)
    page.mouse.move(bin_x[first], box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(bin_x[last], box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    assert facet_attrs(page, "year")["range"] == "2010..2014"
    state = check_against_python(page, points, facets)
    assert state == {"year": (2010.0, 2014.0)}

    # Drag the range itself two bins on.
    page.mouse.move(bin_x[first + 1], box["y"] + 10)
    page.mouse.down()
    page.mouse.move(bin_x[first + 3], box["y"] + 10, steps=4)
    page.mouse.up()
    assert facet_attrs(page, "year")["range"] == "2012..2016"

    # Click two venues and Other, then a field.
    venue = next(f for f in facets if f.name == "venue")
    for name in (venue.categories[0], venue.categories[3], OTHER_VALUES):
        page.locator(f'[data-facet="venue"] [data-category="{name}"]').click()
    page.locator('[data-facet="field"] [data-category="cs"]').click()
    assert json.loads(facet_attrs(page, "venue")["selected"]) == sorted(venue.categories[i] for i in (0, 3)) + [OTHER_VALUES]
    state = check_against_python(page, points, facets)
    assert 0 < js_mask(page).sum() < ROWS
    assert page.evaluate("window.events.length") >= 5, "every brush and click is heard"

    # State -> URL text -> state: the same rows and the same marks after setState.
    text = format_state(state, dates=["published"])
    assert text.startswith("year:2012..2016;venue=Venue%7C")
    before = js_mask(page)
    page.evaluate("s => window.strip.setState({})", None)
    assert js_mask(page).all()
    page.evaluate("s => window.strip.setState(s)", state_to_json(parse_state(text)))
    assert (js_mask(page) == before).all()
    assert facet_attrs(page, "year")["range"] == "2012..2016"
    assert state_from_json(page.evaluate("window.strip.state()")) == state

    # The search/keyword/SQL mask from outside: facets count within it.
    external = np.random.default_rng(3).random(ROWS) < 0.6
    page.evaluate("m => window.strip.update(m)", external.astype(int).tolist())
    check_against_python(page, points, facets, external)
    page.evaluate("window.strip.update(null)")

    # Clear: a double-click on the histogram, the × on the others.
    page.locator('[data-facet="year"] canvas').dblclick()
    assert "range" not in facet_attrs(page, "year")
    for name in ("venue", "field"):
        page.locator(f'[data-facet="{name}"] .em-facet-clear').click()
    assert page.evaluate("window.strip.state()") == {}
    assert int(page.locator("#strip").get_attribute("data-shown-count")) == ROWS
    assert not errors, errors


def test_random_states_keep_the_rows_python_keeps(opened):
    page, points, facets, errors = opened
    rng = np.random.default_rng(11)
    for _ in range(25):
        state = {}
        for facet in facets:
            if rng.random() < 0.5:
                continue
            if facet.kind == CATEGORY:
                # Other on a column without one, and a value with no bar, keep no row in either language.
                names = [*facet.categories, OTHER_VALUES, "no such value"]
                state[facet.name] = frozenset(rng.choice(names, size=rng.integers(1, 4), replace=False).tolist())
            else:
                edges = json.loads(facet_attrs(page, facet.name)["bins"])
                low, high = sorted(rng.uniform(edges[0], edges[-1], 2))
                # Whole numbers on integer columns, as a brush gives; any float elsewhere.
                state[facet.name] = (float(math.floor(low)), float(math.ceil(high))) if facet.name == "year" \
                    else (float(low), float(high))
        page.evaluate("s => window.strip.setState(s)", state_to_json(parse_state(format_state(state))))
        assert check_against_python(page, points, facets) == state
    page.evaluate("window.strip.setState({})")
    assert not errors, errors


MILLION = """async () => {
  const n = 1000000, cols = [];
  let seed = 1; const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (let f = 0; f < 8; f++) {
    if (f < 4) { const v = new Float64Array(n);
      for (let i = 0; i < n; i++) v[i] = f === 0 ? 1990 + Math.floor(rand() * 35) : rand() * 1000;
      cols.push({name: 'n' + f, kind: 'number', values: v}); }
    else { const v = new Int32Array(n); for (let i = 0; i < n; i++) v[i] = Math.floor(rand() * rand() * 21);
      cols.push({name: 'c' + f, kind: 'category', values: v, categories: Array.from({length: 20}, (_, k) => 'v' + k),
                 other: 9}); }
  }
  const host = document.createElement('div'); document.body.appendChild(host);
  const strip = ExplorerMap.facets.create(host, cols, {});
  strip.setState({c4: {selected: ['v1', 'v2', 'v3']}});
  const canvas = host.querySelector('[data-facet="n0"] canvas'), box = canvas.getBoundingClientRect();
  const at = (k) => ({clientX: box.left + (k + 0.5) * box.width / 35, clientY: box.top + 5, pointerId: 1,
                      bubbles: true});
  canvas.dispatchEvent(new PointerEvent('pointerdown', at(5)));
  const times = [];
  for (let k = 6; k < 30; k++) {
    const t0 = performance.now();
    canvas.dispatchEvent(new PointerEvent('pointermove', at(k)));
    times.push(performance.now() - t0);
  }
  canvas.dispatchEvent(new PointerEvent('pointerup', at(29)));
  times.sort((a, b) => a - b);
  return {median: times[times.length >> 1], max: times[times.length - 1], shown: strip.shownCount(),
          range: host.querySelector('[data-facet="n0"]').dataset.range};
}"""


@pytest.mark.slow
def test_a_brush_move_at_a_million_rows_is_fast(opened):
    from streamlit_server import ARTIFACTS

    page = opened[0]
    timing = page.evaluate(MILLION)
    (ARTIFACTS / "facets_brush_1m.json").write_text(json.dumps(timing))
    print("brush move at 1M rows, 8 facets:", timing)
    assert timing["range"] == "1995..2019" and 0 < timing["shown"] < 1_000_000
    # The target is 50 ms; the bound leaves room for a machine shared with other jobs.
    assert timing["median"] <= 150, timing


@pytest.mark.slow
def test_the_apps_facets_dim_the_map_keep_the_url_and_survive_a_reload(browser, tmp_path):
    from streamlit_server import map_frame, streamlit_server, wait_until_idle

    from explorer import ProjectionConfig, Workspace, build_map

    table = random_table(rows=400).drop(columns=["row_id", "x", "y"])
    table["title"] = [f"paper {i} on {f}" for i, f in enumerate(table["field"].fillna("none"))]
    home = tmp_path / "home"
    saved = build_map(table, source_name="papers.csv", name="papers", model="hashing", text_columns=["title"],
                      projection=ProjectionConfig(method="pca"), workspace=Workspace(home)).saved
    with streamlit_server(home, env={"EXPLORER_DEFAULT_MODEL": "hashing"}) as url:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{url}/?map=papers")
        frame = map_frame(page)
        root = frame.locator("[data-testid=explorer-map]")
        frame.locator("[data-facet=field]").wait_for(state="attached", timeout=120_000)
        assert root.get_attribute("data-shown-count") == str(len(table))
        frame.locator("[data-facets-toggle]").click()
        bars = frame.locator("[data-facet=field] .em-facet-bar")
        bars.filter(has_text="med").click()
        # The map dims at once; Python hears the state once the click rests, and writes it in the URL.
        expected = int(facet_mask(saved.points, {"field": {"med"}}).sum())
        assert root.get_attribute("data-shown-count") == str(expected)
        page.wait_for_url("**facets=field%3Dmed**", timeout=60_000)
        wait_until_idle(page)
        assert page.get_by_text(f"{expected} of {len(table)} rows match the filters").is_visible()
        page.reload()
        frame = map_frame(page)
        root = frame.locator("[data-testid=explorer-map]")
        frame.locator("[data-facet=field][data-selected]").wait_for(state="attached", timeout=120_000)
        page.wait_for_function("() => true")
        assert json.loads(frame.locator("[data-facet=field]").get_attribute("data-selected")) == ["med"]
        assert root.get_attribute("data-shown-count") == str(expected)
        page.close()


@pytest.mark.slow
def test_the_apps_facets_count_within_the_other_filters(browser, tmp_path):
    from urllib.parse import quote

    from streamlit_server import map_frame, streamlit_server

    from explorer import ProjectionConfig, Workspace, build_map

    table = random_table(rows=300).drop(columns=["row_id", "x", "y"])
    table["title"] = [f"paper {i}" for i in range(len(table))]
    home = tmp_path / "home"
    saved = build_map(table, source_name="papers.csv", name="papers", model="hashing", text_columns=["title"],
                      projection=ProjectionConfig(method="pca"), workspace=Workspace(home)).saved
    with streamlit_server(home, env={"EXPLORER_DEFAULT_MODEL": "hashing"}) as url:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{url}/?map=papers&sql={quote('year >= 2015')}")
        frame = map_frame(page)
        kept = saved.points["year"] >= 2015
        field = frame.locator("[data-facet=field]")
        field.wait_for(state="attached", timeout=120_000)
        expected = {name: int(((saved.points["field"] == name) & kept).sum()) for name in ("bio", "cs", "med", "phys")}
        page.wait_for_function(
            """([frame, want]) => { const el = document.querySelector(frame).contentDocument
                   .querySelector('[data-facet=field]');
                 return el && el.dataset.counts && JSON.stringify(JSON.parse(el.dataset.counts).slice(0, 4).sort())
                   === JSON.stringify(want); }""",
            arg=['iframe[title*="explorer_map"]', sorted(expected.values())], timeout=60_000)
        page.close()
