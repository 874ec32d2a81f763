"""The map in the app: a small Streamlit component that keeps the base layer in the browser.

`st.plotly_chart` re-sends and re-plots every point on each rerun (seconds at 100k points), so
the map is drawn by frontend/map/index.html (package data beside this module) instead: Python
sends the base layer with a key (parsed and plotted only when the key changes), the SVG overlays
(hits, query, focus) and the selected row ids, and gets back row ids for a click, a box or a lasso.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import streamlit as st
import streamlit.components.v1 as components

from explorer.draw import MapStyle, base_figure, base_key, overlay_json

FRONTEND = Path(__file__).parent / "frontend" / "map"


@st.cache_resource(show_spinner=False)
def frontend_folder() -> str:
    """index.html beside plotly.js, in a folder Streamlit can serve (it refuses symlinks that leave it)."""
    from plotly.offline import get_plotlyjs

    page = (FRONTEND / "index.html").read_bytes()
    script = get_plotlyjs().encode("utf-8")
    stamp = hashlib.sha256(page + script).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"explorer-map-{stamp}"
    if not (folder / "index.html").is_file():
        staging = Path(tempfile.mkdtemp(prefix="explorer-map-"))
        (staging / "plotly.min.js").write_bytes(script)
        (staging / "index.html").write_bytes(page)
        try:
            os.rename(staging, folder)
        except OSError:  # another process made it first
            pass
    return str(folder)


@st.cache_resource(max_entries=6, show_spinner="Drawing the map…")
def base_layer(key: str, _points, _style: MapStyle, revision: str) -> str:
    """The base layer's plotly JSON, built once per key (map, colour, filters, labels)."""
    return base_figure(_points, style=_style, revision=revision).to_json()


def map_chart(points, style: MapStyle, *, revision: str, key: str, height: int = 720) -> dict | None:
    """Draw the map; returns the last event ({"seq", "kind": "click" | "selection", "ids"}) or None.

    The selection travels as row ids: the browser marks those points with plotly's own selection
    styling, and skips even that when the ids are the box or lasso it has just drawn."""
    component = components.declare_component("explorer_map", path=frontend_folder())
    layer_key = base_key(points, style, revision=revision)
    overlay = overlay_json(points, style)
    selected = None if style.selected is None or not len(style.selected) else [int(i) for i in style.selected]
    return component(base=base_layer(layer_key, points, style, revision), base_key=layer_key, overlay=overlay,
                     overlay_key=_digest(overlay.encode()), selected=selected,
                     selection_key=_digest(repr(selected).encode()), height=height, key=key, default=None)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:24]
