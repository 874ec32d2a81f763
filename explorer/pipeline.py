"""build_map: load → embed → project → save, end to end, with progress per stage."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from . import __version__
from .cache import EmbeddingCache, embed_texts
from .cluster import ClusterConfig
from .embed import DEFAULT_BATCH_SIZE, Embedder, load_embedder
from .errors import InputError
from .fast_embed import CorpusEmbedder, save_corpus_embedder
from .load import LoadedTable, load_table, tidy_columns
from .map_clusters import add_clusters
from .modes import ModeChoice, choose_mode_for_texts
from .progress import ProgressFn, no_progress
from .project import ProjectionConfig, project
from .store import SavedMap, Workspace, sanitise_map_name
from .texts import TextSelection, compose_texts

log = logging.getLogger(__name__)

STAGES = ("load", "embed", "project", "save")


@dataclass
class BuildResult:
    """The saved map, the seconds each stage took, and everything the user should be told."""

    saved: SavedMap
    seconds: dict[str, float]
    notes: list[str] = field(default_factory=list)
    n_cached: int = 0
    mode: ModeChoice | None = None

    @property
    def total_seconds(self) -> float:
        """Wall time of the whole build."""
        return sum(self.seconds.values())


def build_map(
    source: str | Path | bytes | BinaryIO | LoadedTable | pd.DataFrame,
    *,
    source_name: str | None = None,
    name: str | None = None,
    text_columns: list[str] | None = None,
    template: str | None = None,
    model: str | Embedder | None = None,
    mode: str = "auto",
    projection: ProjectionConfig | None = None,
    clusters: ClusterConfig | None = None,
    workspace: Workspace | None = None,
    use_cache: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressFn = no_progress,
) -> BuildResult:
    """Build and save a map from a file, bytes, a loaded table or a DataFrame.

    Without a ``model``, ``mode`` picks the embedder: "quality" (the bundled transformer), "fast"
    (TF-IDF + SVD fitted on the data) or "auto" (by the data's size, see explorer.modes)."""
    workspace = workspace or Workspace()
    projection = projection or ProjectionConfig()
    if name is not None:
        sanitise_map_name(name)  # an unusable name fails now, not after minutes of embedding
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    progress("load", 0.0, "Reading the data")
    table = _as_table(source, source_name)
    selection = compose_texts(table.frame, columns=text_columns, template=template)
    notes = [*table.notes, *selection.notes]
    seconds["load"] = time.perf_counter() - started
    progress("load", 1.0, f"{len(table.frame):,} rows, text from {', '.join(selection.columns)}")

    started = time.perf_counter()
    texts = [t for t, keep in zip(selection.texts, selection.embedded, strict=True) if keep]
    choice = _choose_mode(texts, model=model, mode=mode)
    if choice is not None:
        notes.append(choice.reason)
        progress("embed", 0.0, choice.reason)
    embedder = load_embedder(choice.model if choice is not None else model)
    progress("embed", 0.0, f"Loading the model {embedder.model_id}")
    # A corpus-fitted embedder's vectors belong to this corpus alone: caching them would only grow the file.
    fitted_here = isinstance(embedder, CorpusEmbedder)
    cache = EmbeddingCache(workspace.cache_path) if use_cache and not fitted_here else None
    embedded = embed_texts(embedder, texts, cache=cache, batch_size=batch_size, progress=progress)
    if fitted_here and embedder.fitted:
        save_corpus_embedder(embedder, workspace_root=workspace.root)
    seconds["embed"] = time.perf_counter() - started

    started = time.perf_counter()
    progress("project", 0.0, f"Projecting {len(texts):,} points with {projection.method.upper()}")
    layout_input = embedder.layout_vectors(embedded.vectors) if fitted_here else embedded.vectors
    layout = project(layout_input, config=projection,
                     cache_dir=workspace.projection_cache_dir if use_cache else None)
    seconds["project"] = time.perf_counter() - started
    progress("project", 1.0, f"Layout by {layout.method.upper()}")

    started = time.perf_counter()
    progress("save", 0.0, "Saving the map")
    points, vectors = assemble_points(table.frame, selection.embedded, embedded.vectors, layout.coords)
    map_name = name or Path(table.source_name).stem or "map"
    manifest = text_map_manifest(
        table, selection, name=map_name, rows=len(points), model=model, embedder=embedder,
        dimension=vectors.shape[1], projection=projection, method_used=layout.method, notes=notes, seconds=seconds,
    )
    manifest["mode"] = choice.to_dict() if choice is not None else None
    manifest["projection"]["input_dimension"] = int(layout_input.shape[1]) if layout_input.ndim == 2 else 0
    saved = workspace.save(map_name, points=points, embeddings=vectors, manifest=manifest)
    if saved.name != map_name:
        notes.append(f"The map name '{map_name}' was saved as '{saved.name}': a name keeps only letters, digits, "
                     "spaces and - _ . ( ), and cannot start with a dot.")
    saved = finish_build(saved, started=started, seconds=seconds, clusters=clusters, workspace=workspace,
                         progress=progress)
    return BuildResult(saved=saved, seconds=seconds, notes=notes, n_cached=embedded.n_cached, mode=choice)


def finish_build(
    saved: SavedMap, *, started: float, seconds: dict[str, float], clusters: ClusterConfig | None,
    workspace: Workspace, progress: ProgressFn,
) -> SavedMap:
    """Record the save's time, then cluster the saved map when asked (both engines end this way)."""
    seconds["save"] = time.perf_counter() - started
    progress("save", 1.0, f"Saved as '{saved.name}'")
    if clusters is not None:
        started = time.perf_counter()
        saved = add_clusters(saved, config=clusters, workspace=workspace, progress=progress)
        seconds["cluster"] = time.perf_counter() - started
    return saved


def _choose_mode(texts: list[str], *, model, mode: str) -> ModeChoice | None:
    """The mode of a build without an explicit model (None when the caller named one)."""
    if model is None or model == "":
        return choose_mode_for_texts(texts, requested=mode)
    if mode != "auto":
        raise InputError(f"Choose either a model ({model}) or a mode ({mode}), not both.")
    return None


def text_map_manifest(
    table: LoadedTable,
    selection: TextSelection,
    *,
    name: str,
    rows: int,
    model: str | Embedder | None,
    embedder: Embedder,
    dimension: int,
    projection: ProjectionConfig,
    method_used: str,
    notes: list[str],
    seconds: dict[str, float],
) -> dict:
    """The manifest of a text map: what was read, how it was embedded and how it was laid out."""
    return {
        "name": name,
        "rows": int(rows),
        "embedded_rows": int(selection.n_embedded),
        "text_columns": selection.columns,
        "template": selection.template,
        "model_id": embedder.model_id,
        "model": model if isinstance(model, str) else getattr(embedder, "model_name", embedder.model_id),
        "model_hash": getattr(embedder, "model_hash", ""),
        "dimension": int(dimension),
        "projection": {**projection.to_dict(), "method_used": method_used},
        "source": {"name": table.source_name, "format": table.format, "sha256": table.content_hash,
                   "encoding": table.encoding},
        "notes": notes,
        "seconds": seconds,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": __version__,
    }


def _as_table(source, source_name: str | None) -> LoadedTable:
    if isinstance(source, LoadedTable):
        return source
    if isinstance(source, pd.DataFrame):
        # The same column rules as a file: a user's x, y or row_id must not clash with the map's.
        notes: list[str] = []
        frame = tidy_columns(source.reset_index(drop=True), notes=notes)
        return LoadedTable(frame=frame, source_name=source_name or "dataframe", format="dataframe",
                           content_hash="", notes=notes)
    return load_table(source, name=source_name)


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
