"""Embedding Explorer: upload a dataset (or open the sample, or a saved map), see its map, search it."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import streamlit as st

from explorer import ExplorerError, ProjectionConfig, Workspace, build_map, load_embedder, load_table
from explorer.draw import MapStyle, build_figure, default_colour_column, shorten, title_column
from explorer.export import to_csv_bytes
from explorer.project import warm_up_umap
from explorer.search import embed_query, nearest_neighbors, query_position, search_similar
from explorer.texts import compose_texts, detect_text_columns
from explorer.view import (
    VIEW_STATE_KEYS,
    category_mask,
    display_columns,
    escape_markdown,
    filterable_columns,
    keyword_mask,
    positions_of,
    selected_row_ids,
)

SAMPLE_PAPERS = Path(__file__).parent / "sample_data" / "papers.csv"
# Tests and demos may pick another default model (e.g. "hashing"); unset means the bundled MiniLM.
DEFAULT_MODEL = os.environ.get("EXPLORER_DEFAULT_MODEL") or None
STAGE_TITLES = {"load": "Loading", "embed": "Embedding", "project": "Projecting", "save": "Saving"}

st.set_page_config(page_title="Embedding Explorer", page_icon="🗺️", layout="wide")


@st.cache_resource
def start_umap_warm_up() -> threading.Thread:
    """Compile UMAP's numba kernels once per server process, in the background."""
    thread = threading.Thread(target=warm_up_umap, name="umap-warm-up", daemon=True)
    thread.start()
    return thread


@st.cache_resource(show_spinner="Loading the model…")
def get_embedder(model: str | None):
    """One loaded model per server process, shared by every session (models are read-only)."""
    return load_embedder(model)


@st.cache_resource(max_entries=8, show_spinner="Opening the map…")
def get_map(name: str, saved_stamp: str):
    """A saved map, cached by name and save time so a rebuilt map is never served stale."""
    return Workspace().open(name)


@st.cache_data(max_entries=8, show_spinner=False)
def get_texts(name: str, saved_stamp: str) -> list[str]:
    """The embedded text of every row of a map (for keyword filters and snippets)."""
    return get_map(name, saved_stamp).texts()


def open_current_map():
    """The map this session has open, or None."""
    name = st.session_state.get("map_name")
    if not name:
        return None
    workspace = Workspace()
    if not workspace.exists(name):
        st.session_state.pop("map_name", None)
        return None
    stamp = str((workspace.map_path(name) / "manifest.json").stat().st_mtime_ns)
    st.session_state["map_stamp"] = stamp
    return get_map(name, stamp)


def reset_view() -> None:
    """Forget everything tied to the previous map."""
    for key in VIEW_STATE_KEYS:
        st.session_state.pop(key, None)


def show_map(name: str) -> None:
    """Switch this session to a saved map."""
    reset_view()
    st.session_state["map_name"] = name


# ---------------------------------------------------------------- building


def run_build(source, *, source_name: str, **options) -> None:
    """Build a map inside a status box with a live progress bar; errors are shown, nothing is lost."""
    with st.status("Building the map…", expanded=True) as status:
        stage_text = st.empty()
        bar = st.progress(0.0)
        clock = {"stage": None, "started": time.perf_counter()}

        def progress(stage: str, fraction: float, message: str = "") -> None:
            if stage != clock["stage"]:
                clock.update(stage=stage, started=time.perf_counter())
            elapsed = time.perf_counter() - clock["started"]
            eta = ""
            if stage == "embed" and 0.02 < fraction < 1:
                eta = f" · about {elapsed / fraction - elapsed:,.0f} s left"
            stage_text.markdown(f"**{STAGE_TITLES.get(stage, stage)}** — {escape_markdown(message)}{eta}")
            bar.progress(min(max(fraction, 0.0), 1.0))

        try:
            result = build_map(source, source_name=source_name, workspace=Workspace(), progress=progress,
                               **options)
        except ExplorerError as exc:
            status.update(label="The map could not be built", state="error", expanded=True)
            st.error(str(exc))
            return
        seconds = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
        status.update(label=f"Built '{result.saved.name}' in {result.total_seconds:.1f} s ({seconds})",
                      state="complete", expanded=False)
    show_map(result.saved.name)
    st.session_state["build_notes"] = result.notes
    st.rerun()


def model_picker(key: str) -> str | None:
    """The bundled model by default, or any sentence-transformers name or local folder."""
    choice = st.radio("Model", ["Bundled all-MiniLM-L6-v2", "Other sentence-transformers model"],
                      key=f"{key}_model_choice", horizontal=True)
    if choice.startswith("Bundled"):
        return DEFAULT_MODEL
    name = st.text_input("Model name or local folder", key=f"{key}_model_name",
                         placeholder="e.g. sentence-transformers/all-mpnet-base-v2 or /models/my-model")
    return name.strip() or DEFAULT_MODEL


def projection_settings(key: str) -> ProjectionConfig:
    """UMAP/PCA settings, folded away."""
    with st.expander("Advanced"):
        method = st.selectbox("Projection", ["umap", "pca"], key=f"{key}_method",
                              format_func=lambda m: {"umap": "UMAP (best map)", "pca": "PCA (fastest)"}[m])
        n_neighbors = st.slider("UMAP neighbours", 2, 100, 15, key=f"{key}_nn",
                                help="Small values keep local detail; large values show the global shape.")
        min_dist = st.slider("UMAP minimum distance", 0.0, 0.99, 0.1, key=f"{key}_md")
        seed = st.number_input("Random seed", 0, 2**31 - 1, 42, key=f"{key}_seed")
    return ProjectionConfig(method=method, n_neighbors=n_neighbors, min_dist=min_dist, seed=int(seed))


def upload_form(uploaded) -> None:
    """Preview an uploaded table and let the user choose what to embed."""
    data = uploaded.getvalue()
    try:
        table = load_table(data, name=uploaded.name)
    except ExplorerError as exc:
        st.error(str(exc))
        return
    for note in table.notes:
        st.info(note)
    frame = table.frame
    st.caption(f"{len(frame):,} rows × {frame.shape[1]} columns. First rows:")
    st.dataframe(frame.head(20), hide_index=True, width="stretch")
    detected = detect_text_columns(frame)
    columns = st.multiselect("Text to embed", list(frame.columns), default=detected, key="upload_columns",
                             help="Non-empty values of these columns are joined with '. '.")
    template = st.text_input("…or a template", key="upload_template", placeholder="{title}. {abstract}",
                             help="Overrides the columns above when filled in.")
    try:
        selection = compose_texts(frame, columns=columns or None, template=template or None)
        st.caption("Text of the first row: " + escape_markdown(shorten(selection.texts[0], 200)))
    except ExplorerError as exc:
        st.warning(str(exc))
    model = model_picker("upload")
    name = st.text_input("Map name", value=Path(uploaded.name).stem, key="upload_name")
    projection = projection_settings("upload")
    if st.button("Build map", type="primary", key="build_upload"):
        run_build(table, source_name=uploaded.name, name=name or None, text_columns=columns or None,
                  template=template or None, model=model, projection=projection)


def landing() -> None:
    """The first screen: three ways in."""
    st.title("Embedding Explorer")
    st.write("See a dataset as a map: every row is embedded, similar rows land close together, "
             "and a search lights up the rows closest to your query.")
    upload_col, sample_col, saved_col = st.columns([2, 1, 1], gap="large")
    with upload_col:
        st.subheader("Upload a table")
        uploaded = st.file_uploader("CSV, TSV, JSON, JSONL, Parquet or XLSX", key="upload",
                                    type=["csv", "tsv", "txt", "json", "jsonl", "ndjson", "parquet", "xlsx"])
    with sample_col:
        st.subheader("Try the sample")
        st.caption(f"{SAMPLE_PAPERS.stem}: ~500 well-known papers from eight fields, mapped by title.")
        if st.button("Try the sample papers", type="primary", key="try_sample"):
            st.session_state["building_sample"] = True
    with saved_col:
        st.subheader("Open a saved map")
        maps = Workspace().list()
        if maps:
            chosen = st.selectbox("Saved maps", [m.name for m in maps], key="open_choice")
            if st.button("Open", key="open_saved"):
                show_map(chosen)
                st.rerun()
        else:
            st.caption("No saved maps yet.")
    if st.session_state.pop("building_sample", False):
        run_build(SAMPLE_PAPERS, source_name=SAMPLE_PAPERS.name, name="Sample papers", model=DEFAULT_MODEL)
    if uploaded is not None:
        st.divider()
        upload_form(uploaded)


# ---------------------------------------------------------------- the map


def sidebar_controls(saved) -> dict:
    """Colour, hover and filter choices for the open map."""
    points = saved.points
    columns = display_columns(points)
    with st.sidebar:
        st.header(escape_markdown(saved.name))
        st.caption(f"{saved.manifest['embedded_rows']:,} of {saved.manifest['rows']:,} rows on the map · "
                   f"{escape_markdown(saved.manifest['model_id'])}")
        if st.button("New map", key="new_map"):
            st.session_state.pop("map_name", None)
            reset_view()
            st.rerun()
        candidates = [c for c in columns if c != "row_id"]
        categorical = filterable_columns(points)
        default_colour = default_colour_column(points)
        options = ["(none)", *candidates]
        colour = st.selectbox("Colour by", options, key="colour_by",
                              index=options.index(default_colour) if default_colour in options else 0)
        hover = st.multiselect("Show on hover", candidates, key="hover_fields", max_selections=2,
                               default=[c for c in ("year", "field") if c in candidates][:2])
        st.subheader("Filter")
        keyword = st.text_input("Keyword in text", key="keyword")
        regex = st.checkbox("Regular expression", key="keyword_regex")
        chosen = {}
        for col in categorical[:6]:
            values = sorted(points[col].astype("string").fillna("(missing)").unique().tolist())
            chosen[col] = st.multiselect(f"{col}", values, key=f"filter_{col}")
    return {"colour": None if colour == "(none)" else colour, "hover": hover, "keyword": keyword,
            "regex": regex, "categories": chosen}


def search_controls() -> dict:
    """The search box and its sliders."""
    box, k_col, t_col, sim_col = st.columns([4, 1.2, 1.2, 1.2])
    query = box.text_input("Search the map", key="query", placeholder="e.g. protein folding")
    k = k_col.slider("Results", 1, 50, 10, key="k")
    threshold = t_col.slider("Min. similarity", 0.0, 1.0, 0.0, 0.05, key="threshold")
    by_similarity = sim_col.checkbox("Colour by similarity", key="colour_by_similarity")
    return {"query": query.strip(), "k": k, "threshold": threshold, "by_similarity": by_similarity}


def run_search(saved, query: str, *, k: int, threshold: float):
    """Embed the query with the map's model and rank the rows; None when there is no query."""
    if not query:
        return None
    try:
        vector = embed_query(query, get_embedder(saved.manifest.get("model")))
    except ExplorerError as exc:
        st.error(str(exc))
        return None
    result = search_similar(saved.embeddings, vector, k=k, threshold=threshold or None, valid=saved.embedded)
    result.query = query
    st.session_state["last_query"] = query
    return result


def handle_chart_event(event) -> None:
    """A click focuses one point; a box or lasso replaces the selection (kept across reruns)."""
    selection = event.get("selection") if event else None
    if not selection:
        return
    signature = repr((selection.get("points"), selection.get("box"), selection.get("lasso")))
    if signature == st.session_state.get("last_event"):
        return
    st.session_state["last_event"] = signature
    ids = selected_row_ids(selection.get("points", []))
    if selection.get("box") or selection.get("lasso"):
        st.session_state["selection"] = ids
    elif len(ids) == 1:
        st.session_state["selected_row"] = ids[0]


def results_panel(saved, result, titles) -> None:
    """Ranked search hits, each a button that focuses the point and opens its details."""
    st.subheader("Results")
    if len(result.indices) == 0:
        st.caption("Nothing above the similarity threshold.")
    row_ids = saved.points["row_id"].to_numpy()
    for rank, idx in enumerate(result.indices, start=1):
        label = f"{rank}. {result.scores[idx]:.2f} · {escape_markdown(shorten(titles[idx], 90))}"
        hit_col, why_col = st.columns([6, 1], gap="small", vertical_alignment="center")
        if hit_col.button(label, key=f"hit_{rank}_{row_ids[idx]}", width="stretch"):
            st.session_state["selected_row"] = int(row_ids[idx])
            st.rerun()
        if why_col.button("why?", key=f"why_{rank}_{row_ids[idx]}", help="Which words made this a match"):
            st.session_state["why_row"] = int(row_ids[idx])
    why_row = st.session_state.get("why_row")
    if why_row is not None and why_row in set(row_ids[result.indices].tolist()):
        why_panel(saved, result.query, why_row)


def why_panel(saved, query: str, row_id: int) -> None:
    """The query's and the hit's tokens shaded by their share of the cosine similarity."""
    from explorer.explain import explain_hit
    from explorer.explain_figures import match_figure

    with st.expander("Why this match", expanded=True):
        try:
            explanation = explain_hit(saved, query, row_id, embedder=get_embedder(saved.manifest.get("model")))
        except ExplorerError as exc:
            st.info(str(exc))
            return
        st.caption(f"Cosine {explanation.cosine:.3f}: each token's share of it; the shares add up to the score.")
        st.plotly_chart(match_figure(explanation), key="why_figure")
        if st.button("Hide", key="why_hide"):
            st.session_state.pop("why_row", None)
            st.rerun()


def details_panel(saved, row_id: int, titles) -> None:
    """The full row and its ten nearest neighbours in embedding space, each clickable."""
    pos = positions_of(saved.points, [row_id])
    if len(pos) == 0:
        return
    i = int(pos[0])
    st.subheader("Details")
    st.session_state["selected_title"] = titles[i]
    st.text(shorten(titles[i], 300))
    row = saved.points.iloc[i][display_columns(saved.points)]
    st.dataframe({"field": [str(c) for c in row.index], "value": [str(v) for v in row.to_numpy()]},
                 hide_index=True, width="stretch")
    if st.button("Close details", key="close_details"):
        st.session_state.pop("selected_row", None)
        st.session_state.pop("last_event", None)
        st.rerun()
    if not saved.embedded[i]:
        st.caption("This row has no text, so it has no neighbours.")
        return
    st.markdown("**Nearest neighbours**")
    neighbours = nearest_neighbors(saved.embeddings, i, k=10, valid=saved.embedded)
    row_ids = saved.points["row_id"].to_numpy()
    for idx in neighbours.indices:
        label = f"{neighbours.scores[idx]:.2f} · {escape_markdown(shorten(titles[idx], 80))}"
        if st.button(label, key=f"nn_{row_id}_{row_ids[idx]}", width="stretch"):
            st.session_state["selected_row"] = int(row_ids[idx])
            st.rerun()


def selection_table(saved) -> None:
    """The lasso/box selection as a table with a CSV download."""
    ids = st.session_state.get("selection") or []
    if not ids:
        st.caption("Tip: drag a lasso or a box on the map to select points; click a point for details.")
        return
    rows = saved.points.iloc[positions_of(saved.points, ids)][display_columns(saved.points)]
    st.subheader(f"Selection: {len(rows):,} rows")
    left, right = st.columns([1, 1])
    left.download_button("Download CSV", to_csv_bytes(rows), file_name=f"{saved.name}-selection.csv",
                         mime="text/csv", key="download_selection")
    if right.button("Clear selection", key="clear_selection"):
        st.session_state.pop("selection", None)
        st.rerun()
    st.dataframe(rows, hide_index=True, width="stretch")


def map_view(saved, controls: dict) -> None:
    """Search bar, the map, the side panel and the selection table."""
    points = saved.points
    stamp = st.session_state["map_stamp"]
    texts = get_texts(saved.name, stamp)
    title_col = title_column(points, saved.manifest.get("text_columns") or [])
    titles = points[title_col].astype("string").fillna("").tolist() if title_col else texts
    search = search_controls()
    # Read the chart's event before drawing, so a click or lasso shows up in this very run.
    handle_chart_event(st.session_state.get("map"))
    result = run_search(saved, search["query"], k=search["k"], threshold=search["threshold"])
    try:
        keep = keyword_mask(texts, controls["keyword"], regex=controls["regex"])
    except ExplorerError as exc:
        st.warning(str(exc))
        keep = np.ones(len(points), dtype=bool)
    keep &= category_mask(points, controls["categories"])
    style = MapStyle(
        color_by=controls["colour"], hover_fields=controls["hover"], title_column=title_col,
        dimmed=~keep if not keep.all() else None, selected=st.session_state.get("selection"),
        focus=st.session_state.get("selected_row"),
    )
    if result is not None:
        style.hits = result.indices
        style.hit_scores = result.top_scores
        style.query_xy = query_position(saved.coords, result)
        style.query_label = result.query
        if search["by_similarity"]:
            style.similarity = np.nan_to_num(result.scores, nan=0.0)
    map_col, side_col = st.columns([3, 1.3], gap="medium")
    with map_col:
        if not keep.all():
            st.caption(f"{int(keep.sum()):,} of {len(points):,} rows match the filters; the rest are dimmed.")
        st.plotly_chart(build_figure(points, style=style), key="map", on_select="rerun",
                        selection_mode=("points", "box", "lasso"),
                        config={"scrollZoom": True, "displaylogo": False})
    with side_col:
        if st.session_state.get("selected_row") is not None:
            details_panel(saved, int(st.session_state["selected_row"]), titles)
        if result is not None:
            results_panel(saved, result, titles)
        elif st.session_state.get("selected_row") is None:
            st.caption("Search above, or click a point to see its details and nearest neighbours.")
    selection_table(saved)


def main() -> None:
    """Route between the first screen and the open map."""
    start_umap_warm_up()
    saved = open_current_map()
    if saved is None:
        landing()
        return
    for note in st.session_state.pop("build_notes", []):
        st.info(note)
    controls = sidebar_controls(saved)
    map_view(saved, controls)


main()
