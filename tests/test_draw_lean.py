"""A big map's payloads stay small: no per-point hover text on the base layer, overlays of row ids."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from explorer.draw import LEAN_HOVER_POINTS, MapStyle, base_key, overlay_json, points_layer


def _points(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "row_id": np.arange(n), "title": [f"Paper {i}: " + "a long title about things " * 6 for i in range(n)],
        "field": rng.choice(["cs.CV", "cs.CL", "cs.RO"], size=n),
        "x": rng.normal(size=n).astype(np.float32), "y": rng.normal(size=n).astype(np.float32), "embedded": True,
    })


def test_a_small_map_keeps_hover_text_on_every_point():
    layer = points_layer(_points(500), MapStyle(color_by="field", title_column="title"))
    assert layer.hover is not None and len(layer.hover) == 500 and layer.hover[0].startswith("Paper ")


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


def test_overlays_carry_row_ids_and_stay_small():
    points = _points(LEAN_HOVER_POINTS + 10)
    style = MapStyle(color_by="field", title_column="title", hits=np.array([3, 7, 9]), focus=20,
                     query_xy=np.array([0.1, 0.2]), query_label="robots", neighbours=np.arange(30, 40))
    overlay = json.loads(overlay_json(points, style))
    assert overlay["hits"] == [3, 7, 9] and overlay["focus"] == 20 and overlay["neighbours"] == list(range(30, 40))
    assert overlay["query"]["text"] == "robots"
    assert len(overlay_json(points, style)) < 20_000, "overlays stay small whatever the map's size"


def test_a_big_maps_points_layer_is_typed_arrays_without_hover_text():
    points = _points(LEAN_HOVER_POINTS + 5_000)
    layer = points_layer(points, MapStyle(color_by="field", title_column="title"))
    data = layer.to_bytes()
    assert layer.hover is None, "a big map's hover names the group; its titles come from the titles file"
    # 13 bytes a point (x, y, id, colour) and a header of a few hundred bytes: 1M points in 13 MB.
    assert len(points) * 13 < len(data) < len(points) * 13 + 2_000
