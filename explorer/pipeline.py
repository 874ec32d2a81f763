"""build_map: load → embed → project (→ cluster) → save, end to end, for every kind of data."""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from .cluster import ClusterConfig
from .corpus import IMAGES, TEXT, Corpus, ReadOptions, read_corpus
from .embed import EmbeddingCache, EmbeddingResult, embed_cached
from .embedders import DEFAULT_BATCH_SIZE, Embedder, load_embedder, text_search_of
from .embedders.given import GivenVectorsEmbedder
from .errors import InputError
from .hashing import bytes_hash, file_sha256
from .load import release_arrow_memory
from .manifest import Manifest
from .map_clusters import clustered
from .map_files import save_map
from .modes import REFINE_MAX_TOKENS, ModeChoice, choose_mode_for_texts, refine_model_spec
from .neighbor_column import NEIGHBORS_K, NEIGHBORS_MAX_ROWS
from .neighbours import KnnGraph, knn_graph
from .placement import place_rows
from .progress import ProgressFn, no_progress
from .project import EXACT_KNN_ROWS, MIN_ROWS_FOR_UMAP, Projection, ProjectionConfig, project
from .store import SavedMap, Workspace, sanitise_map_name
from .texts import mean_title_chars, title_stage_column
from .thumbnails import THUMBNAIL_FORMAT
from .vectors import GivenInputs, GivenVectors
from .version import __version__

log = logging.getLogger(__name__)

STAGES = ("load", "embed", "project", "save")
# The manifest's "refinement" section: the fast map of a progressive build waits in this state for
# the transformer (explorer.refine), which sets "done" when the refined map is saved.
REFINE_PENDING = "pending"
# Which vectors a progressive map's search reads (the refinement section's "stage"): the fast map's TF-IDF,
# then the transformer's vectors of the titles (a table with a title column), then of the whole text.
FAST_STAGE, TITLES_STAGE, FULL_STAGE = "fast", "titles", "full"
# The manifest lists at most this many skipped files; the count is always exact.
MAX_SKIPPED_LISTED = 1_000


@dataclass
class BuildResult:
    """The saved map, the seconds each stage took, and everything the user should be told."""

    saved: SavedMap
    seconds: dict[str, float]
    notes: list[str] = field(default_factory=list)
    n_cached: int = 0
    mode: ModeChoice | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    text_search: str = "semantic"
    text_search_reason: str = ""

    @property
    def refine_pending(self) -> bool:
        """Whether the map waits for the transformer's refinement (explorer.refine), a progressive build."""
        return self.saved.meta.refinement.state == REFINE_PENDING

    @property
    def total_seconds(self) -> float:
        """Wall time of the whole build."""
        return sum(self.seconds.values())


class StageTimer:
    """Times each stage of a build into one ``seconds`` dict (the local and the Ray engine share it)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name`` (added to what the stage already took)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


@dataclass(frozen=True)
class EmbedOptions:
    """How the rows are embedded: a model (a name, a folder or an Embedder; None: by ``mode``), the mode
    ("auto", "fast", "quality"), whether an image model that cannot load gives way to pixels, the batch
    size, and whether the embedding cache is used."""

    model: str | Embedder | None = None
    mode: str = "auto"
    fallback: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    use_cache: bool = True


def build_map(
    source,
    *,
    read: ReadOptions | None = None,
    embed: EmbedOptions | None = None,
    projection: ProjectionConfig | None = None,
    clusters: ClusterConfig | None = None,
    name: str | None = None,
    workspace: Workspace | None = None,
    reserve: bool = False,
    progress: ProgressFn = no_progress,
    **options,
) -> BuildResult:
    """Build and save a map of texts or images from anything `read_corpus` takes.

    ``read`` says how the source is read (ReadOptions: its kind, text columns or template, images, your own
    vectors, layout and neighbours), ``embed`` how it is embedded (EmbedOptions); any of their fields may
    be given by name instead, as in ``build_map("papers.csv", text_columns=["title"], model="hashing")``.
    Text without a ``model``: ``mode`` picks the embedder, "quality" (the bundled transformer), "fast"
    (TF-IDF + SVD fitted on the data) or "auto" (by the data's size, see explorer.modes; a table too big
    for the transformer gets the fast map with its refinement pending, see ``refine_pending``). Images:
    ``model`` is a CLIP name or folder (default clip-ViT-B-32) or "pixels"; with ``fallback`` a CLIP
    model that cannot be loaded gives way to the pixel embedder (said in the notes). With ``reserve`` the
    map takes a free name (``name (2)`` when ``name`` is taken), claimed as the build starts; without,
    it replaces any map of its name."""
    read, embed = grouped_options(read, embed, options)
    workspace = workspace or Workspace()
    projection = projection or ProjectionConfig()
    if name is not None:
        sanitise_map_name(name)  # an unusable name fails now, not after minutes of embedding
    timer = StageTimer()

    with timer.stage("load"):
        progress("load", 0.0, "Reading the data")
        corpus = read_corpus(source, read, progress=progress)
        given = corpus.given
        progress("load", 1.0, _loaded_message(corpus))
    requested = name or corpus.default_name()
    with _claimed(workspace, requested, reserve=reserve) as map_name:
        notes = list(corpus.notes)

        with timer.stage("embed"):
            choice, embedder, embedded = _embedding(corpus, embed, workspace, notes=notes, progress=progress)
        if corpus.kind == TEXT:
            # Embedded: the layout and the save read the vectors and the table, not the texts (1.4 GB at 1M rows,
            # freed here unless the caller holds the Corpus it passed in).
            corpus = dataclasses.replace(corpus, texts=None)
        # What Arrow's allocator kept from the read and the embedding goes back before numpy lays the map out.
        release_arrow_memory()

        with timer.stage("project"):
            layout_input = embedder.layout_vectors(embedded.vectors)
            layout, graph = _layout(corpus, embedded.vectors, layout_input, projection=projection,
                                    cache_dir=workspace.projection_cache_dir if embed.use_cache else None,
                                    notes=notes, progress=progress)
            progress("project", 1.0, f"Layout by {layout.method.upper()}")

        started = time.perf_counter()
        progress("save", 0.0, "Saving the map" + (" and its thumbnails" if corpus.kind == IMAGES else ""))
        points, vectors = assemble_points(corpus.frame, corpus.embedded, embedded.vectors, layout.coords)
        manifest = map_manifest(corpus, name=map_name, embedder=embedder, dimension=vectors.shape[1],
                                projection=projection, method_used=layout.method, notes=notes,
                                seconds=timer.seconds)
        manifest["mode"] = choice.to_dict() if choice is not None else None
        if choice is not None and choice.refine:
            manifest["refinement"] = {"state": REFINE_PENDING, "model": refine_model_spec(),
                                      "max_seq_length": REFINE_MAX_TOKENS,
                                      "from_model": embedder.model_id, "requested": manifest["created"],
                                      "automatic": choice.automatic, "estimated_seconds": choice.search_seconds,
                                      "stage": FAST_STAGE,
                                      "title_column": title_stage_column(corpus.frame, corpus.text_columns)}
        manifest["projection"]["input_dimension"] = int(layout_input.shape[1]) if layout_input.ndim == 2 else 0
        if given is not None:
            manifest["given"] = {**given.to_dict(),
                                 "query_model": embedder.model_id if TEXT in embedder.kinds else None}
            if TEXT not in embedder.kinds:
                manifest["text_search"] = "keyword"
                manifest["text_search_reason"] = given_search_reason(given)
            if given.neighbors is not None:
                points["neighbors"] = given.neighbors
        thumbnails = corpus.images.thumbnails if corpus.kind == IMAGES else None
        kind, n_cached, skipped = corpus.kind, embedded.n_cached, corpus.skipped
        # The build's own copies go before clustering, which reads the map's texts and vectors: on 1M
        # abstracts the composed texts alone are ~1.2 GB, the layout's inputs ~0.5 GB more.
        del corpus, embedded, layout, layout_input
        # The graph UMAP was given is the neighbours column's graph: the save does not compute it again.
        saved = finish_build(workspace, map_name, points=points, vectors=vectors, manifest=manifest, graph=graph,
                             thumbnails=thumbnails, started=started, timer=timer, clusters=clusters,
                             progress=progress)
        rows = len(points)
        if sanitise_map_name(requested) != requested:
            notes.append(f"The map name '{requested}' was saved as '{saved.name}': a name keeps only letters, "
                         "digits, spaces and - _ . ( ), and cannot start with a dot.")
        elif saved.name != requested:
            notes.append(f"A map named '{requested}' already exists: this one is '{saved.name}'.")
        log.info("built %s map %s: %d rows with %s", kind, saved.name, rows, embedder.model_id)
        return BuildResult(saved=saved, seconds=timer.seconds, notes=notes, n_cached=n_cached, mode=choice,
                           skipped=skipped, text_search=manifest.get("text_search", "semantic"),
                           text_search_reason=manifest.get("text_search_reason", ""))


def build_graph(layout_input: np.ndarray, vectors: np.ndarray, *, projection: ProjectionConfig,
                progress: ProgressFn = no_progress) -> KnnGraph | None:
    """The build's one exact kNN graph, for UMAP and the neighbours column, when both can use it: a cosine
    UMAP of the saved vectors themselves (not a layout's own vectors) on a map small enough for the column;
    else None (UMAP makes its own, the save computes the column if it needs one)."""
    n = len(layout_input)
    if (projection.method != "umap" or projection.metric != "cosine" or not MIN_ROWS_FOR_UMAP <= n <= NEIGHBORS_MAX_ROWS
            or n > projection.sample_rows or n > EXACT_KNN_ROWS
            or not (layout_input is vectors or np.array_equal(layout_input, vectors))):
        return None
    return knn_graph(layout_input, k=max(NEIGHBORS_K, projection.n_neighbors - 1), exact_max_rows=EXACT_KNN_ROWS,
                     seed=projection.seed, progress=progress)


@contextmanager
def _claimed(workspace: Workspace, name: str, *, reserve: bool) -> Iterator[str]:
    """The name the map is saved under: with ``reserve``, the first free of ``name``, ``name (2)``…,
    reserved now (Workspace.reserve_name) so that builds started together never share one."""
    if not reserve:
        yield name
        return
    with workspace.reserved(name) as claimed:
        yield claimed


def grouped_options(read: ReadOptions | None, embed: EmbedOptions | None, options: dict
                    ) -> tuple[ReadOptions, EmbedOptions]:
    """``read`` and ``embed`` with the fields given by name (build_map's ``**options``) set on them."""
    reading = {f.name for f in dataclasses.fields(ReadOptions)}
    embedding = {f.name for f in dataclasses.fields(EmbedOptions)}
    unknown = sorted(set(options) - reading - embedding)
    if unknown:
        raise TypeError(f"build_map() got unexpected keyword arguments: {', '.join(unknown)}")
    read = dataclasses.replace(read or ReadOptions(), **{k: v for k, v in options.items() if k in reading})
    embed = dataclasses.replace(embed or EmbedOptions(), **{k: v for k, v in options.items() if k in embedding})
    return read, embed


def _embedding(corpus: Corpus, embed: EmbedOptions, workspace: Workspace, *, notes: list[str],
               progress: ProgressFn) -> tuple[ModeChoice | None, Embedder, EmbeddingResult]:
    """The embed step: the mode's choice (None for your own vectors or a named model), the embedder, and the
    rows' vectors, computed (through the cache) or your own as the reader gave them (``corpus.given``)."""
    given = corpus.given.vectors if corpus.given is not None else None
    if given is not None:
        choice, embedder = None, given_embedder(given, model=embed.model, mode=embed.mode)
    else:
        choice, embedder = _embedder_for_build(corpus, model=embed.model, mode=embed.mode, fallback=embed.fallback)
    if choice is not None and choice.refine and corpus.given is not None and corpus.given.layout is not None:
        # A refinement lays the map out again with UMAP: the layout you gave would be lost.
        choice = dataclasses.replace(choice, refine=False, search_seconds=None)
        notes.append("Your layout is kept as it is, so this fast map is not refined by the transformer "
                     "later; build with the quality mode for search by meaning.")
    if choice is not None:
        notes.append(choice.reason)
        progress("embed", 0.0, choice.reason)
    if embedder.fallback_reason:
        notes.insert(0, embedder.fallback_reason)
    progress("embed", 0.0, f"Loading the model {embedder.model_id}")
    if given is not None:
        progress("embed", 1.0, f"Kept your {given.dimension}-number vectors from {given.source}")
        return choice, embedder, EmbeddingResult(vectors=given.vectors[given.present], model_id=embedder.model_id,
                                                 n_cached=0, n_computed=0, seconds=0.0)
    cache = EmbeddingCache(workspace.cache_path) if embed.use_cache and embedder.cacheable else None
    embedded = embed_cached(embedder, corpus, cache=cache, batch_size=embed.batch_size, progress=progress)
    notes += embedded.notes
    embedder.persist(workspace.root)
    return choice, embedder, embedded


def _layout(corpus: Corpus, vectors: np.ndarray, layout_input: np.ndarray, *, projection: ProjectionConfig,
            cache_dir, notes: list[str], progress: ProgressFn) -> tuple[Projection, KnnGraph | None]:
    """The project step: your own layout as the reader gave it (``corpus.given``), else the projection of the
    vectors with the build's one kNN graph (returned for the neighbours column, None when there is none)."""
    if corpus.given is not None and corpus.given.layout is not None:
        return given_layout(corpus.given, corpus.embedded, vectors, notes=notes, progress=progress), None
    graph = build_graph(layout_input, vectors, projection=projection, progress=progress)
    progress("project", 0.0, f"Projecting {corpus.n_embedded:,} points with {projection.method.upper()}")
    layout = project(layout_input, config=projection, knn=graph, cache_dir=cache_dir, progress=progress)
    notes += layout.notes
    return layout, graph


def given_embedder(given: GivenVectors, *, model, mode: str) -> Embedder:
    """The embedder a map of given vectors searches with: the named model that made them, after checking
    it makes vectors of their dimension, or one that embeds nothing (search then matches words)."""
    if mode != "auto":
        raise InputError(f"The mode ({mode}) chooses how to embed; your vectors are kept as they are. Leave the "
                         "mode out, and name the model that made them to search by meaning.")
    if model is None or model == "":
        return GivenVectorsEmbedder(source=given.source, dimension=given.dimension,
                                    digest=bytes_hash(np.ascontiguousarray(given.vectors).tobytes()))
    embedder = load_embedder(model, kind=TEXT)
    made = int(embedder.embed(["a probe of the model's dimension"]).shape[1])
    if made != given.dimension:
        raise InputError(f"Your vectors in {given.source} have {given.dimension} numbers each, but {embedder.model_id} "
                         f"makes {made}: name the model that made them, or leave the model out to search by words.")
    return embedder


def given_layout(given: GivenInputs, embedded: np.ndarray, vectors: np.ndarray, *, notes: list[str],
                 progress: ProgressFn) -> Projection:
    """The layout you gave, for the rows on the map; a row with a vector but no position is placed among
    its nearest laid-out rows, as rows added to a map are."""
    coords = given.layout[embedded].copy()
    has = given.layout_present[embedded]
    if not has.any():
        raise InputError("No row with a vector has both coordinates of the layout: there is nothing to draw.")
    if not has.all():
        placed = place_rows(vectors[~has], reference_vectors=vectors[has], reference_coords=coords[has],
                            progress=progress)
        coords[~has] = placed.coords
        notes.append(f"{int((~has).sum()):,} rows had no position in your layout: each was placed at the median "
                     "position of its 10 nearest rows.")
    off = int((given.layout_present & ~embedded).sum())
    if off:
        notes.append(f"{off:,} rows have a position but no vector, so they are not on the map.")
    x_col, y_col = given.layout_columns
    progress("project", 1.0, f"Kept your layout from {x_col} and {y_col}")
    return Projection(coords=coords.astype(np.float32), method="given", config=ProjectionConfig(), seconds=0.0)


def given_search_reason(given: GivenInputs) -> str:
    """How a map of your own vectors is searched when no model was named as theirs."""
    return (f"This map keeps your own vectors ({given.vectors.source}) and no model was named as the one that made "
            "them, so search matches the words of the text; a row's nearest neighbours still use your vectors. "
            "To search by meaning, build it again naming that model (the upload form's \"Model that made the "
            "vectors\", or --model).")


def _loaded_message(corpus: Corpus) -> str:
    if corpus.kind == IMAGES:
        return f"{len(corpus):,} images, {len(corpus.skipped):,} skipped"
    return f"{len(corpus):,} rows, text from {', '.join(corpus.text_columns)}"


def _embedder_for_build(corpus: Corpus, *, model, mode: str, fallback: bool) -> tuple[ModeChoice | None, Embedder]:
    """The embedder of a build, and the mode chosen for it (None when the caller named a model, and for images)."""
    named = model is not None and model != ""
    if corpus.kind == IMAGES:
        if mode != "auto":
            raise InputError(f"The mode ({mode}) applies to text maps; an image map takes a model (CLIP or pixels).")
        return None, load_embedder(model, kind=IMAGES, fallback=fallback)
    if named and mode != "auto":
        raise InputError(f"Choose either a model ({model}) or a mode ({mode}), not both.")
    titles = None if named else mean_title_chars(corpus.frame[corpus.embedded], corpus.text_columns)
    choice = None if named else choose_mode_for_texts(corpus.items(), requested=mode, title_chars=titles)
    embedder = load_embedder(choice.model if choice is not None else model, kind=TEXT)
    if IMAGES in embedder.kinds and TEXT not in embedder.kinds:
        raise InputError(f"{embedder.model_id} embeds images only; a table of text needs a text model.")
    return choice, embedder


def finish_build(
    workspace: Workspace, name: str, *, points: pd.DataFrame, vectors: np.ndarray, manifest: dict,
    started: float, timer: StageTimer, clusters: ClusterConfig | None, progress: ProgressFn,
    graph: KnnGraph | None = None, thumbnails=None,
) -> SavedMap:
    """Cluster the assembled map when asked, then save it once (both engines end this way)."""
    if clusters is not None:
        with timer.stage("cluster"):
            points, manifest = clustered(points, vectors, manifest, config=clusters, progress=progress)
        started += timer.seconds["cluster"]  # the save's own time, without the clustering's
    saved = save_map(workspace, name, points=points, embeddings=vectors, manifest=manifest, graph=graph,
                     thumbnails=thumbnails)
    timer.seconds["save"] = time.perf_counter() - started
    progress("save", 1.0, f"Saved as '{saved.name}'")
    return saved


def text_search_reason(embedder: Embedder) -> str:
    """One sentence on how text queries will search an image map built with this embedder."""
    if TEXT in embedder.kinds:
        return "Text search uses CLIP: text queries and images share one embedding space."
    return embedder.fallback_reason or (
        "This map was built with the offline pixel embedder, which cannot read text: text search "
        "matches words in file names and labels instead."
    )


def map_manifest(
    corpus: Corpus,
    *,
    name: str,
    embedder: Embedder,
    dimension: int,
    projection: ProjectionConfig,
    method_used: str,
    notes: list[str],
    seconds: dict[str, float],
) -> dict:
    """A map's manifest: what was read, how it was embedded and how it was laid out, for every kind."""
    manifest = {
        "name": name,
        # Which map this is, across renames: a refinement finishing later saves to the map that has it.
        "map_id": uuid.uuid4().hex,
        "kind": corpus.kind,
        "rows": int(len(corpus)),
        "embedded_rows": corpus.n_embedded,
        # What SavedMap.texts() rebuilds: the embedded text, or for images what keyword search reads.
        "text_columns": corpus.text_columns,
        "template": corpus.template,
        "model_id": embedder.model_id,
        # The spec that loads this embedder again, for searching.
        "model": embedder.spec,
        "model_hash": embedder.model_hash,
        "dimension": int(dimension),
        "projection": {**projection.to_dict(), "method_used": method_used},
        "source": {"name": corpus.source_name, "format": corpus.format, "sha256": corpus.content_hash,
                   **({"encoding": corpus.encoding} if corpus.kind == TEXT else {})},
        "notes": notes,
        "seconds": seconds,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": __version__,
    }
    if corpus.kind == IMAGES:
        manifest["text_search"] = text_search_of(embedder)
        manifest["text_search_reason"] = text_search_reason(embedder)
        manifest["images"] = {
            "path_column": corpus.path_column,
            "label_column": "label" if "label" in corpus.frame.columns else None,
            "thumbnail_format": THUMBNAIL_FORMAT.lower(),
            "skipped_count": len(corpus.skipped),
            "skipped": [list(item) for item in corpus.skipped[:MAX_SKIPPED_LISTED]],
        }
    return manifest


def assemble_points(
    frame: pd.DataFrame, embedded: np.ndarray, vectors: np.ndarray, coords: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray]:
    """All original rows plus row_id, x, y, embedded; vectors and coords spread back to every row."""
    n = len(frame)
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    if embedded.all() and vectors.dtype == np.float32 and vectors.shape == (n, dim):
        full_vectors = vectors  # every row has a vector: no second copy (15 GB at 10M rows of 384 floats)
    else:
        full_vectors = np.zeros((n, dim), dtype=np.float32)
        full_vectors[embedded] = vectors
    full_coords = np.full((n, 2), np.nan, dtype=np.float32)
    full_coords[embedded] = coords
    points = frame.reset_index(drop=True).copy()
    points.insert(0, "row_id", np.arange(n, dtype=np.int64))
    points["x"] = full_coords[:, 0]
    points["y"] = full_coords[:, 1]
    points["embedded"] = embedded
    return points, full_vectors


def map_is_current(
    workspace: Workspace, name: str, *, source: str | Path, model: str | None = None, clusters: bool = True
) -> bool:
    """Whether the saved map ``name`` was built from today's ``source`` (a file, or a folder of images)
    with ``model``'s default embedder (and has clusters, when asked): if so it can be reopened
    instead of built again."""
    if not workspace.exists(name):
        return False
    meta = Manifest.from_dict(workspace.read_manifest(name))
    source = Path(source)
    # A folder's identity is its images' names and bytes, as read_corpus records it.
    digest = read_corpus(source).content_hash if source.is_dir() else file_sha256(source)
    return (meta.source.sha256 == digest
            and meta.model_id == load_embedder(model, kind=meta.kind).model_id
            and (bool(meta.clusters) or not clusters))
