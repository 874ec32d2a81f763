"""Unit tests of what the map core is sent: the points layer, the overlay and the label payload."""

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
    category_values,
    escape_text,
    hover_thumbnails,
    is_categorical,
    label_payload,
    level_zooms,
    overlay_json,
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


def test_categories_get_one_group_each_with_row_ids(points):
    layer = points_layer(points, MapStyle(color_by="field", title_column="title"))
    assert [g["name"] for g in layer.legend] == ["a", "b", "c", "d"]
    assert sorted(layer.ids.tolist()) == list(range(100, 139)), "the unembedded row is not drawn; ids are row_ids"


def test_numeric_column_gets_a_colour_scale(points):
    assert not is_categorical(points["year"])
    assert points_layer(points, MapStyle(color_by="year")).legend[0]["colorbar"]["title"] == "year"


def test_many_categories_fold_into_other():
    values = category_values(pd.Series([f"c{i}" for i in range(100)] + ["c1"] * 5), max_categories=10)
    assert values.nunique() == 10 and "(other)" in set(values)


def test_hits_query_and_dimming_overlays(points):
    dimmed = np.zeros(len(points), bool)
    dimmed[:10] = True
    style = MapStyle(dimmed=dimmed, hits=np.array([5, 6, 7]), hit_scores=np.array([0.9, 0.8, 0.7]),
                     query_xy=np.array([0.0, 0.0]), query_label="q", selected=[101, 102], focus=103)
    layer = points_layer(points, style)
    assert layer.legend[0]["name"] == "filtered out" and len(layer.groups()["filtered out"]) == 10
    overlay = json.loads(overlay_json(points, style))
    assert overlay["hits"] == [105, 106, 107] and overlay["scores"] == [0.9, 0.8, 0.7]
    assert overlay["ranks"] == RANK_TEXT_HITS and overlay["focus"] == 103
    assert overlay["query"] == {"x": 0.0, "y": 0.0, "text": "q"}


def test_user_text_is_escaped_for_plotly():
    assert escape_text('<img src=x onerror="a">') == '&lt;img src=x onerror="a"&gt;'


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


def test_labels_travel_apart_from_the_base_layer(points):
    layers = _layers(3, 6)
    # The base layer carries no labels: a new label set never redraws the points.
    assert base_key(points, MapStyle(labels=layers)) == base_key(points, MapStyle())


def test_neighbours_and_focus_travel_as_row_ids_of_drawn_rows(points):
    style = MapStyle(title_column="title", focus=103, neighbours=np.array([1, 2, 3, 39]))
    overlay = json.loads(overlay_json(points, style))
    # Row 39 is not embedded: it has no place on the map, so no ring.
    assert overlay["neighbours"] == [101, 102, 103] and overlay["focus"] == 103
    assert overlay["hits"] == [] and overlay["query"] is None
    assert json.loads(overlay_json(points, MapStyle(focus=139)))["focus"] is None, "no place, no focus ring"


def test_the_hits_keep_their_order_and_scores_and_only_the_top_ones_get_ranks(points):
    hits = np.array([7, 39, 1, 2, 3, 4, 5, 6])
    style = MapStyle(title_column="title", hits=hits, hit_scores=np.linspace(0.9, 0.2, 8),
                     query_xy=np.array([0.0, 0.0]), query_label="q")
    overlay = json.loads(overlay_json(points, style))
    # Row 39 has no place: it is left out with its score, the others keep their rank order.
    assert overlay["hits"] == [107, 101, 102, 103, 104, 105, 106]
    assert overlay["scores"] == [round(v, 4) for v in np.delete(np.linspace(0.9, 0.2, 8), 1)]
    assert overlay["ranks"] == RANK_TEXT_HITS == 3


def test_a_long_query_label_is_shortened_and_left_to_the_browser_to_place(points):
    query = "<i>graph</i> neural networks for molecule property prediction and drug discovery at scale"
    style = MapStyle(hits=np.array([1, 2]), query_xy=np.array([0.5, 0.5]), query_label=query)
    overlay = json.loads(overlay_json(points, style))
    label = overlay["query"]
    assert label["x"] == 0.5 and label["y"] == 0.5
    assert label["text"].startswith("&lt;i&gt;graph") and label["text"].endswith("…")
    assert len(label["text"].replace("&lt;", "<").replace("&gt;", ">")) == QUERY_LABEL_CHARS
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


def test_the_points_layer_has_its_groups_in_draw_order_and_survives_its_file(points):
    dimmed = np.zeros(len(points), bool)
    dimmed[:8] = True
    style = MapStyle(color_by="field", title_column="title", dimmed=dimmed)
    layer = points_layer(points, style)
    assert [g["name"] for g in layer.legend] == ["filtered out", "a", "b", "c", "d"]
    by_id = points.set_index("row_id")
    for entry in layer.legend[1:]:
        rows = np.isin(layer.colour, entry["colours"])
        assert set(by_id.loc[layer.ids[rows], "field"]) == {entry["name"]}
        assert np.allclose(layer.x[rows], by_id.loc[layer.ids[rows], "x"])
    assert layer.colour[:7].tolist() == [0] * 7, "the dimmed rows are drawn first, under the others"
    assert 139 not in layer.ids.tolist() and len(layer.ids) == 39, "the unembedded row has no place"
    assert layer.palette[1][:3] == [0x1F, 0x77, 0xB4] and layer.palette[1][3] == 0.85
    read = PointsLayer.from_bytes(layer.to_bytes())
    assert read.x.dtype == np.float32 and read.ids.dtype == np.int32 and read.colour.dtype == np.uint8
    assert read.groups().keys() == layer.groups().keys()
    assert all(np.array_equal(read.groups()[k], layer.groups()[k]) for k in layer.groups())
    assert read.hover[list(read.ids).index(110)].startswith("paper 10")


def test_a_colour_scale_is_quantised(points):
    layer = points_layer(points, MapStyle(color_by="year"))
    entry, = layer.legend
    assert entry["colorbar"] == {"title": "year", "cmin": 1990.0, "cmax": 2028.0}
    order = np.argsort(layer.ids)
    assert np.all(np.diff(layer.colour[order].astype(int)) >= 0), "later years sit higher on the scale"
    assert layer.colour.min() == entry["colours"][0] and layer.colour.max() == entry["colours"][-2]
