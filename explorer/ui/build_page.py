"""The first screen: upload a table or images, try a sample, or open a saved map; and the build."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import streamlit as st

from explorer.cluster import ClusterConfig, config_for_rows
from explorer.draw import shorten
from explorer.embedders import BUNDLED_MODEL, DEFAULT_CLIP_MODEL, PIXEL_MODEL
from explorer.errors import ExplorerError
from explorer.images import read_images
from explorer.load import load_table
from explorer.modes import MODES, choose_mode_for_texts, duration_text
from explorer.pipeline import build_map, map_is_current
from explorer.progress import ProgressFn
from explorer.project import ProjectionConfig
from explorer.search import KEYWORD
from explorer.store import Workspace
from explorer.texts import compose_texts, detect_text_columns, mean_title_chars
from explorer.vectors import OfferedColumns, offered_columns

from . import loaders
from .refinement import submit_refinement
from .state import show_map
from .text import escape_markdown
from .upload import Upload, file_upload

# The sample data sits beside the package in the repository (explorer/ui → the repository root).
SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
SAMPLE_PAPERS = SAMPLE_DATA / "papers.csv"
SAMPLE_IMAGES = SAMPLE_DATA / "images"
SAMPLE_MAP = "Sample papers"
SAMPLE_DIGITS_MAP = "Sample digits"
IMAGE_TYPES = ["zip", "jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"]
TABLE_TYPES = ["csv", "tsv", "txt", "json", "jsonl", "ndjson", "parquet", "xlsx", "bib", "bibtex", "ris"]
# The session key of the last upload read (parsed_once): its content hash and options, and the result.
PARSED_UPLOAD = "parsed_upload"
STAGE_TITLES = {"load": "Loading", "embed": "Embedding", "project": "Projecting", "save": "Saving"}
T = TypeVar("T")


def default_model() -> str | None:
    """The app's default model: tests and demos may pick another (e.g. "hashing") with
    EXPLORER_DEFAULT_MODEL; unset means the bundled MiniLM. Read on every call, not at import: the
    module outlives the runs (and the tests) that set it."""
    return os.environ.get("EXPLORER_DEFAULT_MODEL") or None


# ---------------------------------------------------------------- building


def run_with_progress(
    label: str, action: Callable[[ProgressFn], T], *, done: Callable[[T], str], failed: str
) -> T | None:
    """Run ``action(progress)`` inside a status box with a live progress bar and time left; an error is
    shown (None returned) and nothing is lost: the library's steps save atomically."""
    with st.status(label, expanded=True) as status:
        stage_text = st.empty()
        bar = st.progress(0.0)
        clock = BuildClock()

        def progress(stage: str, fraction: float, message: str = "") -> None:
            title, eta = clock.update(stage, fraction, message)
            stage_text.markdown(f"**{title}** — {escape_markdown(message)}{eta}")
            bar.progress(min(max(fraction, 0.0), 1.0))

        try:
            result = action(progress)
        except ExplorerError as exc:
            status.update(label=failed, state="error", expanded=True)
            st.error(escape_markdown(exc))
            return None
        # Its label is Markdown, and names the map.
        status.update(label=escape_markdown(done(result)), state="complete", expanded=False)
    return result


def run_build(source, *, replace: bool = False, **options) -> None:
    """Build a map with a live progress bar (run_with_progress), then open it.

    Unless ``replace``, the map gets a free name ("data (2)"), reserved as the build starts: another
    session's map of the same name, or its build started a moment earlier, must never be overwritten."""
    workspace = Workspace()

    def build(progress: ProgressFn):
        return build_map(source, workspace=workspace, progress=progress, reserve=not replace, **options)

    def stages(result) -> str:
        return ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())

    result = run_with_progress("Building the map…", build, failed="The map could not be built",
                               done=lambda r: f"Built '{r.saved.name}' in {r.total_seconds:.1f} s ({stages(r)})")
    if result is None:
        return
    seconds = stages(result)
    submit_refinement(result)
    show_map(result.saved.name)
    st.session_state["scroll_to_map"] = True
    st.session_state["build_summary"] = (result.saved.name, f"Built in {result.total_seconds:,.0f} s ({seconds}).")
    # The mode's reason was advice for the form ("choose the quality mode…"); on the map it is noise.
    notes = [n for n in result.notes if result.mode is None or n != result.mode.reason]
    if result.skipped:
        notes.append(f"Skipped {len(result.skipped):,} file(s): " + "; ".join(
            f"{name}: {reason}" for name, reason in result.skipped[:10]) + (" …" if len(result.skipped) > 10 else ""))
    if result.text_search == KEYWORD and result.text_search_reason:
        notes.append(result.text_search_reason)
    st.session_state["build_notes"] = notes
    st.rerun()


class BuildClock:
    """The stage titles and time-left estimate of a build's progress.

    Loading a model reports no progress and can take 20 s, so it is a step of its own, and the
    estimate starts at the first embedded batch: measured from the stage's start it had read
    "about 329 s left" for a build that took 42 s."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.first: tuple[float, float] | None = None  # (time, fraction) of the stage's first report

    def update(self, stage: str, fraction: float, message: str = "") -> tuple[str, str]:
        """The title to show for this report, and " · about N s left" once a rate is measurable."""
        now = time.perf_counter()
        if stage != self.stage:
            self.stage, self.first = stage, None
        if stage == "embed" and fraction <= 0 and message.startswith("Loading the model"):
            return "Loading the model", ""
        if fraction > 0 and self.first is None:
            self.first = (now, fraction)
            return STAGE_TITLES.get(stage, stage), ""
        eta = ""
        if stage == "embed" and self.first is not None and fraction < 1 and fraction - self.first[1] >= 0.02:
            rate = (fraction - self.first[1]) / max(now - self.first[0], 1e-6)
            eta = f" · about {duration_text((1 - fraction) / rate)} left"
        return STAGE_TITLES.get(stage, stage), eta


def model_picker(key: str) -> str | None:
    """The bundled model by default, or any sentence-transformers name or local folder."""
    choice = st.radio("Model", ["Bundled all-MiniLM-L6-v2", "Other sentence-transformers model"],
                      key=f"{key}_model_choice", horizontal=True)
    if choice.startswith("Bundled"):
        return default_model()
    name = st.text_input("Model name or local folder", key=f"{key}_model_name",
                         placeholder="e.g. sentence-transformers/all-mpnet-base-v2 or /models/my-model")
    return name.strip() or default_model()


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


@dataclass
class GivenChoice:
    """What the form's "Your own vectors or layout" section chose, and why the build must wait, if it must."""

    vectors: str | None = None
    model: str | None = None
    x: str | None = None
    y: str | None = None
    neighbors: str | None = None
    problem: str | None = None


def given_form(columns: OfferedColumns) -> GivenChoice:
    """The "Your own vectors or layout" section: vectors and the model that made them, x/y, neighbours."""
    choice = GivenChoice()
    with st.expander("Your own vectors or layout", expanded=columns.likely):
        if columns.vectors:
            choice.vectors = st.selectbox("Vectors", [None, *columns.vectors], key="upload_vectors",
                                          format_func=_none_as("None: embed the text"),
                                          help="A column of numeric lists, kept (L2-normalised) instead of embedding.")
        if choice.vectors is not None:
            choice.model, choice.problem = _vector_model()
        if len(columns.numeric) >= 2:
            left, right = st.columns(2)
            computed = _none_as("None: UMAP or PCA")
            choice.x = left.selectbox("Layout: x", [None, *columns.numeric], key="upload_x", format_func=computed)
            choice.y = right.selectbox("Layout: y", [None, *columns.numeric], key="upload_y", format_func=computed)
            if (choice.x is None) != (choice.y is None):
                choice.problem = choice.problem or "Choose both columns of the layout (x and y), or neither."
                st.warning(choice.problem)
            elif choice.x is not None and choice.x == choice.y:
                choice.problem = choice.problem or "The layout's x and y must be two different columns."
                st.warning(choice.problem)
        if columns.neighbors:
            choice.neighbors = st.selectbox("Neighbours", [None, *columns.neighbors], key="upload_neighbors",
                                            format_func=_none_as("None: computed from the vectors"),
                                            help='Per row {"ids": [row numbers], "distances": [...]}, '
                                                 "as Embedding Atlas writes them.")
    return choice


def _none_as(label: str) -> Callable[[str | None], str]:
    """A selectbox's format_func that names what "none" means here."""
    return lambda column: label if column is None else str(column)


def _vector_model() -> tuple[str | None, str | None]:
    """The model that made the given vectors (None: none named), and a problem that keeps the build waiting."""
    options = ["None", f"Bundled {BUNDLED_MODEL}", "Other sentence-transformers model"]
    choice = st.radio("Model that made the vectors", options, key="upload_vector_model", horizontal=True)
    if choice == options[0]:
        st.caption("Without it, search matches the words of the text columns; a row's nearest neighbours "
                   "still use your vectors. The text columns are what hover shows and search reads.")
        return None, None
    if choice == options[1]:
        # The tests' and demos' stand-in for the bundled model (default_model) when one is set.
        return default_model() or BUNDLED_MODEL, None
    name = st.text_input("Model name or local folder", key="upload_vector_model_name",
                         placeholder="e.g. sentence-transformers/all-mpnet-base-v2 or /models/my-model").strip()
    st.caption("Queries are embedded with it, so search works by meaning; it must make vectors of your dimension.")
    return (name, None) if name else (None, "Name the model that made the vectors, or choose None.")


def parsed_once(identity: bytes, options: tuple, parse: Callable[[], T]) -> T:
    """``parse()`` of an upload, run once per upload and reading options (an ExplorerError too).

    The form reruns the script on every widget change; reading a big file again each time took
    seconds. One upload is kept per session, keyed by the sha256 of ``identity`` (what tells one
    upload from another: its id and size, or the images' names and bytes)."""
    key = (hashlib.sha256(identity).hexdigest(), options)
    cached = st.session_state.get(PARSED_UPLOAD)
    if cached is None or cached[0] != key:
        try:
            result = parse()
        except ExplorerError as exc:
            result = exc
        cached = st.session_state[PARSED_UPLOAD] = (key, result)
    if isinstance(cached[1], ExplorerError):
        raise cached[1].with_traceback(None)
    return cached[1]


def upload_form(uploaded: Upload) -> None:
    """Preview an uploaded table (read from its file on disk) and let the user choose what to embed."""
    identity = f"{uploaded.id}:{uploaded.size}:{uploaded.path}".encode()
    try:
        table = parsed_once(identity, ("table", uploaded.name),
                            lambda: load_table(uploaded.path, name=uploaded.name))
    except ExplorerError as exc:
        st.error(escape_markdown(exc))
        return
    for note in table.notes:
        st.info(escape_markdown(note))
    frame = table.frame
    st.caption(f"{len(frame):,} rows × {frame.shape[1]} columns. First rows:")
    st.dataframe(frame.head(20), hide_index=True, width="stretch")
    offered = offered_columns(frame)
    # Numeric lists and neighbour structs arrive as JSON text, long and full of spaces: the longest "prose"
    # to detect_text_columns, and never text anyone wants embedded or searched.
    text_frame = frame.drop(columns=offered.vectors + offered.neighbors)
    detected = [c for c in table.text_columns or detect_text_columns(text_frame) if c in text_frame.columns]
    columns = st.multiselect("Text to embed", list(text_frame.columns), default=detected, key="upload_columns",
                             help="Non-empty values of these columns are joined with '. '.")
    template = st.text_input("…or a template", key="upload_template", placeholder="{title}. {abstract}",
                             help="Overrides the columns above when filled in.")
    selection = None
    try:
        selection = compose_texts(text_frame, columns=columns or None, template=template or None)
        st.caption("Text of the first row: " + escape_markdown(shorten(selection.texts[0], 200)))
    except ExplorerError as exc:
        st.warning(escape_markdown(exc))
    given = given_form(offered) if offered.any else GivenChoice()
    mode = "auto"
    if given.vectors is not None:
        model = given.model  # the vectors are kept: no embedding mode, no model to embed with
    else:
        model = model_picker("upload")
    if given.vectors is None and model is None:
        mode = st.radio("Embedding mode", list(MODES), key="upload_mode", horizontal=True,
                        format_func=lambda m: {"auto": "Auto (by size)", "fast": "Fast (TF-IDF + SVD)",
                                               "quality": "Quality (the transformer)"}[m])
        if selection is not None:
            texts = [t for t, keep in zip(selection.texts, selection.embedded, strict=True) if keep]
            # The reason says both waits: the map's, and search by meaning's.
            titles = mean_title_chars(text_frame[selection.embedded], selection.columns)
            st.info(escape_markdown(choose_mode_for_texts(texts, requested=mode, title_chars=titles).reason))
    name = st.text_input("Map name", value=Path(uploaded.name).stem, key="upload_name")
    find_clusters = st.checkbox("Find clusters and label them", value=True, key="upload_clusters",
                                help="Topic labels drawn on the map; adds a few seconds.")
    if given.x is not None and given.y is not None:
        st.caption(escape_markdown(f"Your layout ({given.x}, {given.y}) is kept as it is: no UMAP or PCA, so "
                                   "there are no projection settings."))
        projection = ProjectionConfig()
    else:
        projection = projection_settings("upload")
    problem = given.problem or (None if selection is not None
                                else "Choose a column of text to embed (or a template) first.")
    if st.button("Build map", type="primary", key="build_upload", disabled=problem is not None, help=problem):
        # With no column chosen, the one detected above (never a vector column), not the build's own guess.
        text_columns = columns or (None if template else selection.columns)
        run_build(table, source_name=uploaded.name, name=name or None, text_columns=text_columns,
                  template=template or None, model=model, mode=mode, projection=projection,
                  clusters=config_for_rows(len(frame)) if find_clusters else None,
                  vectors=given.vectors, x=given.x, y=given.y, neighbors=given.neighbors)


def image_form(files) -> None:
    """Preview uploaded images, say what was skipped, and choose CLIP or the offline embedder."""
    source = files[0].getvalue() if len(files) == 1 and files[0].name.lower().endswith(".zip") else files
    source_name = files[0].name if len(files) == 1 else "upload"
    # Several files: their names and contents, each hashed (the names become the rows' file names).
    content = b"".join(hashlib.sha256(f.name.encode() + b"\0" + f.getvalue()).digest() for f in files)
    try:
        image_set = parsed_once(content, ("images", source_name), lambda: read_images(source, name=source_name))
    except ExplorerError as exc:
        st.error(escape_markdown(exc))
        return
    for note in image_set.notes:
        st.info(escape_markdown(note))
    if image_set.skipped:
        with st.expander(f"{len(image_set.skipped):,} file(s) skipped", expanded=True):
            st.dataframe({"file": [n for n, _ in image_set.skipped], "reason": [r for _, r in image_set.skipped]},
                         hide_index=True, width="stretch")
    if len(image_set) == 0:
        st.error("None of the uploaded files is a readable image. Upload JPEG, PNG, WebP, GIF, BMP or TIFF files.")
        return
    st.caption(f"{len(image_set):,} images. The first ones:")
    frame = image_set.frame
    # Loose files have no folder, so no label (<NA>, which has no truth value): they show their file name.
    labels = frame["label"][:24].fillna("")
    st.image(image_set.thumbnails[:24], width=72,
             caption=[escape_markdown(str(label or file)[:20])
                      for file, label in zip(frame["file"][:24], labels, strict=True)])
    choice = st.radio("Embedding", ["CLIP (text and images in one space)", "Offline pixel features (no weights)"],
                      key="image_model_choice", horizontal=True)
    model = PIXEL_MODEL
    problem = None
    if choice.startswith("CLIP"):
        model = st.text_input("CLIP model name or folder", value=DEFAULT_CLIP_MODEL, key="image_clip_name").strip()
        problem = loaders.clip_problem(model or DEFAULT_CLIP_MODEL)
        if problem:
            st.warning(escape_markdown(f"{problem} Choose the offline pixel features: they need no download; "
                                       "text search will then match file names and labels only."))
    name = st.text_input("Map name", value=Path(files[0].name).stem if len(files) == 1 else "images",
                         key="image_map_name")
    projection = projection_settings("images")
    if st.button("Build map", type="primary", key="build_images", disabled=bool(problem)):
        run_build(image_set, name=name or None, model=model, projection=projection)


# ---------------------------------------------------------------- the first screen


def landing() -> None:
    """The first screen: three ways in."""
    st.title("Embedding Explorer")
    st.write("See a dataset as a map: every row is embedded, similar rows land close together, "
             "and a search lights up the rows closest to your query.")
    upload_col, sample_col, saved_col = st.columns([2, 1, 1], gap="large")
    with upload_col:
        st.subheader("Upload a table")
        uploaded = file_upload("upload", label="CSV, TSV, JSON, JSONL, Parquet or XLSX", types=TABLE_TYPES)
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
            loaders.prefetch_map(chosen)
            if st.button("Open", key="open_saved"):
                show_map(chosen)
                st.rerun()
        else:
            st.caption("No saved maps yet.")
    if st.session_state.pop("building_sample", False):
        if map_is_current(Workspace(), SAMPLE_MAP, source=SAMPLE_PAPERS, model=default_model()):
            show_map(SAMPLE_MAP)
            st.rerun()
        run_build(SAMPLE_PAPERS, source_name=SAMPLE_PAPERS.name, name=SAMPLE_MAP, model=default_model(),
                  clusters=ClusterConfig(), replace=True)
    if st.session_state.pop("building_sample_images", False):
        if map_is_current(Workspace(), SAMPLE_DIGITS_MAP, source=SAMPLE_IMAGES, model=PIXEL_MODEL, clusters=False):
            show_map(SAMPLE_DIGITS_MAP)
            st.rerun()
        run_build(SAMPLE_IMAGES, name=SAMPLE_DIGITS_MAP, model=PIXEL_MODEL, replace=True)
    if uploaded is not None:
        st.divider()
        upload_form(uploaded)
    elif images:
        st.divider()
        image_form(images)
