"""What an AppTest run sent to the map widget: the points layer (read from its file), the overlay and the labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from explorer.draw import PointsLayer


def map_args(at) -> dict:
    """The arguments of the (single) map widget on the page."""
    widgets = [e for e in at.get("component_instance") if e.proto.component_name.endswith("explorer_map")]
    assert len(widgets) == 1, f"expected one map, found {len(widgets)}"
    return json.loads(widgets[0].proto.json_args)


def points_layer(at) -> PointsLayer:
    """The points layer the browser fetches: the file beside the widget's index.html that the arguments name."""
    from explorer.ui.widget import frontend_folder

    return PointsLayer.from_bytes((Path(frontend_folder()) / map_args(at)["layer"]).read_bytes())


def map_spec(at) -> str:
    """Everything the map draws, as one JSON text (the points' hover labels and groups, the legend's title, the
    overlay and the labels)."""
    args, layer = map_args(at), points_layer(at)
    return json.dumps([layer.hover, layer.legend, args["legend_title"]]) + args["overlay"] + args["labels"]


def overlay_names(at) -> list[str]:
    """What is drawn over the base layer: "search hits", "query", "focused", "neighbours" (draw.overlay_json)."""
    overlay = json.loads(map_args(at)["overlay"])
    present = {"search hits": overlay["hits"], "query": overlay["query"], "focused": overlay["focus"] is not None,
               "neighbours": overlay["neighbours"]}
    return [name for name, shown in present.items() if shown]


def base_traces(at) -> dict[str, list[int]]:
    """The row ids of each group of the points layer, by name ("filtered out" holds the dimmed rows)."""
    return {name: np.asarray(ids).astype(int).tolist() for name, ids in points_layer(at).groups().items()}
