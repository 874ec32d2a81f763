"""Unit tests of the map figure, its overlays and the label placement."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from explorer.draw import (
    QUERY_LABEL_CHARS,
    RANK_TEXT_HITS,
    MapStyle,
    PointsLayer,
    base_key,
    build_figure,
    category_values,
    escape_text,
    frame_figure,
    hover_thumbnails,
    is_categorical,
    label_payload,
    level_zooms,
    overlay_json,
    overlay_traces,
    place_labels,
    points_layer,
    titles_payload,
)
from explorer.filters import category_mask, filterable_columns, keyword_mask


@pytest.fixture
def points() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 40
    return pd.DataFrame({
        "row_id": np.arange(n) + 100,  # ids deliberately not positions
        "title": [f"paper {i}" for i in range(n)],
        "field": ["a", "b", "c", "d"] * 10,
        "year": np.arange(n) + 1990,
        "x": rng.normal(size=n).astype(np.float32),
        "y": rng.normal(size=n).astype(np.float32),
        "embedded": [True] * (n - 1) + [False],
    })


def test_categories_get_one_trace_each_with_row_ids_as_customdata(points):
    fig = build_figure(points, style=MapStyle(color_by="field", title_column="title"))
    traces = [t for t in fig.data if t.type == "scattergl"]
    assert [t.name for t in traces] == ["a", "b", "c", "d"]
    ids = np.concatenate([np.asarray(t.customdata).ravel() for t in traces])
    assert sorted(ids) == list(range(100, 139)), "the unembedded row is not drawn; ids are row_ids"
    assert fig.layout.yaxis.scaleanchor == "x"


def test_numeric_column_gets_a_colour_scale(points):
    assert not is_categorical(points["year"])
    fig = build_figure(points, style=MapStyle(color_by="year"))
    assert fig.data[0].marker.colorscale is not None


def test_many_categories_fold_into_other():
    values = category_values(pd.Series([f"c{i}" for i in range(100)] + ["c1"] * 5), max_categories=10)
    assert values.nunique() == 10 and "(other)" in set(values)


def test_hits_query_and_dimming_overlays(points):
    dimmed = np.zeros(len(points), bool)
    dimmed[:10] = True
    style = MapStyle(dimmed=dimmed, hits=np.array([5, 6, 7]), hit_scores=np.array([0.9, 0.8, 0.7]),
                     query_xy=np.array([0.0, 0.0]), query_label="q", selected=[101, 102], focus=103)
    fig = build_figure(points, style=style)
    names = [t.name for t in fig.data]
    assert names[0] == "filtered out" and len(fig.data[0].x) == 10
    hits = fig.data[names.index("search hits")]
    assert list(hits.text) == ["1", "2", "3"]
    assert list(np.asarray(hits.customdata).ravel()) == [105, 106, 107]
    assert "query" in names and "links" in names and "selection" in names and "focused" in names


def test_user_text_is_escaped_for_plotly():
    assert escape_text('<img src=x onerror="a">') == '&lt;img src=x onerror="a"&gt;'


def test_labels_never_overlap_and_biggest_win():
    labels = pd.DataFrame({"label": ["big cluster", "overlapping", "far away"], "size": [100, 50, 10],
                           "x": [0.0, 0.01, 5.0], "y": [0.0, 0.0, 5.0]})
    kept = place_labels(labels, x_range=(0, 10), y_range=(0, 10), width_px=800, height_px=800)
    assert list(kept["label"]) == ["big cluster", "far away"]


def test_view_helpers(points):
    texts = ["Protein folding", "market prices", "protein markets"]
    assert keyword_mask(texts, "PROTEIN").tolist() == [True, False, True]
    assert keyword_mask(texts, r"^market", regex=True).tolist() == [False, True, False]
    assert category_mask(points, {"field": ["a"]}).sum() == 10
    assert "field" in filterable_columns(points) and "title" not in filterable_columns(points)


def _layers(n_coarse: int, n_fine: int) -> pd.DataFrame:
    """Labels in map_clusters.label_layers' schema: coarse outrank fine, bigger clusters outrank smaller."""
    rng = np.random.default_rng(1)
    frames = []
    for level, n, base in (("coarse", n_coarse, 1.0), ("fine", n_fine, 0.0)):
        size = rng.integers(5, 100, size=n)
        frames.append(pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n),
                                    "text": [f"{level} {i}" for i in range(n)], "level": level,
                                    "priority": base + size / size.sum(), "cluster_id": np.arange(n), "size": size}))
    return pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=0)


def test_label_payload_sends_every_level_by_priority_escaped():
    layers = _layers(4, 9)
    layers.loc[layers.index[0], "text"] = "<b>bold</b> & co"
    payload = json.loads(json.dumps(label_payload(layers)))
    assert payload["levels"] == ["coarse", "fine"]
    rows = payload["labels"]
    assert len(rows) == 13 and all(len(r) == 5 for r in rows)
    priorities = [r[4] for r in rows]
    assert priorities == sorted(priorities, reverse=True), "the browser places labels in this order"
    assert [r[3] for r in rows] == [0] * 4 + [1] * 9, "coarse labels first, as level index 0"
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in [r[2] for r in rows]
    assert not any("<b>" in r[2] for r in rows)
    # Fine labels wait for a zoom at which about as many are in view as coarse ones at full view.
    assert payload["zooms"][0] == 1.0 and payload["zooms"][1] == 1.5
    assert label_payload(None) == {"levels": [], "zooms": [], "labels": []}


def test_level_zooms_follow_the_number_of_labels_per_level():
    layers = pd.concat([_layers(10, 90), _layers(0, 360).assign(level="finest", priority=lambda f: f["priority"] - 1)])
    assert level_zooms(layers) == [1.0, 3.0, 6.0]
    # A third level may arrive from map_clusters ("finest"): it is sent and ordered like the others.
    assert label_payload(layers)["levels"] == ["coarse", "fine", "finest"]


def test_an_export_places_the_coarse_labels_once(points):
    layers = _layers(3, 6)
    layers.loc[layers["level"] == "coarse", ["x", "y"]] = [[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]]
    fig = build_figure(points, style=MapStyle(labels=layers))
    texts = sorted(a.text for a in fig.layout.annotations)
    assert texts == ["coarse 0", "coarse 1", "coarse 2"]
    # The app's base layer carries no labels: they travel apart, and a new label set never redraws the points.
    assert base_key(points, MapStyle(labels=layers)) == base_key(points, MapStyle())


def test_neighbours_are_thin_rings_on_drawn_rows(points):
    style = MapStyle(title_column="title", focus=103, neighbours=np.array([1, 2, 3, 39]))
    traces = overlay_traces(points, style=style)
    assert [t.name for t in traces] == ["neighbours", "focused"]
    rings = traces[0]
    assert rings.type == "scatter" and rings.mode == "markers"
    # Row 39 is not embedded: it has no place on the map, so no ring.
    assert [int(c[0]) for c in rings.customdata] == [101, 102, 103]
    assert list(rings.x) == list(points["x"].iloc[[1, 2, 3]])
    assert rings.marker.line.width < traces[1].marker.line.width, "thinner than the focus ring"
    assert rings.marker.color == "rgba(0,0,0,0)"
    assert rings.hovertext[0] == "neighbour 1<br>paper 1"
    assert [t.name for t in overlay_traces(points, style=MapStyle(focus=103))] == ["focused"]


def test_only_the_top_hits_carry_their_rank_as_text(points):
    hits = np.arange(8)
    style = MapStyle(title_column="title", hits=hits, hit_scores=np.linspace(0.9, 0.2, 8),
                     query_xy=np.array([0.0, 0.0]), query_label="q")
    hit_trace = next(t for t in overlay_traces(points, style=style) if t.name == "search hits")
    assert list(hit_trace.text) == [str(r) for r in range(1, RANK_TEXT_HITS + 1)] + [""] * (8 - RANK_TEXT_HITS)
    # The others keep their rank and score in the hover.
    assert hit_trace.hovertext[5].startswith("#6 · 0.")


def test_a_long_query_label_is_shortened_and_left_to_the_browser_to_place(points):
    query = "<i>graph</i> neural networks for molecule property prediction and drug discovery at scale"
    style = MapStyle(hits=np.array([1, 2]), query_xy=np.array([0.5, 0.5]), query_label=query)
    overlay = json.loads(overlay_json(points, style))
    label = overlay["query"]
    assert label["x"] == 0.5 and label["y"] == 0.5
    assert label["text"].startswith("&lt;i&gt;graph") and label["text"].endswith("…")
    assert len(label["text"].replace("&lt;", "<").replace("&gt;", ">")) == QUERY_LABEL_CHARS
    star = next(t for t in overlay["data"] if t["name"] == "query")
    assert star["mode"] == "markers" and "text" not in star
    # A figure drawn once (exports) keeps the label on its star.
    exported = next(t for t in build_figure(points, style=style).data if t.name == "query")
    assert exported.mode == "markers+text" and exported.text[0] == label["text"]
    assert json.loads(overlay_json(points, MapStyle()))["query"] is None


def test_titles_payload_names_every_drawn_row_shortly(points):
    points = points.assign(title=[f"<b>paper</b> {i} " + "about things " * 8 for i in range(len(points))])
    payload = titles_payload(points, MapStyle(title_column="title"))
    assert payload["ids"] == list(range(100, 139)), "the unembedded row has no place, so no title"
    assert payload["titles"][0].startswith("&lt;b&gt;paper&lt;/b&gt; 0 about")
    assert all(len(t.replace("&lt;", "<").replace("&gt;", ">")) <= 48 for t in payload["titles"])
    named = titles_payload(points, MapStyle(titles=[f"name {i}" for i in range(len(points))]))
    assert named["titles"][:2] == ["name 0", "name 1"]


class _Saved:
    """Just what hover_thumbnails reads of a SavedMap."""

    def __init__(self, kind: str, thumbs: dict[int, bytes]):
        self.kind, self._thumbs = kind, thumbs
        self.has_thumbnails = bool(thumbs)

    def thumbnails(self, row_ids=None) -> dict[int, bytes]:
        return dict(self._thumbs)


def test_hover_thumbnails_are_data_uris_of_every_row_of_an_image_map():
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, format="PNG")
    source = hover_thumbnails(_Saved("images", {7: buffer.getvalue(), 9: buffer.getvalue()}))
    uris = source()
    assert sorted(uris) == [7, 9] and all(u.startswith("data:image/png;base64,") for u in uris.values())
    assert hover_thumbnails(_Saved("text", {})) is None


def test_the_points_layer_has_the_figures_groups_in_draw_order_and_survives_its_file(points):
    dimmed = np.zeros(len(points), bool)
    dimmed[:8] = True
    style = MapStyle(color_by="field", title_column="title", dimmed=dimmed)
    layer = points_layer(points, style)
    figure = [t for t in build_figure(points, style=style).data if t.type == "scattergl"]
    assert [g["name"] for g in layer.legend] == [t.name for t in figure] == ["filtered out", "a", "b", "c", "d"]
    for entry, trace in zip(layer.legend, figure, strict=True):
        rows = np.isin(layer.colour, entry["colours"])
        assert layer.ids[rows].tolist() == np.asarray(trace.customdata).ravel().tolist()
        assert np.allclose(layer.x[rows], trace.x) and np.allclose(layer.y[rows], trace.y)
    assert layer.colour[:7].tolist() == [0] * 7, "the dimmed rows are drawn first, under the others"
    assert 139 not in layer.ids.tolist() and len(layer.ids) == 39, "the unembedded row has no place"
    assert layer.palette[1][:3] == [0x1F, 0x77, 0xB4] and layer.palette[1][3] == 0.85
    read = PointsLayer.from_bytes(layer.to_bytes())
    assert read.x.dtype == np.float32 and read.ids.dtype == np.int32 and read.colour.dtype == np.uint8
    assert read.groups().keys() == layer.groups().keys()
    assert all(np.array_equal(read.groups()[k], layer.groups()[k]) for k in layer.groups())
    assert read.hover[list(read.ids).index(110)].startswith("paper 10")


def test_a_colour_scale_is_quantised_and_its_frame_shows_the_legend_without_points(points):
    layer = points_layer(points, MapStyle(color_by="year"))
    entry, = layer.legend
    assert entry["colorbar"] == {"title": "year", "cmin": 1990.0, "cmax": 2028.0}
    order = np.argsort(layer.ids)
    assert np.all(np.diff(layer.colour[order].astype(int)) >= 0), "later years sit higher on the scale"
    assert layer.colour.min() == entry["colours"][0] and layer.colour.max() == entry["colours"][-2]
    frame = frame_figure(points_layer(points, MapStyle(color_by="field")))
    names = [t["name"] for t in frame["data"]]
    assert names == ["a", "b", "c", "d", "extent"]
    assert all(t["x"] == [None] for t in frame["data"][:4]), "legend entries carry no points"
    assert frame["data"][-1]["marker"]["opacity"] == 0 and frame["layout"]["yaxis"]["scaleanchor"] == "x"
    scale = frame_figure(layer)["data"][0]
    assert scale["marker"]["showscale"] and scale["marker"]["cmax"] == 2028.0
