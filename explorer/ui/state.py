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

from explorer.draw import MapStyle, hover_thumbnails, map_labels, shorten, title_column
from explorer.errors import ExplorerError
from explorer.facets import format_state, state_from_json
from explorer.filters import category_mask, keyword_mask, positions_of
from explorer.map_clusters import cluster_column, cluster_table
from explorer.placement import place_query
from explorer.search import KEYWORD, SearchResult, nearest_neighbors, search_map
from explorer.store import Workspace
from explorer.vector_index import search_index

from . import loaders
from .screening_panel import HEAT_KEY, heat_values

# Per-session view state that belongs to one open map and is dropped when another map is opened.
VIEW_STATE_KEYS = (
    "selected_row", "selection", "last_event", "query", "last_query", "selected_title", "why_row", "side_tab",
    "sql_filter",  # a SQL condition names one map's columns
    "facet_filter",  # so does a facet filter
)
# The side panel's tabs (stateful: a callback may switch them, e.g. opening a result shows Details).
SIDE_TAB = "side_tab"
RESULTS_TAB, DETAILS_TAB, SELECTION_TAB, SCREENING_TAB = "Results", "Details", "Selection", "Screening"
SIDE_TABS = (RESULTS_TAB, DETAILS_TAB, SELECTION_TAB, SCREENING_TAB)
# The page's query parameters that hold the view, so a reload or a shared link opens the same one.
MAP_PARAM, QUERY_PARAM, SQL_PARAM, FACETS_PARAM = "map", "query", "sql", "facets"
VIEW_PARAMS = (MAP_PARAM, QUERY_PARAM, SQL_PARAM, FACETS_PARAM)
SQL_KEY = "sql_filter"
# The facet filter as its URL text (explorer.facets.format_state): set by a link, the browser's facets, or Clear.
FACETS_KEY = "facet_filter"
# A link's map name is quoted in its error message up to this length.
LINK_NAME_CHARS = 80
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
    """Button callback: back to the first screen (and a URL that names no map)."""
    st.session_state.pop("map_name", None)
    reset_view()
    for param in VIEW_PARAMS:
        st.query_params.pop(param, None)


def focus_row(row_id: int) -> None:
    """Button callback: open a row's details and ring it on the map (callbacks spare a second rerun)."""
    st.session_state["selected_row"] = row_id
    st.session_state[SIDE_TAB] = DETAILS_TAB


def explain_row(row_id: int) -> None:
    """Button callback: show why a search hit matches the query."""
    st.session_state["why_row"] = row_id


def show_results() -> None:
    """Search box callback: a new query brings its results to the front."""
    st.session_state[SIDE_TAB] = RESULTS_TAB


def clear_selection() -> None:
    """Button callback: drop the box or lasso selection (the browser clears its outline from it)."""
    st.session_state.pop("selection", None)
    if st.session_state.get(SIDE_TAB) == SELECTION_TAB:
        st.session_state[SIDE_TAB] = RESULTS_TAB


def clear_facets() -> None:
    """Button callback: drop every facet's range and choice."""
    st.session_state.pop(FACETS_KEY, None)


def forget(key: str) -> None:
    """Button callback: drop one piece of view state (details, selection, explanation)."""
    st.session_state.pop(key, None)


def open_current_map():
    """The map this session has open, or None (a map deleted meanwhile closes it).

    A session that has no map yet opens the one its URL names (a reload, a bookmark, a shared
    link), with the link's query in the search box; the open map and query go back into the URL."""
    workspace = Workspace()
    name = st.session_state.get("map_name")
    if not name and MAP_PARAM in st.query_params:
        name = map_from_link(workspace)
    if not name:
        return None
    if not map_exists(workspace, name):
        st.session_state.pop("map_name", None)
        st.query_params.pop(MAP_PARAM, None)
        return None
    if st.query_params.get(MAP_PARAM) != name:
        st.query_params[MAP_PARAM] = name
    stamp = str(workspace.stamp(name))
    st.session_state["map_stamp"] = stamp
    return loaders.get_map(name, stamp)


def map_exists(workspace: Workspace, name: str) -> bool:
    """Whether ``name`` is a saved map; a value no map can be called ("..", "/", too long) is not one."""
    try:
        return workspace.exists(name)
    except (ExplorerError, OSError):
        return False


def map_from_link(workspace: Workspace) -> str | None:
    """Open the map the URL names. Any other value (unknown, empty, not a name at all) leaves one line
    for the first screen and leaves the URL, so a reload does not repeat it."""
    name = st.query_params.get(MAP_PARAM, "")
    query = st.query_params.get(QUERY_PARAM, "")
    condition = st.query_params.get(SQL_PARAM, "")
    facets = st.query_params.get(FACETS_PARAM, "")
    if not name or not map_exists(workspace, name):
        st.session_state["link_error"] = link_error(name)
        for param in VIEW_PARAMS:
            st.query_params.pop(param, None)
        return None
    show_map(name)
    if query:
        st.session_state["query"] = query
    if condition:
        st.session_state[SQL_KEY] = condition
    if facets:
        st.session_state[FACETS_KEY] = facets
    return name


def link_error(name: str) -> str:
    """The line a link to a map that is not here gets (plain text: escaped where it is shown)."""
    if not name.strip():
        return "The link names no map. Open one of the saved maps instead."
    return (f"The link names the map '{shorten(name, LINK_NAME_CHARS)}', which is not in this workspace: it may "
            "have been renamed or deleted, or built on another machine. Open one of the saved maps instead.")


def sync_query_param(query: str, param: str = QUERY_PARAM) -> None:
    """Keep the search query (or the SQL condition, with ``param``) in the URL, removed when the box is empty."""
    if query and st.query_params.get(param) != query:
        st.query_params[param] = query
    elif not query and param in st.query_params:
        st.query_params.pop(param, None)


def apply_chart_event(value) -> None:
    """The map's events since the last run, in order: a click focuses one point; a box or lasso replaces the
    selection (kept across reruns); the facets' state ({"kind": "facets", "state": {column: {range} |
    {selected}}}) replaces the facet filter.

    The browser sends every event Python has not acknowledged yet ({"events": [...]}, each numbered ``n``
    within its page's ``instance``), so a click that lands while a run is busy is not lost behind the
    next one; each is applied once. Read before anything is drawn, so an event shows up in this very run."""
    if not value:
        return
    events = value.get("events") if isinstance(value.get("events"), list) else [value]
    last = st.session_state.get("last_event") or {}
    for event in events:
        if not isinstance(event, dict):
            continue
        mark = {"instance": event.get("instance"), "n": event.get("n"), "seq": event.get("seq")}
        if mark["n"] is not None and mark["instance"] == last.get("instance") and mark["n"] <= (last.get("n") or 0):
            continue  # applied in an earlier run
        if mark["n"] is None and mark["seq"] == last.get("seq"):
            continue  # the widget keeps returning its last single event
        last = mark
        _apply_one(event)
    st.session_state["last_event"] = last


def chart_ack() -> dict | None:
    """The last map event applied ({instance, n}): the browser stops re-sending it and those before it."""
    last = st.session_state.get("last_event") or {}
    return {"instance": last.get("instance"), "n": last.get("n")} if last.get("n") is not None else None


def _apply_one(event: dict) -> None:
    if event.get("kind") == "facets":
        try:
            st.session_state[FACETS_KEY] = format_state(state_from_json(event.get("state") or {}))
        except (TypeError, ValueError, KeyError, AttributeError):
            pass  # not a state the facet strip sends: the filter stays as it was
        return
    ids = [int(i) for i in event.get("ids") or []]
    if event.get("kind") == "selection":
        st.session_state["selection"] = ids
        # Read before the side panel is drawn, so its tab can still be switched in this run.
        st.session_state[SIDE_TAB] = SELECTION_TAB if ids else RESULTS_TAB
    elif event.get("kind") == "click" and ids:
        st.session_state["selected_row"] = ids[0]
        st.session_state[SIDE_TAB] = DETAILS_TAB


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
    sql: str = ""
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
    # (kind, text) shown above the map: "info", "warning" or "error"; each text once.
    messages: list[tuple[str, str]] = field(default_factory=list)
    # The focused row's nearest neighbours in the embedding space (ringed on the map, listed in Details).
    neighbours: SearchResult | None = None
    # One line by the map on what is dimmed and why ("" when nothing is).
    dim_note: str = ""
    # How the search found its hits, when that is not by meaning (keyword matching on a pixel map).
    search_note: str = ""
    # The facet filter applied, as its canonical URL text ("" for none).
    facets: str = ""
    # The rows the other filters keep (keyword, SQL, categories; None: all): the facets count within them.
    outside_facets: np.ndarray | None = None


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
    if search.query:
        st.session_state["last_query"] = search.query
    messages.extend(("info", note) for note in result.notes)
    return result


def focused_neighbours(saved, index: int, *, k: int = 10) -> SearchResult | None:
    """The ten rows nearest to the focused one in the embedding space (None for a row without text)."""
    if not saved.embedded[index]:
        return None
    return nearest_neighbors(saved.embeddings, index, k=k, valid=saved.embedded, index=search_index(saved))


def dim_note(n_rows: int, *, filtered: int | None, cluster: pd.Series | None, shown: int) -> str:
    """What the dimming on the map means: filters, a highlighted cluster, or both ("" for neither)."""
    parts = []
    if filtered is not None:
        parts.append(f"{filtered:,} of {n_rows:,} rows match the filters")
    if cluster is not None:
        parts.append(f"cluster “{cluster['label']}” highlighted ({int(cluster['size']):,} rows)")
    if not parts:
        return ""
    tail = f"; {shown:,} shown, the rest dimmed." if len(parts) > 1 else "; the rest are dimmed."
    return " · ".join(parts) + tail


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
    title_col = title_column(points, saved.meta.text_columns or [])
    titles = loaders.get_titles(saved.name, stamp, title_col, level)
    messages: list[tuple[str, str]] = []

    result = run_search(saved, search, messages)

    keep = np.ones(len(points), dtype=bool)
    if controls.keyword:  # the texts of a big map take a second to assemble: only when filtering by them
        try:
            keep = keyword_mask(loaders.get_texts(saved.name, stamp), controls.keyword, regex=controls.regex)
        except ExplorerError as exc:
            messages.append(("warning", str(exc)))
    if controls.sql:
        sql_keep, sql_error = loaders.get_sql_mask(saved.name, stamp, controls.sql)
        if sql_error:
            messages.append(("warning", sql_error))
        else:
            keep &= sql_keep
    keep &= category_mask(points, controls.categories)
    outside_facets = None if keep.all() else keep.copy()
    facets = str(st.session_state.get(FACETS_KEY) or "").strip()
    if facets:
        facet_keep, facets, facet_error = loaders.get_facet_mask(saved.name, stamp, level, facets)
        if facet_error:
            messages.append(("warning", facet_error))
        else:
            keep &= facet_keep
    filtered = None if keep.all() else int(keep.sum())

    clusters = chosen = None
    if level is not None:
        clusters = cluster_table(saved, level)
        row = chosen_table_row(saved, level, len(clusters))
        if row is not None:
            chosen = clusters.iloc[row]
            keep &= (points[cluster_column(saved, level)] == int(chosen["id"])).to_numpy()

    neighbours = None
    if selected_row is not None:
        position = positions_of(saved.points, [selected_row])
        if len(position):
            st.session_state["selected_title"] = titles[int(position[0])]
            neighbours = focused_neighbours(saved, int(position[0]))

    style = MapStyle(
        color_by=controls.colour, hover_fields=controls.hover, title_column=title_col,
        dimmed=~keep if not keep.all() else None, selected=st.session_state.get("selection"),
        focus=selected_row, titles=titles, neighbours=None if neighbours is None else neighbours.indices,
        thumbnails=hover_thumbnails(saved),
    )
    if result is not None:
        style.hits = result.indices
        style.hit_scores = result.top_scores
        style.query_xy = place_query(saved.coords, result.indices)
        style.query_label = result.query
        if search.by_similarity:
            style.similarity = np.nan_to_num(result.scores, nan=0.0)
    if st.session_state.get(HEAT_KEY) and (heat := heat_values(saved, stamp)) is not None:
        # Screening's heat layer: every paper by the model's estimate that it is relevant.
        style.similarity, style.scale_title = heat, "likely relevant"
    if controls.show_labels and level is not None:
        # Every level goes to the browser, which shows finer labels as the map is zoomed in.
        style.labels = map_labels(saved)

    why_row = st.session_state.get("why_row")
    search_note = result.reason if result is not None and result.mode == KEYWORD else ""
    return ViewState(points=points, titles=titles, title_column=title_col, level=level, selection=selection,
                     selected_row=selected_row, why_row=why_row, clusters=clusters, chosen_cluster=chosen,
                     keep=keep, result=result, style=style, messages=list(dict.fromkeys(messages)),
                     neighbours=neighbours,
                     dim_note=dim_note(len(points), filtered=filtered, cluster=chosen, shown=int(keep.sum())),
                     search_note=search_note, facets=facets, outside_facets=outside_facets)
