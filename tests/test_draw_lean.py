"""A big map's figure stays small: no per-point hover text on the base layer, full labels on overlays."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from explorer.draw import LEAN_HOVER_POINTS, MapStyle, base_key, build_figure, overlay_json, overlay_traces


def _points(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "row_id": np.arange(n), "title": [f"Paper {i}: " + "a long title about things " * 6 for i in range(n)],
        "field": rng.choice(["cs.CV", "cs.CL", "cs.RO"], size=n),
        "x": rng.normal(size=n).astype(np.float32), "y": rng.normal(size=n).astype(np.float32), "embedded": True,
    })


def test_a_big_map_sends_no_per_point_hover_text():
    points = _points(LEAN_HOVER_POINTS + 5_000)
    style = MapStyle(color_by="field", title_column="title", hits=np.array([3, 7]), selected=[11, 12, 13],
                     focus=20)
    fig = build_figure(points, style=style)
    base = [t for t in fig.data if t.name in ("cs.CV", "cs.CL", "cs.RO")]
    assert len(base) == 3 and all(t.hovertext is None and t.hovertemplate for t in base)
    assert sum(len(t.x) for t in base) == len(points)
    # ~25k titles of 160 characters would be ~4 MB of JSON; coordinates, ids and colours are far less.
    assert len(fig.to_json()) < 1_000_000
    hits = next(t for t in fig.data if t.name == "search hits")
    assert all("Paper " in h for h in hits.hovertext) and "Paper 3:" in hits.hovertext[0]
    selection = next(t for t in fig.data if t.name == "selection")
    assert sorted(int(c[0]) for c in selection.customdata) == [11, 12, 13]
    assert all(h.startswith("Paper 1") for h in selection.hovertext)
    focused = next(t for t in fig.data if t.name == "focused")
    assert focused.hovertext[0].startswith("Paper 20:")


def test_a_small_map_keeps_hover_text_on_every_point():
    fig = build_figure(_points(500), style=MapStyle(color_by="field", title_column="title"))
    assert all(t.hovertext is not None and len(t.hovertext) == len(t.x) for t in fig.data)


def test_the_base_layer_key_ignores_overlays_and_follows_what_it_draws():
    points = _points(300)
    plain = MapStyle(color_by="field", title_column="title")
    searched = MapStyle(color_by="field", title_column="title", hits=np.array([1, 2]), selected=[5], focus=7,
                        query_xy=np.array([0.0, 0.0]), query_label="q")
    assert base_key(points, plain) == base_key(points, searched), "a search must not redraw the base layer"
    recoloured = MapStyle(color_by=None, title_column="title")
    dimmed = MapStyle(color_by="field", title_column="title", dimmed=np.arange(300) < 10)
    keys = {base_key(points, s) for s in (plain, recoloured, dimmed)}
    assert len(keys) == 3
    assert base_key(points, plain, revision="other map") != base_key(points, plain)


def test_overlays_are_svg_and_carry_row_ids():
    points = _points(LEAN_HOVER_POINTS + 10)
    style = MapStyle(color_by="field", title_column="title", hits=np.array([3, 7, 9]), focus=20,
                     query_xy=np.array([0.1, 0.2]), query_label="robots")
    traces = overlay_traces(points, style=style)
    assert [t.name for t in traces] == ["links", "search hits", "query", "focused"]
    # SVG traces redraw without touching the WebGL canvas of 100k points.
    assert all(t.type == "scatter" for t in traces)
    assert [int(c[0]) for c in traces[1].customdata] == [3, 7, 9]
    overlay = json.loads(overlay_json(points, style))
    assert overlay["fade"] is True and len(overlay["data"]) == 4
    assert len(overlay_json(points, style)) < 20_000, "overlays stay small whatever the map's size"


def test_a_big_maps_points_layer_is_typed_arrays_without_hover_text():
    from explorer.draw import frame_figure, points_layer

    points = _points(LEAN_HOVER_POINTS + 5_000)
    layer = points_layer(points, MapStyle(color_by="field", title_column="title"))
    data = layer.to_bytes()
    assert layer.hover is None, "a big map's hover names the group; its titles come from the titles file"
    # 13 bytes a point (x, y, id, colour) and a header of a few hundred bytes: 1M points in 13 MB.
    assert len(points) * 13 < len(data) < len(points) * 13 + 2_000
    assert len(json.dumps(frame_figure(layer))) < 5_000, "plotly's frame carries no points"
