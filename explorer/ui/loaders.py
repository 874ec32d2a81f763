"""Every cached loader of the app: maps, their texts and titles, models, and background warm-ups.

Models are read-only, so one loaded model serves every session and page of the server. A map is
cached by its name and its save stamp, so a rebuilt or re-clustered map is never served stale.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections.abc import Callable

import numpy as np
import streamlit as st

from explorer.draw import default_colour_column
from explorer.duplicates import near_duplicates
from explorer.embedders import embedder_for, load_embedder
from explorer.errors import ExplorerError
from explorer.facets import DATE, encode_facets, facet_columns, facet_mask, format_state, pack_facets, parse_state
from explorer.filters import display_columns, filterable_columns
from explorer.grow import newest_batch
from explorer.labels import contrast_terms
from explorer.map_clusters import cluster_cards, cluster_id_columns, labelled_points, named_points
from explorer.project import warm_up_umap
from explorer.sql_filter import sql_mask
from explorer.store import Workspace

# Filters offered in the sidebar: the first few categorical columns.
MAX_FILTERS = 6


def _warm_up_and_report() -> None:
    # The line in the server log tells benchmarks when the CPU is free again (the compiling holds it).
    print(f"explorer: UMAP warm-up done in {warm_up_umap():.1f} s", file=sys.stderr, flush=True)


@st.cache_resource
def start_umap_warm_up() -> threading.Thread:
    """Compile UMAP's numba kernels once per server process, in the background."""
    thread = threading.Thread(target=_warm_up_and_report, name="umap-warm-up", daemon=True)
    thread.start()
    return thread


@st.cache_resource(show_spinner="Loading the model…")
def get_embedder(model: str | None, kind: str = "text"):
    """One loaded model per server process, shared by every session and page; its weights are
    read here, inside the spinner, not by the first text embedded."""
    return _with_weights(load_embedder(model, kind=kind))


def _with_weights(embedder):
    """The embedder with its weights read now (a transformer loads them lazily, at its first text)."""
    if hasattr(type(embedder), "model"):
        # Assigned, as a bare expression would be Streamlit magic.
        _ = embedder.model
    return embedder


@st.cache_resource(show_spinner="Checking the CLIP model…")
def clip_problem(model: str) -> str | None:
    """Why a CLIP model cannot be loaded here (None when it can)."""
    try:
        get_embedder(model, "images")
    except ExplorerError as exc:
        return str(exc)
    return None


@st.cache_resource(max_entries=8, show_spinner="Opening the map…")
def get_map(name: str, stamp: str):
    """A saved map, cached by name and save stamp."""
    return Workspace().open(name, mmap=True)  # vectors are paged in by the first search, not read at open


@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def map_embedder(name: str, stamp: str):
    """The model a map's queries go through (the library's own, kept by embedder_for), weights loaded."""
    return _with_weights(embedder_for(get_map(name, stamp)))


@st.cache_resource(max_entries=8, show_spinner=False)
def get_texts(name: str, stamp: str) -> list[str]:
    """The embedded text of every row of a map (for keyword filters and snippets)."""
    return get_map(name, stamp).texts()


@st.cache_data(max_entries=16, show_spinner=False)
def get_sql_mask(name: str, stamp: str, condition: str) -> tuple[np.ndarray | None, str]:
    """The rows the SQL condition keeps, or None and the one line saying why it cannot run (kept too, so a
    condition that hits the time limit costs it once, not on every rerun)."""
    try:
        return sql_mask(get_map(name, stamp).points, condition), ""
    except ExplorerError as exc:
        return None, str(exc)


@st.cache_data(max_entries=16, show_spinner=False)
def get_facet_mask(name: str, stamp: str, level: str | None, text: str) -> tuple[np.ndarray | None, str, str]:
    """The rows a facet filter (its URL text) keeps, its canonical text (date bounds as ISO days), or None and
    the one line saying why it cannot apply."""
    points = display_points(name, stamp, level)
    try:
        state = parse_state(text)
        return facet_mask(points, state), format_state(state, dates=facet_dates(name, stamp, level)), ""
    except ExplorerError as exc:
        return None, text, str(exc)


@st.cache_resource(max_entries=8, show_spinner=False)
def facets_of(name: str, stamp: str, level: str | None):
    """The map's facets (explorer.facets), chosen once per map and level."""
    hidden = cluster_id_columns(get_map(name, stamp))
    return facet_columns(display_points(name, stamp, level), skip=hidden)


def facet_dates(name: str, stamp: str, level: str | None) -> list[str]:
    """The map's date facets, whose bounds the URL writes as ISO days."""
    return [f.name for f in facets_of(name, stamp, level) if f.kind == DATE]


@st.cache_resource(max_entries=4, show_spinner=False)
def facet_payload(name: str, stamp: str, level: str | None) -> tuple[str, bytes]:
    """The facets' header and blob for the browser (explorer.facets.encode_facets), once per map and level."""
    return encode_facets(display_points(name, stamp, level), facets_of(name, stamp, level))


def facet_file(name: str, stamp: str, level: str | None) -> tuple[str, Callable[[], bytes]]:
    """(a key, the maker of the map's facets file: explorer.facets.pack_facets) for the map's facet strip."""
    key = hashlib.sha256(f"{name}:{stamp}:{level}".encode()).hexdigest()[:16]

    def build() -> bytes:
        header, blob = facet_payload(name, stamp, level)
        return pack_facets(header, blob, display_points(name, stamp, level)["row_id"].to_numpy())

    return key, build


@st.cache_resource(max_entries=8, show_spinner=False)
def get_newest_batch(name: str, stamp: str, level: str | None):
    """A grown map's newest batch (explorer.grow.newest_batch), once per map version and level."""
    return newest_batch(get_map(name, stamp), level)


@st.cache_resource(max_entries=8, show_spinner=False)
def get_cluster_cards(name: str, stamp: str, level: str) -> dict:
    """The map's cluster cards at ``level`` by cluster id (explorer.cluster_cards), once per map version."""
    return {card.id: card for card in cluster_cards(get_map(name, stamp), level)}


@st.cache_resource(max_entries=8, show_spinner=False)
def display_points(name: str, stamp: str, level: str | None):
    """The map's points plus, when it has clusters, each point's cluster label (for colour and filters)."""
    return labelled_points(get_map(name, stamp), level)


@st.cache_resource(max_entries=8, show_spinner=False)
def get_named_points(name: str, stamp: str):
    """The map's points with cluster names instead of cluster ids (for Details and the selection CSV)."""
    return named_points(get_map(name, stamp))


@st.cache_resource(max_entries=8, show_spinner=False)
def get_titles(name: str, stamp: str, column: str | None, level: str | None) -> list[str]:
    """The short name of every row (its title column, else its text), for lists and hover."""
    if column is None:
        return get_texts(name, stamp)
    return display_points(name, stamp, level)[column].astype("string").fillna("").tolist()


@st.cache_resource(max_entries=8, show_spinner=False)
def column_roles(name: str, stamp: str, level: str | None) -> dict:
    """Which columns can colour, label and filter the map, with each filter's values (once per map)."""
    points = display_points(name, stamp, level)
    # Cluster ids are shown through their labels; the raw id columns would only repeat them.
    hidden = {"row_id", *cluster_id_columns(get_map(name, stamp))}
    categorical = [c for c in filterable_columns(points) if c not in hidden][:MAX_FILTERS]
    return {
        "candidates": [c for c in display_columns(points) if c not in hidden],
        "default_colour": default_colour_column(points),
        "filters": {c: sorted(points[c].astype("string").fillna("(missing)").unique().tolist()) for c in categorical},
    }


@st.cache_resource(max_entries=16, show_spinner="Counting words…")
def contrast_of(name: str, stamp: str, level: str, a: str, b: str, selection_key: int, *, _a, _b):
    """The contrast of two groups of a map, cached by the map and the two groups' names."""
    return contrast_terms(get_texts(name, stamp), _a, _b)


def prefetch_map(name: str) -> None:
    """Read the map chosen under "Open a saved map" in the background, so "Open" finds it in memory
    (reading 100k rows with their abstracts takes over a second)."""
    workspace = Workspace()
    if workspace.exists(name):
        threading.Thread(target=get_map, args=(name, str(workspace.stamp(name))), name="map-prefetch",
                         daemon=True).start()


@st.cache_resource(max_entries=4, show_spinner=False)
def duplicates_of(name: str, stamp: str, threshold: float):
    """A map's near-duplicate groups at ``threshold`` (explorer.duplicates), once per map and threshold."""
    saved = get_map(name, stamp)
    return near_duplicates(saved.embeddings, threshold=threshold, valid=saved.embedded)
