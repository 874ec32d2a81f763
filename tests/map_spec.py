"""What an AppTest run sent to the map widget: the base layer and the overlays as plotly JSON."""

from __future__ import annotations

import json


def map_args(at) -> dict:
    """The arguments of the (single) map widget on the page."""
    widgets = [e for e in at.get("component_instance") if e.proto.component_name.endswith("explorer_map")]
    assert len(widgets) == 1, f"expected one map, found {len(widgets)}"
    return json.loads(widgets[0].proto.json_args)


def map_spec(at) -> str:
    """Everything the map draws, as one JSON text (base layer, then overlays)."""
    args = map_args(at)
    return args["base"] + args["overlay"]


def overlay_names(at) -> list[str]:
    """The names of the traces drawn over the base layer (search hits, query, selection, focused)."""
    return [trace.get("name") for trace in json.loads(map_args(at)["overlay"])["data"]]
