"""Unit tests of the map figure, its overlays and the label placement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from explorer.draw import MapStyle, build_figure, category_values, escape_text, is_categorical, place_labels
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
