"""The map in the app: a small Streamlit component that keeps the base layer in the browser.

`st.plotly_chart` re-sends and re-plots every point on each rerun (seconds at 100k points), so the
map is drawn by the map core (explorer/mapjs/, the same files the offline export and the notebook
widget use) hosted by frontend/map/index.html: the points are a binary file beside index.html,
written once per base-layer key (float32 x, y, int32 row ids, a uint8 colour index:
draw.PointsLayer), fetched once and drawn into a canvas on every pan and zoom (as density where
many points share a pixel). Python sends the file's name, the overlay (hits, query, focus,
neighbours: draw.overlay_json), every level's cluster labels (placed by the browser on each zoom
and pan) and the selected row ids, and gets back row ids for a click, a box or a lasso.

Row titles (shown beside the points once few are in view) and an image map's thumbnails (shown
on hover) are files beside index.html, written once per map and fetched by the browser only when
it needs them: component arguments travel again on every rerun, and 100k titles would be megabytes.

These files hold the user's data, so they live in a folder private to this server (a fresh one,
mode 0700, ours), one subfolder per map that goes when the map is deleted (forget_map), and the
whole folder when the server stops; a later server removes what a killed one left behind.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from explorer import mapjs
from explorer.draw import (
    LEAN_HOVER_POINTS,
    MapStyle,
    PointsLayer,
    base_key,
    label_payload,
    overlay_json,
    points_layer,
    titles_payload,
)

FRONTENDS = Path(__file__).parent / "frontend"
FRONTEND = FRONTENDS / "map"
# The upload picker's page (frontend/upload), staged under this subfolder of the map's.
UPLOAD_SUBFOLDER = "upload"
# The Streamlit component protocol both pages load, staged beside each.
PROTOCOL = "component.js"
# index.html's placeholder for the core's script tags (one per explorer/mapjs file, staged under mapjs/).
CORE_MARKER = "<!-- explorer-map-core -->"
log = logging.getLogger(__name__)
# Assets being written in the background, so two reruns never write the same file at once.
_WRITING: set[str] = set()
_WRITING_LOCK = threading.Lock()
TITLES_DELAY_S = 3.0
# Points files kept beside index.html (the most recently used): a browser reads its file once and
# keeps the points, and a 1M-point file is 13 MB. A file used in the last KEEP_POINTS_SECONDS is never
# removed: ten sessions opening their own maps at once would otherwise delete a file before its
# browser has fetched it, and that map would never be drawn.
KEEP_POINTS_FILES = 12
KEEP_POINTS_SECONDS = 900
# explorer-map-<pid>-<random>: the pid tells a later server whether the folder's server is still running.
FOLDER_PREFIX = "explorer-map-"
# The folder frontend_folder made in this process (forget_map must not make one just to empty it).
_folder: Path | None = None


@st.cache_resource(show_spinner=False)
def frontend_folder() -> str:
    """frontend/map's files, the map core's (under mapjs/) and the upload picker's (under upload/), in a new
    folder private to this server (mode 0700, ours).

    Never a predictable path that is trusted when it exists: another user of the machine could make it
    first and serve their own index.html, or read the titles. Streamlit serves it as the component."""
    global _folder
    _remove_abandoned_folders()
    folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))  # created 0700, a name nobody had
    check_private(folder)
    stage_frontend(folder)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    _folder = folder
    return str(folder)


def upload_folder() -> str:
    """The upload picker's staged page (a subfolder of `frontend_folder`), served as its component."""
    return str(Path(frontend_folder()) / UPLOAD_SUBFOLDER)


def stage_frontend(folder: Path) -> None:
    """Copy the map's page into ``folder`` and the upload picker's under upload/, each with the component
    protocol beside it, and the map core (under mapjs/, from its one source), with the map page's marker
    replaced by one script tag per core file in load order."""
    for page, target in ((FRONTEND, folder), (FRONTENDS / UPLOAD_SUBFOLDER, folder / UPLOAD_SUBFOLDER)):
        target.mkdir(mode=0o700, exist_ok=True)
        for path in [*sorted(page.iterdir()), FRONTENDS / PROTOCOL]:
            if path.is_file():
                (target / path.name).write_bytes(path.read_bytes())
    (folder / "mapjs").mkdir(mode=0o700, exist_ok=True)
    names = mapjs.core_files()
    for name in names:
        (folder / "mapjs" / name).write_text(mapjs.source(name), encoding="utf-8")
    page = folder / "index.html"
    tags = "\n".join(f'<script src="mapjs/{name}"></script>' for name in names)
    page.write_text(page.read_text(encoding="utf-8").replace(CORE_MARKER, tags), encoding="utf-8")


def check_private(folder: Path) -> None:
    """Refuse a folder that is a symlink, not ours, or open to other users (RuntimeError)."""
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise RuntimeError(f"{folder} is not a private folder of this user's: the map cannot be served from it")


def forget_map(name: str) -> None:
    """Remove the files staged for the map ``name`` (points, titles, thumbnails): it has been deleted."""
    if _folder is not None:
        shutil.rmtree(_folder / _map_subfolder(name), ignore_errors=True)


def _map_subfolder(name: str) -> str:
    return f"map-{_digest(name.encode())}"


def _remove_abandoned_folders() -> None:
    """Remove this user's component folders whose server is gone (killed before its atexit ran), and the
    shared ones earlier versions made; never anything that is not a folder of ours."""
    for path in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*"):
        try:
            info = path.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        pid, dash, _ = path.name.removeprefix(FOLDER_PREFIX).partition("-")
        if dash and pid.isdigit() and _running(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process has that pid now
        return True
    return True


@st.cache_resource(max_entries=6, show_spinner="Drawing the map…")
def base_layer(key: str, _points, _style: MapStyle, revision: str) -> PointsLayer:
    """The base layer's points, built once per key (map, colour, filters)."""
    return points_layer(_points, _style)


def points_file(key: str, layer: PointsLayer, *, map_name: str) -> str:
    """The points file of ``key`` in ``map_name``'s folder (its path from index.html; see binary_file)."""
    return binary_file(f"points-{key}.bin", layer.to_bytes, map_name=map_name)


def binary_file(name: str, build: Callable[[], bytes], *, map_name: str) -> str:
    """The file ``name`` in ``map_name``'s folder, written now from ``build()`` if it is not there (its path
    from index.html is returned).

    Written on the script's path, unlike the titles: the browser draws nothing before it has the
    points, and 1M points take a few tenths of a second to write."""
    folder = Path(frontend_folder())
    name = f"{_map_subfolder(map_name)}/{name}"
    path = folder / name
    path.parent.mkdir(mode=0o700, exist_ok=True)
    if path.is_file():
        os.utime(path)  # recently used: kept by the pruning below
        return name
    staging = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    staging.write_bytes(build())
    os.replace(staging, path)
    used = sorted(((mtime, p) for p in folder.glob("map-*/*.bin") if (mtime := _mtime(p))), reverse=True)
    for mtime, stale in used[KEEP_POINTS_FILES:]:
        if time.time() - mtime > KEEP_POINTS_SECONDS:
            stale.unlink(missing_ok=True)
    return name


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # its map was deleted meanwhile (forget_map)
        return None


def map_chart(points, style: MapStyle, *, revision: str, key: str, height: int = 720,
              facets: tuple[str, Callable[[], bytes]] | None = None, facet_state: dict | None = None,
              facet_context: np.ndarray | None = None, ack: dict | None = None) -> dict | None:
    """Draw the map; returns the last event ({"seq", "kind": "click" | "selection", "ids"}) or None.

    ``height`` is the frame's height until the browser knows the window's (then most of it). The
    selection travels as row ids: the browser draws the other points faded, and keeps the box
    or lasso outline it has just drawn when the ids are its own; no ids (``style.selected`` None or
    empty) clear the outline and the fading. ``revision`` is "<map name>:<stamp>": the map's files
    are staged under its name, so that forget_map can remove them. ``facets`` is (a key, the maker of its
    explorer.facets.pack_facets file) for the facet strip over the map, ``facet_state`` the filter it shows
    (explorer.facets.state_to_json), ``facet_context`` the rows the other filters keep (the facets count
    within them; None: all); a brush or click there comes back as {"kind": "facets", "state"}. The
    browser re-sends every event until ``ack`` (the last one Python applied: state.chart_ack) covers it."""
    component = components.declare_component("explorer_map", path=frontend_folder())
    layer_key = base_key(points, style, revision=revision)
    overlay = overlay_json(points, style)
    labels = label_json(style)
    selected = None if style.selected is None or not len(style.selected) else [int(i) for i in style.selected]
    map_id = _digest(json.dumps([revision, len(points), style.title_column]).encode())
    map_name = revision.rpartition(":")[0] or revision
    # A big map's titles wait until the run that opens it is over (they take ~0.5 s at 100k, on the GIL).
    delay = TITLES_DELAY_S if len(points) > LEAN_HOVER_POINTS else 0.0
    staged = _map_subfolder(map_name)
    assets = {"titles": _asset(f"{staged}/titles-{map_id}.json", lambda: titles_payload(points, style), delay=delay)}
    if style.thumbnails is not None:
        source = style.thumbnails
        assets["thumbnails"] = _asset(f"{staged}/thumbnails-{map_id}.json", lambda: _thumbnail_payload(source))
    layer = base_layer(layer_key, points, style, revision)
    legend_title = style.scale_title if style.similarity is not None else (style.color_by or "")
    facets_name = binary_file(f"facets-{facets[0]}.bin", facets[1], map_name=map_name) if facets else None
    facet_json = json.dumps(facet_state or {}, sort_keys=True)
    context_name = None
    if facets and facet_context is not None:
        bits = np.packbits(np.asarray(facet_context, dtype=bool), bitorder="little").tobytes()
        context_name = binary_file(f"keep-{_digest(bits)}.bin", lambda: bits, map_name=map_name)
    return component(layer=points_file(layer_key, layer, map_name=map_name), legend_title=legend_title,
                     facets=facets_name, facet_state=facet_json, facet_state_key=_digest(facet_json.encode()),
                     facet_context=context_name,
                     base_key=layer_key,
                     overlay=overlay, overlay_key=_digest(overlay.encode()), labels=labels,
                     labels_key=_digest(labels.encode()),
                     assets=assets, selected=selected, selection_key=_digest(repr(selected).encode()),
                     height=height, ack=ack, key=key, default=None)


def label_json(style: MapStyle) -> str:
    """Every level's cluster labels as compact JSON (draw.label_payload), built once per set of labels."""
    if style.labels is None or not len(style.labels):
        return json.dumps(label_payload(None))
    return _label_json(_digest(pd.util.hash_pandas_object(style.labels, index=False).to_numpy().tobytes()),
                       style.labels)


@st.cache_data(max_entries=16, show_spinner=False)
def _label_json(digest: str, _labels) -> str:
    return json.dumps(label_payload(_labels), separators=(",", ":"))


def _asset(name: str, build: Callable[[], dict], *, delay: float = 0.0) -> str:
    """The file ``name`` beside index.html, written in the background the first time (its name is returned at once).

    Not on the script's path: 100k titles take a few tenths of a second to gather, and the browser
    asks for them only when a zoom leaves few points in view (it retries while the file is missing)."""
    path = Path(frontend_folder()) / name
    path.parent.mkdir(mode=0o700, exist_ok=True)
    with _WRITING_LOCK:
        if path.is_file() or name in _WRITING:
            return name
        _WRITING.add(name)

    def write() -> None:
        try:
            if not path.parent.is_dir():  # the map was deleted meanwhile (forget_map)
                return
            staging = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            staging.write_text(json.dumps(build(), separators=(",", ":")), encoding="utf-8")
            os.replace(staging, path)
        except Exception:  # a missing asset only costs titles or thumbnails, never the map
            log.exception("could not write the map asset %s", name)
        finally:
            with _WRITING_LOCK:
                _WRITING.discard(name)

    timer = threading.Timer(delay, write)
    timer.name, timer.daemon = f"map-asset-{name}", True
    timer.start()
    return name


def _thumbnail_payload(source: Callable[[], dict]) -> dict:
    thumbnails = source()
    return {"ids": [int(i) for i in thumbnails], "uris": list(thumbnails.values())}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:24]
