"""What an AppTest run sent to the map widget: the base layer and the overlays as plotly JSON."""

from __future__ import annotations

import base64
import json

import numpy as np


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


def _first_column(customdata) -> list[int]:
    """Row ids from a trace's customdata: plotly.py sends numpy arrays base64-encoded ({dtype, bdata, shape})."""
    if customdata is None:
        return []
    if isinstance(customdata, dict):
        values = np.frombuffer(base64.b64decode(customdata["bdata"]), dtype=np.dtype(customdata["dtype"]))
        shape = [int(s) for s in str(customdata.get("shape", len(values))).split(",")]
        return values.reshape(shape[0], -1)[:, 0].astype(int).tolist()
    return [int(c[0] if isinstance(c, list) else c) for c in customdata]


def base_traces(at) -> dict[str, list[int]]:
    """The row ids of each trace of the base layer, by trace name ("filtered out" holds the dimmed rows)."""
    return {trace.get("name"): _first_column(trace.get("customdata"))
            for trace in json.loads(map_args(at)["base"])["data"]}
