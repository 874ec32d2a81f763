"""A big map's figure stays small: no per-point hover text on the base layer, full labels on overlays."""

from __future__ import annotations

import numpy as np
import pandas as pd

from explorer.draw import LEAN_HOVER_POINTS, MapStyle, build_figure


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
