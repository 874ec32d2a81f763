"""Embedding Explorer: upload a dataset (or open the sample, or a saved map), see its map, search it."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import streamlit as st

from explorer import ExplorerError, ProjectionConfig, Workspace, build_map, load_embedder, load_table
from explorer.cluster import ClusterConfig, config_for_rows
from explorer.curate import remove_and_reproject
from explorer.draw import (
    CLUSTER_LABEL_COLUMN,
    MapStyle,
    default_colour_column,
    place_labels,
    shorten,
    title_column,
)
from explorer.export import to_csv_bytes
from explorer.hashing import file_sha256
from explorer.image_embed import DEFAULT_CLIP_MODEL, KEYWORD, PIXEL_MODEL, load_image_embedder
from explorer.image_pipeline import IMAGE_KIND, build_image_map
from explorer.image_search import search_images_by_example, search_images_by_text
from explorer.images import read_images
from explorer.labels import contrast_terms
from explorer.map_clusters import add_clusters, cluster_levels, cluster_table, point_labels, rename_cluster
from explorer.modes import MODES, choose_mode_for_texts
from explorer.project import warm_up_umap
from explorer.search import embed_query, nearest_neighbors, query_notes, query_position, search_similar
from explorer.texts import compose_texts, detect_text_columns
from explorer.thumbnails import has_thumbnails, load_thumbnails
from explorer.view import (
    VIEW_STATE_KEYS,
    category_mask,
    display_columns,
    escape_markdown,
    filterable_columns,
    keyword_mask,
    positions_of,
)
from map_widget import map_chart

SAMPLE_PAPERS = Path(__file__).parent / "sample_data" / "papers.csv"
SAMPLE_IMAGES = Path(__file__).parent / "sample_data" / "images"
SAMPLE_MAP = "Sample papers"
SELECTION_TABLE_ROWS = 1_000
IMAGE_TYPES = ["zip", "jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"]
# Tests and demos may pick another default model (e.g. "hashing"); unset means the bundled MiniLM.
DEFAULT_MODEL = os.environ.get("EXPLORER_DEFAULT_MODEL") or None
STAGE_TITLES = {"load": "Loading", "embed": "Embedding", "project": "Projecting", "save": "Saving"}

st.set_page_config(page_title="Embedding Explorer", page_icon="🗺️", layout="wide")


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
    """One loaded model per server process, shared by every session (models are read-only)."""
    return load_image_embedder(model) if kind == IMAGE_KIND else load_embedder(model)


def map_embedder(saved):
    """The embedder a saved map was built with."""
    return get_embedder(saved.manifest.get("model"), saved.manifest.get("kind", "text"))


@st.cache_resource(show_spinner="Checking the CLIP model…")
def clip_problem(model: str) -> str | None:
    """Why a CLIP model cannot be loaded here (None when it can)."""
    try:
        get_embedder(model, IMAGE_KIND)
    except ExplorerError as exc:
        return str(exc)
    return None


@st.cache_resource(max_entries=8, show_spinner="Opening the map…")
def get_map(name: str, saved_stamp: str):
    """A saved map, cached by name and save time so a rebuilt map is never served stale."""
    return Workspace().open(name, mmap=True)  # vectors are paged in by the first search, not read at open


@st.cache_resource(max_entries=8, show_spinner=False)
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
    stamp = stamp_of(workspace, name)
    st.session_state["map_stamp"] = stamp
    return get_map(name, stamp)


def stamp_of(workspace: Workspace, name: str) -> str:
    """When the map was last saved: part of every cache key, so a rebuilt map is never served stale."""
    return str((workspace.map_path(name) / "manifest.json").stat().st_mtime_ns)


def prefetch_map(name: str) -> None:
    """Read the map chosen under "Open a saved map" in the background, so "Open" finds it in memory
    (reading 100k rows with their abstracts takes over a second)."""
    workspace = Workspace()
    if workspace.exists(name):
        threading.Thread(target=get_map, args=(name, stamp_of(workspace, name)), name="map-prefetch",
                         daemon=True).start()


def reset_view() -> None:
    """Forget everything tied to the previous map."""
    for key in VIEW_STATE_KEYS:
        st.session_state.pop(key, None)


def show_map(name: str) -> None:
    """Switch this session to a saved map."""
    reset_view()
    st.session_state["map_name"] = name


# ---------------------------------------------------------------- building


def run_build(source, *, builder=build_map, replace: bool = False, **options) -> None:
    """Build a map inside a status box with a live progress bar; errors are shown, nothing is lost.

    Unless ``replace``, the map gets a free name ("data (2)"): another session's map of the same
    name must never be overwritten under it."""
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
            workspace = Workspace()
            if options.get("name") and not replace:
                options["name"] = workspace.unique_name(options["name"])
            result = builder(source, workspace=workspace, progress=progress, **options)
        except ExplorerError as exc:
            status.update(label="The map could not be built", state="error", expanded=True)
            st.error(str(exc))
            return
        seconds = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
        status.update(label=f"Built '{result.saved.name}' in {result.total_seconds:.1f} s ({seconds})",
                      state="complete", expanded=False)
    show_map(result.saved.name)
    notes = list(result.notes)
    if getattr(result, "skipped", None):
        notes.append(f"Skipped {len(result.skipped):,} file(s): " + "; ".join(
            f"{name}: {reason}" for name, reason in result.skipped[:10]) + (" …" if len(result.skipped) > 10 else ""))
    if getattr(result, "text_search", None) == KEYWORD:
        notes.append(result.text_search_reason)
    st.session_state["build_notes"] = notes
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
    selection = None
    try:
        selection = compose_texts(frame, columns=columns or None, template=template or None)
        st.caption("Text of the first row: " + escape_markdown(shorten(selection.texts[0], 200)))
    except ExplorerError as exc:
        st.warning(str(exc))
    model = model_picker("upload")
    mode = "auto"
    if model is None:
        mode = st.radio("Embedding mode", list(MODES), key="upload_mode", horizontal=True,
                        format_func=lambda m: {"auto": "Auto (by size)", "fast": "Fast (TF-IDF + SVD)",
                                               "quality": "Quality (the transformer)"}[m])
        if selection is not None:
            texts = [t for t, keep in zip(selection.texts, selection.embedded, strict=True) if keep]
            st.info(choose_mode_for_texts(texts, requested=mode).reason)
    name = st.text_input("Map name", value=Path(uploaded.name).stem, key="upload_name")
    find_clusters = st.checkbox("Find clusters and label them", value=True, key="upload_clusters",
                                help="Topic labels drawn on the map; adds a few seconds.")
    projection = projection_settings("upload")
    if st.button("Build map", type="primary", key="build_upload"):
        run_build(table, source_name=uploaded.name, name=name or None, text_columns=columns or None,
                  template=template or None, model=model, mode=mode, projection=projection,
                  clusters=config_for_rows(len(frame)) if find_clusters else None)


def image_form(files) -> None:
    """Preview uploaded images, say what was skipped, and choose CLIP or the offline embedder."""
    source = files[0].getvalue() if len(files) == 1 and files[0].name.lower().endswith(".zip") else files
    try:
        image_set = read_images(source, name=files[0].name if len(files) == 1 else "upload")
    except ExplorerError as exc:
        st.error(str(exc))
        return
    for note in image_set.notes:
        st.info(note)
    if image_set.skipped:
        with st.expander(f"{len(image_set.skipped):,} file(s) skipped", expanded=True):
            st.dataframe({"file": [n for n, _ in image_set.skipped], "reason": [r for _, r in image_set.skipped]},
                         hide_index=True, width="stretch")
    if len(image_set) == 0:
        st.error("None of the uploaded files is a readable image. Upload JPEG, PNG, WebP, GIF, BMP or TIFF files.")
        return
    st.caption(f"{len(image_set):,} images. The first ones:")
    frame = image_set.frame
    st.image(image_set.thumbnails[:24], width=72,
             caption=[str(label or file)[:20] for file, label in zip(frame["file"][:24], frame["label"][:24],
                                                                     strict=True)])
    choice = st.radio("Embedding", ["CLIP (text and images in one space)", "Offline pixel features (no weights)"],
                      key="image_model_choice", horizontal=True)
    model = PIXEL_MODEL
    if choice.startswith("CLIP"):
        model = st.text_input("CLIP model name or folder", value=DEFAULT_CLIP_MODEL, key="image_clip_name").strip()
        problem = clip_problem(model or DEFAULT_CLIP_MODEL)
        if problem:
            st.warning(f"{problem} Choose the offline pixel features: they need no download; text search "
                       "will then match file names and labels only.")
    name = st.text_input("Map name", value=Path(files[0].name).stem if len(files) == 1 else "images",
                         key="image_map_name")
    projection = projection_settings("images")
    if st.button("Build map", type="primary", key="build_images",
                 disabled=choice.startswith("CLIP") and bool(clip_problem(model or DEFAULT_CLIP_MODEL))):
        run_build(image_set, builder=build_image_map, name=name or None, model=model, projection=projection)


def sample_map_is_current() -> bool:
    """Whether the saved sample map was built from today's sample file with the default model."""
    workspace = Workspace()
    if not workspace.exists(SAMPLE_MAP):
        return False
    manifest = workspace.open(SAMPLE_MAP, mmap=True).manifest
    expected_model = load_embedder(DEFAULT_MODEL).model_id
    return (manifest.get("source", {}).get("sha256") == file_sha256(SAMPLE_PAPERS)
            and manifest.get("model_id") == expected_model and bool(manifest.get("clusters")))


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
        images = st.file_uploader("…or images: several files, or a ZIP (its folders become labels)",
                                  key="upload_images", type=IMAGE_TYPES, accept_multiple_files=True)
    with sample_col:
        st.subheader("Try the sample")
        st.caption(f"{SAMPLE_PAPERS.stem}: ~500 well-known papers from eight fields, mapped by title.")
        if st.button("Try the sample papers", type="primary", key="try_sample"):
            st.session_state["building_sample"] = True
        st.caption("300 handwritten digits (scikit-learn's set), one folder per digit.")
        if st.button("Try the sample digits", key="try_sample_images"):
            st.session_state["building_sample_images"] = True
    with saved_col:
        st.subheader("Open a saved map")
        maps = Workspace().list()
        if maps:
            chosen = st.selectbox("Saved maps", [m.name for m in maps], key="open_choice")
            prefetch_map(chosen)
            if st.button("Open", key="open_saved"):
                show_map(chosen)
                st.rerun()
        else:
            st.caption("No saved maps yet.")
    if st.session_state.pop("building_sample", False):
        if sample_map_is_current():
            show_map(SAMPLE_MAP)
            st.rerun()
        run_build(SAMPLE_PAPERS, source_name=SAMPLE_PAPERS.name, name=SAMPLE_MAP, model=DEFAULT_MODEL,
                  clusters=ClusterConfig(), replace=True)
    if st.session_state.pop("building_sample_images", False):
        run_build(SAMPLE_IMAGES, builder=build_image_map, name="Sample digits", model=PIXEL_MODEL)
    if uploaded is not None:
        st.divider()
        upload_form(uploaded)
    elif images:
        st.divider()
        image_form(images)


# ---------------------------------------------------------------- the map


@st.cache_resource(max_entries=8, show_spinner=False)
def display_points(name: str, stamp: str, level: str | None):
    """The map's points plus, when it has clusters, each point's cluster label (for colour and filters)."""
    saved = get_map(name, stamp)
    if level is None:
        return saved.points
    return saved.points.assign(**{CLUSTER_LABEL_COLUMN: point_labels(saved, level)})


@st.cache_resource(max_entries=8, show_spinner=False)
def column_roles(name: str, stamp: str, level: str | None) -> dict:
    """Which columns can colour, label and filter the map, with each filter's values (once per map)."""
    saved = get_map(name, stamp)
    points = display_points(name, stamp, level)
    # Cluster ids are shown through their labels; the raw id columns would only repeat them.
    hidden = {"row_id", *(cluster_column(saved, lvl) for lvl in cluster_levels(saved))}
    categorical = [c for c in filterable_columns(points) if c not in hidden][:6]
    return {
        "candidates": [c for c in display_columns(points) if c not in hidden],
        "default_colour": default_colour_column(points),
        "filters": {c: sorted(points[c].astype("string").fillna("(missing)").unique().tolist()) for c in categorical},
    }


def sidebar_controls(saved) -> dict:
    """Colour, hover, cluster and filter choices for the open map."""
    levels = cluster_levels(saved)
    with st.sidebar:
        st.header(escape_markdown(saved.name))
        st.caption(f"{saved.manifest['embedded_rows']:,} of {saved.manifest['rows']:,} rows on the map · "
                   f"{escape_markdown(saved.manifest['model_id'])}")
        if st.button("New map", key="new_map"):
            st.session_state.pop("map_name", None)
            reset_view()
            st.rerun()
        level = None
        show_labels = False
        if levels:
            show_labels = st.checkbox("Cluster labels on the map", value=True, key="show_labels")
            fine = "fine" in levels and st.toggle("Fine clusters", key="fine_clusters",
                                                  help="Smaller clusters with more specific labels.")
            level = "fine" if fine else levels[0]
        stamp = st.session_state["map_stamp"]
        points = display_points(saved.name, stamp, level)
        roles = column_roles(saved.name, stamp, level)
        candidates, default_colour = roles["candidates"], roles["default_colour"]
        options = ["(none)", *candidates]
        colour = st.selectbox("Colour by", options, key="colour_by",
                              index=options.index(default_colour) if default_colour in options else 0)
        hover = st.multiselect("Show on hover", candidates, key="hover_fields", max_selections=2,
                               default=[c for c in ("year", "field") if c in candidates][:2])
        st.subheader("Filter")
        keyword = st.text_input("Keyword in text", key="keyword")
        regex = st.checkbox("Regular expression", key="keyword_regex")
        chosen = {}
        for col, values in roles["filters"].items():
            chosen[col] = st.multiselect(f"{col}", values, key=f"filter_{col}")
    return {"colour": None if colour == "(none)" else colour, "hover": hover, "keyword": keyword,
            "regex": regex, "categories": chosen, "level": level, "show_labels": show_labels, "points": points}


def search_controls(*, images: bool) -> dict:
    """The search box and its sliders (plus search by an example image on image maps)."""
    box, k_col, t_col, sim_col = st.columns([4, 1.2, 1.2, 1.2])
    query = box.text_input("Search the map", key="query",
                           placeholder="e.g. a digit's label, or a description" if images else "e.g. protein folding")
    k = k_col.slider("Results", 1, 50, 10, key="k")
    threshold = t_col.slider("Min. similarity", 0.0, 1.0, 0.0, 0.05, key="threshold")
    by_similarity = sim_col.checkbox("Colour by similarity", key="colour_by_similarity")
    example = None
    if images:
        upload = st.file_uploader("…or search by an example image", key="example_image",
                                  type=[t for t in IMAGE_TYPES if t != "zip"])
        example = upload.getvalue() if upload is not None else None
    return {"query": query.strip(), "k": k, "threshold": threshold, "by_similarity": by_similarity,
            "example": example}


def run_search(saved, query: str, *, k: int, threshold: float, example: bytes | None = None):
    """Rank the rows by a query (or, on image maps, an example image); None when there is neither."""
    if not query and example is None:
        return None
    try:
        if example is not None:
            result = search_images_by_example(saved, example, embedder=map_embedder(saved), k=k)
            result.query = "example image"
        elif saved.manifest.get("kind") == IMAGE_KIND:
            embedder = map_embedder(saved) if saved.manifest.get("text_search") != KEYWORD else None
            result = search_images_by_text(saved, query, embedder=embedder, k=k, threshold=threshold or None)
            if result.mode == KEYWORD:
                st.info(result.reason)
        else:
            vector = embed_query(query, map_embedder(saved))
            result = search_similar(saved.embeddings, vector, k=k, threshold=threshold or None,
                                    valid=saved.embedded)
            result.query = query
    except ExplorerError as exc:
        st.error(str(exc))
        return None
    if query:
        st.session_state["last_query"] = query
        for note in query_notes(query):
            st.info(note)
    return result


def thumbnail_grid(saved, row_ids, captions, *, width: int = 72) -> None:
    """Thumbnails of an image map's rows with captions (labels, scores); nothing for text maps."""
    if saved.manifest.get("kind") != IMAGE_KIND or not has_thumbnails(saved) or not len(row_ids):
        return
    thumbs = load_thumbnails(saved, row_ids)
    shown = [(thumbs[r], c) for r, c in zip(row_ids, captions, strict=True) if r in thumbs]
    if shown:
        st.image([t for t, _ in shown], caption=[c for _, c in shown], width=width)


def focus_row(row_id: int) -> None:
    """Button callback: open a row's details and ring it on the map (callbacks spare a second rerun)."""
    st.session_state["selected_row"] = row_id


def forget(key: str) -> None:
    """Button callback: drop one piece of view state (details, selection, explanation)."""
    st.session_state.pop(key, None)


def chart_key(saved) -> str:
    """One map widget per map, so an event on one map is never replayed on the next."""
    return f"map:{saved.name}:{st.session_state.get('map_stamp', '')}"


def handle_chart_event(event) -> None:
    """A click focuses one point; a box or lasso replaces the selection (kept across reruns)."""
    if not event or event.get("seq") == st.session_state.get("last_event"):
        return
    st.session_state["last_event"] = event.get("seq")
    ids = [int(i) for i in event.get("ids") or []]
    if event.get("kind") == "selection":
        st.session_state["selection"] = ids
    elif event.get("kind") == "click" and ids:
        st.session_state["selected_row"] = ids[0]


def results_panel(saved, result, titles) -> None:
    """Ranked search hits, each a button that focuses the point and opens its details."""
    st.subheader("Results")
    if len(result.indices) == 0:
        st.caption("Nothing above the similarity threshold.")
    row_ids = saved.points["row_id"].to_numpy()
    thumbnail_grid(saved, row_ids[result.indices].tolist(),
                   [f"#{r} {shorten(titles[i], 14)} · {result.scores[i]:.2f}" for r, i in
                    enumerate(result.indices, start=1)])
    explainable = saved.manifest.get("kind", "text") != IMAGE_KIND
    for rank, idx in enumerate(result.indices, start=1):
        label = f"{rank}. {result.scores[idx]:.2f} · {escape_markdown(shorten(titles[idx], 90))}"
        if not explainable:
            st.button(label, key=f"hit_{rank}_{row_ids[idx]}", width="stretch", on_click=focus_row,
                      args=(int(row_ids[idx]),))
            continue
        hit_col, why_col = st.columns([4, 1.4], gap="small", vertical_alignment="center")
        hit_col.button(label, key=f"hit_{rank}_{row_ids[idx]}", width="stretch", on_click=focus_row,
                       args=(int(row_ids[idx]),))
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
            explanation = explain_hit(saved, query, row_id, embedder=map_embedder(saved))
        except ExplorerError as exc:
            st.info(str(exc))
            return
        st.caption(f"Cosine {explanation.cosine:.3f}: each token's share of it; the shares add up to the score.")
        st.plotly_chart(match_figure(explanation), key="why_figure")
        st.button("Hide", key="why_hide", on_click=forget, args=("why_row",))


def details_panel(saved, row_id: int, titles) -> None:
    """The full row and its ten nearest neighbours in embedding space, each clickable."""
    pos = positions_of(saved.points, [row_id])
    if len(pos) == 0:
        return
    i = int(pos[0])
    st.subheader("Details")
    st.session_state["selected_title"] = titles[i]
    st.text(shorten(titles[i], 300))
    thumbnail_grid(saved, [row_id], [str(titles[i])], width=240)
    row = saved.points.iloc[i][display_columns(saved.points)]
    st.dataframe({"field": [str(c) for c in row.index], "value": [str(v) for v in row.to_numpy()]},
                 hide_index=True, width="stretch")
    st.button("Close details", key="close_details", on_click=forget, args=("selected_row",))
    if not saved.embedded[i]:
        st.caption("This row has no text, so it has no neighbours.")
        return
    st.markdown("**Nearest neighbours**")
    neighbours = nearest_neighbors(saved.embeddings, i, k=10, valid=saved.embedded)
    row_ids = saved.points["row_id"].to_numpy()
    thumbnail_grid(saved, row_ids[neighbours.indices].tolist(),
                   [f"{shorten(titles[j], 14)} · {neighbours.scores[j]:.2f}" for j in neighbours.indices],
                   width=56)
    for idx in neighbours.indices:
        label = f"{neighbours.scores[idx]:.2f} · {escape_markdown(shorten(titles[idx], 80))}"
        st.button(label, key=f"nn_{row_id}_{row_ids[idx]}", width="stretch", on_click=focus_row,
                  args=(int(row_ids[idx]),))


def selection_table(saved, titles) -> None:
    """The lasso/box selection as a table with a CSV download."""
    ids = st.session_state.get("selection") or []
    if not ids:
        st.caption("Tip: drag a lasso or a box on the map to select points; click a point for details.")
        return
    rows = saved.points.iloc[positions_of(saved.points, ids)][display_columns(saved.points)]
    st.subheader(f"Selection: {len(rows):,} rows")
    if len(rows) > SELECTION_TABLE_ROWS:
        st.caption(f"The table shows the first {SELECTION_TABLE_ROWS:,}; the CSV holds all {len(rows):,}.")
    left, right = st.columns([1, 1])
    # Written on click: a 10k-row CSV costs half a second, too much for every rerun.
    left.download_button("Download CSV", partial(to_csv_bytes, rows), file_name=f"{saved.name}-selection.csv",
                         mime="text/csv", key="download_selection", on_click="ignore")
    right.button("Clear selection", key="clear_selection", on_click=forget, args=("selection",))
    curate_button(saved, [int(i) for i in ids], key="remove_selection", what="the selected rows")
    positions = positions_of(saved.points, ids)[:60]
    thumbnail_grid(saved, saved.points["row_id"].to_numpy()[positions].tolist(),
                   [shorten(titles[p], 14) for p in positions])
    # Every shown cell travels to the browser: a big selection would send megabytes of abstracts.
    st.dataframe(rows.head(SELECTION_TABLE_ROWS), hide_index=True, width="stretch")


def cluster_column(saved, level: str) -> str:
    """The points column holding cluster ids at ``level``."""
    return saved.manifest["clusters"]["levels"][level]["column"]


def visible_labels(saved, level: str):
    """Cluster labels at their centres, thinned so none overlaps another (largest clusters win)."""
    table = cluster_table(saved, level)
    coords = saved.coords[np.isfinite(saved.coords).all(axis=1)]
    if not len(coords) or table.empty:
        return table
    return place_labels(table, x_range=(coords[:, 0].min(), coords[:, 0].max()),
                        y_range=(coords[:, 1].min(), coords[:, 1].max()), width_px=760, height_px=680)


def offer_clustering(saved) -> None:
    """A map built without clusters can get them afterwards."""
    with st.expander("Clusters"):
        st.caption("Find groups of similar rows and label each with its most distinctive words.")
        if st.button("Find clusters", key="find_clusters"):
            with st.spinner("Clustering and labelling…"):
                try:
                    add_clusters(saved, config=ClusterConfig(), workspace=Workspace())
                except ExplorerError as exc:
                    st.error(str(exc))
                    return
            st.rerun()


def cluster_panel(saved, level: str) -> None:
    """Clusters by size: pick one to highlight it, rename it, remove it, or contrast two groups."""
    table = cluster_table(saved, level)
    st.subheader(f"Clusters ({len(table)})")
    left, right = st.columns([3, 2], gap="large")
    with left:
        event = st.dataframe(table[["label", "size"]], hide_index=True, width="stretch", height=260,
                             on_select="rerun", selection_mode="single-row", key=f"cluster_table_{level}")
        rows = event.selection.rows if event else []
        chosen = None if not rows else table.iloc[rows[0]]
        st.session_state["focus_cluster"] = None if chosen is None else int(chosen["id"])
        if chosen is None:
            st.caption("Select a cluster to highlight it on the map (the others are dimmed).")
    with right:
        if chosen is not None:
            st.markdown(f"**{escape_markdown(chosen['label'])}** · {int(chosen['size']):,} rows")
            st.caption("Top terms: " + escape_markdown(", ".join(chosen["terms"])))
            new_label = st.text_input("Rename this cluster", key=f"rename_{level}_{int(chosen['id'])}",
                                      placeholder="empty restores the automatic label")
            if st.button("Save label", key="save_label"):
                rename_cluster(Workspace(), saved.name, level, int(chosen["id"]), new_label)
                st.rerun()
            ids = saved.points["row_id"].to_numpy()[(saved.points[cluster_column(saved, level)] ==
                                                      int(chosen["id"])).to_numpy()]
            curate_button(saved, ids.tolist(), key="remove_cluster", what="this cluster")
    contrast_panel(saved, table, level)


def curate_button(saved, row_ids: list[int], *, key: str, what: str) -> None:
    """Save a new version of the map without ``row_ids``; the original stays as it is."""
    if st.button(f"Remove {what} and re-project", key=key,
                 help="Saves a new version of the map without these rows; this map stays as it is."):
        with st.spinner("Re-projecting without those rows…"):
            try:
                new = remove_and_reproject(Workspace(), saved.name, row_ids)
            except ExplorerError as exc:
                st.error(str(exc))
                return
        show_map(new.name)
        st.session_state["build_notes"] = [f"Saved '{new.name}' without {len(row_ids):,} rows; "
                                           f"'{saved.name}' is unchanged in the Library."]
        st.rerun()


@st.cache_resource(max_entries=16, show_spinner="Counting words…")
def contrast_of(name: str, stamp: str, level: str, a: str, b: str, selection_key: int, *, _a, _b):
    """The contrast of two groups of a map, cached by the map and the two groups' names."""
    return contrast_terms(get_texts(name, stamp), _a, _b)


def contrast_panel(saved, table, level: str) -> None:
    """The words most distinctive of group A against group B, and of B against A."""
    with st.expander("Contrast two groups"):
        options = {f"{r.label} ({r.size})": int(r.id) for r in table.itertuples()}
        if st.session_state.get("selection"):
            options = {"Current selection": "selection", **options}
        names = list(options)
        if len(names) < 2:
            st.caption("Needs two clusters, or a selection and a cluster.")
            return
        a_col, b_col = st.columns(2)
        a = a_col.selectbox("Group A", names, index=0, key="contrast_a")
        b = b_col.selectbox("Group B", names, index=1, key="contrast_b")
        column = saved.points[cluster_column(saved, level)].to_numpy()
        selected = saved.points["row_id"].isin(st.session_state.get("selection") or []).to_numpy()

        def mask(choice):
            return selected if options[choice] == "selection" else column == options[choice]

        # Counting words over every row takes seconds on a big map, so it runs on request, once per pair.
        if not st.toggle("Compare", key="contrast_on", help="Count the words of both groups"):
            return
        selection_key = hash(tuple(st.session_state.get("selection") or ()))
        result = contrast_of(saved.name, st.session_state["map_stamp"], level, a, b, selection_key,
                             _a=mask(a) & saved.embedded, _b=mask(b) & saved.embedded)
        a_col.dataframe({"word": [t for t, _ in result.a_terms], "z": [round(z, 1) for _, z in result.a_terms]},
                        hide_index=True, width="stretch")
        b_col.dataframe({"word": [t for t, _ in result.b_terms], "z": [round(z, 1) for _, z in result.b_terms]},
                        hide_index=True, width="stretch")


@st.cache_resource(max_entries=8, show_spinner=False)
def get_titles(name: str, saved_stamp: str, column: str | None, level: str | None) -> list[str]:
    """The short name of every row (its title column, else its text), for lists and hover."""
    if column is None:
        return get_texts(name, saved_stamp)
    return display_points(name, saved_stamp, level)[column].astype("string").fillna("").tolist()


@st.fragment
def map_view(saved, controls: dict) -> None:
    """Search bar, the map, the side panel, the selection table and the cluster panel.

    A fragment: a search, a click or a selection reruns only this part, not the sidebar."""
    points = controls["points"]
    stamp = st.session_state["map_stamp"]
    title_col = title_column(points, saved.manifest.get("text_columns") or [])
    titles = get_titles(saved.name, stamp, title_col, controls["level"])
    images = saved.manifest.get("kind") == IMAGE_KIND
    search = search_controls(images=images)
    # Read the chart's event before drawing, so a click or lasso shows up in this very run.
    handle_chart_event(st.session_state.get(chart_key(saved)))
    result = run_search(saved, search["query"], k=search["k"], threshold=search["threshold"],
                        example=search["example"])
    keep = np.ones(len(points), dtype=bool)
    if controls["keyword"]:  # the texts of a big map take a second to assemble: only when filtering by them
        try:
            keep = keyword_mask(get_texts(saved.name, stamp), controls["keyword"], regex=controls["regex"])
        except ExplorerError as exc:
            st.warning(str(exc))
    keep &= category_mask(points, controls["categories"])
    focus_cluster = st.session_state.get("focus_cluster")
    if focus_cluster is not None and controls["level"] is not None:
        keep &= (points[cluster_column(saved, controls["level"])] == focus_cluster).to_numpy()
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
    if controls["show_labels"]:
        style.labels = visible_labels(saved, controls["level"])
    map_col, side_col = st.columns([3, 1.3], gap="medium")
    with map_col:
        if not keep.all():
            st.caption(f"{int(keep.sum()):,} of {len(points):,} rows match the filters; the rest are dimmed.")
        map_chart(points, style, revision=f"{saved.name}:{stamp}", key=chart_key(saved))
    with side_col:
        if st.session_state.get("selected_row") is not None:
            details_panel(saved, int(st.session_state["selected_row"]), titles)
        if result is not None:
            results_panel(saved, result, titles)
        elif st.session_state.get("selected_row") is None:
            st.caption("Search above, or click a point to see its details and nearest neighbours.")
    selection_table(saved, titles)
    if controls["level"] is not None:
        cluster_panel(saved, controls["level"])
    else:
        offer_clustering(saved)
    # Load the query model now, while the person looks at the map, not on their first search;
    # a model that cannot be loaded is reported by that search.
    with contextlib.suppress(ExplorerError):
        map_embedder(saved)


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
