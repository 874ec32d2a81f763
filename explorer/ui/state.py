"""The app's session state: its keys, the callbacks that change it, and the one view state.

A Streamlit script runs top to bottom on every interaction, so a value set after the map is drawn
shows up one interaction late. ``compute_view_state`` therefore reads every widget and session
value first (the sidebar's and the search bar's widgets, the map's pending event, the cluster
table's selection) and computes selection, focus, cluster highlight, filters, search and labels;
the map and every panel then draw from the ``ViewState`` it returns. Callbacks change session
state; drawing code never does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import streamlit as st

from explorer.draw import MapStyle, title_column, visible_labels
from explorer.errors import ExplorerError
from explorer.filters import category_mask, keyword_mask, positions_of
from explorer.map_clusters import cluster_column, cluster_table
from explorer.search import KEYWORD, SearchResult, query_position, search_map
from explorer.store import Workspace

from . import loaders

# Per-session view state that belongs to one open map and is dropped when another map is opened.
VIEW_STATE_KEYS = (
    "selected_row", "selection", "last_event", "query", "last_query", "selected_title", "why_row",
)
# The clusters table's own selection state lives under this prefix plus the level and the map.
CLUSTER_TABLE_KEY = "cluster_table_"


# ---------------------------------------------------------------- keys


def cluster_table_key(saved, level: str) -> str:
    """The session key of a map's clusters table at ``level`` (its selection state). One table per
    map name, so a pick never carries over to another map; renaming a cluster keeps it."""
    return f"{CLUSTER_TABLE_KEY}{level}:{saved.name}"


def chart_key(saved) -> str:
    """One map widget per map, so an event on one map is never replayed on the next."""
    return f"map:{saved.name}:{st.session_state.get('map_stamp', '')}"


# ---------------------------------------------------------------- callbacks and routing


def reset_view() -> None:
    """Forget everything tied to the previous map."""
    for key in VIEW_STATE_KEYS:
        st.session_state.pop(key, None)
    for key in [k for k in st.session_state if str(k).startswith(CLUSTER_TABLE_KEY)]:
        st.session_state.pop(key, None)


def show_map(name: str) -> None:
    """Switch this session to a saved map."""
    reset_view()
    st.session_state["map_name"] = name


def close_map() -> None:
    """Button callback: back to the first screen."""
    st.session_state.pop("map_name", None)
    reset_view()


def focus_row(row_id: int) -> None:
    """Button callback: open a row's details and ring it on the map (callbacks spare a second rerun)."""
    st.session_state["selected_row"] = row_id


def explain_row(row_id: int) -> None:
    """Button callback: show why a search hit matches the query."""
    st.session_state["why_row"] = row_id


def forget(key: str) -> None:
    """Button callback: drop one piece of view state (details, selection, explanation)."""
    st.session_state.pop(key, None)


def open_current_map():
    """The map this session has open, or None (a map deleted meanwhile closes it)."""
    name = st.session_state.get("map_name")
    if not name:
        return None
    workspace = Workspace()
    if not workspace.exists(name):
        st.session_state.pop("map_name", None)
        return None
    stamp = str(workspace.stamp(name))
    st.session_state["map_stamp"] = stamp
    return loaders.get_map(name, stamp)


def apply_chart_event(event) -> None:
    """A click focuses one point; a box or lasso replaces the selection (kept across reruns).

    Read before anything is drawn, so a click or lasso shows up in this very run; an event is
    applied once (the widget keeps returning its last one)."""
    if not event or event.get("seq") == st.session_state.get("last_event"):
        return
    st.session_state["last_event"] = event.get("seq")
    ids = [int(i) for i in event.get("ids") or []]
    if event.get("kind") == "selection":
        st.session_state["selection"] = ids
    elif event.get("kind") == "click" and ids:
        st.session_state["selected_row"] = ids[0]


def chosen_table_row(saved, level: str, n_rows: int) -> int | None:
    """The row picked in the clusters table at ``level``, read from its session state before the
    table is drawn (None when none is picked, or the pick no longer exists)."""
    state = st.session_state.get(cluster_table_key(saved, level))
    if not state:
        return None
    selection = state.get("selection") or {}
    rows = selection.get("rows") or []
    if not rows or not 0 <= int(rows[0]) < n_rows:
        return None
    return int(rows[0])


# ---------------------------------------------------------------- the view state


@dataclass(frozen=True)
class Controls:
    """The sidebar's choices for the open map."""

    points: pd.DataFrame
    level: str | None = None
    show_labels: bool = False
    colour: str | None = None
    hover: list[str] = field(default_factory=list)
    keyword: str = ""
    regex: bool = False
    categories: dict[str, list] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchInput:
    """The search bar's values (an example image only on image maps)."""

    query: str = ""
    k: int = 10
    threshold: float = 0.0
    by_similarity: bool = False
    example: bytes | None = None


@dataclass
class ViewState:
    """Everything the map and its panels show in this run, computed before any of them is drawn."""

    points: pd.DataFrame
    titles: list[str]
    title_column: str | None
    level: str | None
    selection: list[int]
    selected_row: int | None
    why_row: int | None
    clusters: pd.DataFrame | None  # the clusters table at ``level``
    chosen_cluster: pd.Series | None  # its row picked in the table: the other clusters are dimmed
    keep: np.ndarray
    result: SearchResult | None
    style: MapStyle
    # (kind, text) shown above the map: "info", "warning" or "error".
    messages: list[tuple[str, str]] = field(default_factory=list)


def run_search(saved, search: SearchInput, messages: list[tuple[str, str]]) -> SearchResult | None:
    """Rank the rows by the query (or, on image maps, an example image); None when there is neither."""
    if not search.query and search.example is None:
        return None
    try:
        # An example image wins over the text box; its search takes no threshold.
        result = search_map(saved, search.query or None, image=search.example, k=search.k,
                            threshold=search.threshold or None)
    except ExplorerError as exc:
        messages.append(("error", str(exc)))
        return None
    if result.mode == KEYWORD and result.reason:
        messages.append(("info", result.reason))
    if search.query:
        st.session_state["last_query"] = search.query
    messages.extend(("info", note) for note in result.notes)
    return result


def compute_view_state(saved, controls: Controls, search: SearchInput) -> ViewState:
    """Read the pending map event and every session value, then compute what this run shows.

    Its only writes: the map event it applies, and what the "How embeddings work" page starts from
    (the last query, the title of the row opened)."""
    stamp = st.session_state["map_stamp"]
    points, level = controls.points, controls.level
    apply_chart_event(st.session_state.get(chart_key(saved)))
    selection = list(st.session_state.get("selection") or [])
    selected_row = st.session_state.get("selected_row")
    selected_row = None if selected_row is None else int(selected_row)
    title_col = title_column(points, saved.manifest.get("text_columns") or [])
    titles = loaders.get_titles(saved.name, stamp, title_col, level)
    messages: list[tuple[str, str]] = []

    result = run_search(saved, search, messages)

    keep = np.ones(len(points), dtype=bool)
    if controls.keyword:  # the texts of a big map take a second to assemble: only when filtering by them
        try:
            keep = keyword_mask(loaders.get_texts(saved.name, stamp), controls.keyword, regex=controls.regex)
        except ExplorerError as exc:
            messages.append(("warning", str(exc)))
    keep &= category_mask(points, controls.categories)

    clusters = chosen = None
    if level is not None:
        clusters = cluster_table(saved, level)
        row = chosen_table_row(saved, level, len(clusters))
        if row is not None:
            chosen = clusters.iloc[row]
            keep &= (points[cluster_column(saved, level)] == int(chosen["id"])).to_numpy()

    if selected_row is not None:
        position = positions_of(saved.points, [selected_row])
        if len(position):
            st.session_state["selected_title"] = titles[int(position[0])]

    style = MapStyle(
        color_by=controls.colour, hover_fields=controls.hover, title_column=title_col,
        dimmed=~keep if not keep.all() else None, selected=st.session_state.get("selection"),
        focus=selected_row,
    )
    if result is not None:
        style.hits = result.indices
        style.hit_scores = result.top_scores
        style.query_xy = query_position(saved.coords, result)
        style.query_label = result.query
        if search.by_similarity:
            style.similarity = np.nan_to_num(result.scores, nan=0.0)
    if controls.show_labels and level is not None:
        style.labels = visible_labels(saved, level)

    why_row = st.session_state.get("why_row")
    return ViewState(points=points, titles=titles, title_column=title_col, level=level, selection=selection,
                     selected_row=selected_row, why_row=why_row, clusters=clusters, chosen_cluster=chosen,
                     keep=keep, result=result, style=style, messages=messages)
