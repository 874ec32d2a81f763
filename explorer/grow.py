"""Maps that grow: new rows embedded with the map's own embedder and placed on its layout, which never moves.

Every existing point keeps its coordinates byte for byte; the new rows are placed by their nearest
rows in embedding space (explorer.placement), take the cluster most of those neighbours are in, and
carry the number of the batch they came in (``batch`` column; 0 for the rows the map was built
from), so the map can show what is new. A re-layout of everything stays one step away: curation's
"re-project", or a rebuild.

Rows unlike anything on the map (their best similarity to any mapped row is below what nearly every
mapped row has to its own nearest neighbour) would be placed beside neighbours that are not really
near: they are drawn apart instead, as their own region just right of the map, left unclustered,
and counted in a note that suggests a re-layout.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from .cluster import UNCLUSTERED
from .corpus import IMAGES, read_corpus
from .embed import EmbeddingCache, embed_cached
from .embedders import embedder_for
from .errors import InputError
from .map_clusters import LEVEL_COLUMNS, UNCLUSTERED_LABEL, point_labels
from .map_files import save_map
from .placement import place_rows
from .progress import ProgressFn, no_progress
from .project import project_pca
from .store import SavedMap, Workspace
from .trust import BUILD_MAX_ROWS as TRUST_BUILD_MAX_ROWS
from .trust import TRUST_COLUMN, with_trust

log = logging.getLogger(__name__)

BATCH_COLUMN = "batch"
# Rows whose best similarity to the map is below this quantile of the mapped rows' own
# nearest-neighbour similarity are "unlike anything on the map".
NOVEL_QUANTILE = 0.01
NOVELTY_SAMPLE = 1_000


@dataclass
class AddResult:
    """The grown map, how many rows came in (and how many were unlike anything on it), in which batch."""

    saved: SavedMap
    added: int
    batch: int
    novel: int
    seconds: float
    notes: list[str] = field(default_factory=list)


def add_rows(
    name: str,
    source,
    *,
    source_name: str | None = None,
    workspace: Workspace | None = None,
    images=None,
    use_cache: bool = True,
    progress: ProgressFn = no_progress,
) -> AddResult:
    """Add the rows of ``source`` (anything read_corpus takes, with the map's text columns) to the map
    ``name``, saved again atomically: a failed or killed add leaves the map as it was."""
    started = time.perf_counter()
    workspace = workspace or Workspace()
    saved = workspace.open(name)
    manifest = saved.manifest
    progress("load", 0.0, "Reading the new rows")
    corpus = _read_like(saved, source, source_name=source_name, images=images, progress=progress)
    if len(corpus) == 0:
        raise InputError("The file has no rows to add.")
    notes = list(corpus.notes)

    embedder = embedder_for(saved)
    progress("embed", 0.0, f"Embedding {corpus.n_embedded:,} new rows with {embedder.model_id}")
    cache = EmbeddingCache(workspace.cache_path) if use_cache and embedder.cacheable else None
    vectors = embed_cached(embedder, corpus, cache=cache, progress=progress).vectors
    if vectors.shape[1:] != saved.embeddings.shape[1:]:
        raise InputError(f"The map's vectors have {saved.embeddings.shape[1]} dimensions but its embedder gave "
                         f"{vectors.shape[1]}: it is not the model the map was built with.")

    progress("project", 0.0, "Placing the new rows on the map")
    mapped = saved.embedded
    reference = np.asarray(saved.embeddings)[mapped]
    reference_coords = saved.coords[mapped]
    placement = place_rows(vectors, reference_vectors=reference, reference_coords=reference_coords)
    novel = placement.best_similarity < novelty_threshold(reference)
    coords = placement.coords
    if novel.any():
        coords[novel] = _region_apart(vectors[novel], reference_coords)
        notes.append(f"{int(novel.sum()):,} of the new rows are unlike anything on the map: they are drawn apart, "
                     "right of it, as a region of their own and unclustered. Re-project the map to lay them in.")

    batch = int(saved.points[BATCH_COLUMN].max()) + 1 if BATCH_COLUMN in saved.points else 1
    points, new_points = _grown_points(saved, corpus, coords, batch=batch)
    clusters = manifest.get("clusters")
    if clusters:
        clusters = _assign_clusters(saved, points, new_points, placement.neighbours, novel, clusters)
    progress("save", 0.0, "Saving the grown map")
    embeddings = np.vstack([np.asarray(saved.embeddings, dtype=np.float32), _spread(vectors, corpus.embedded)])
    batches = list(manifest.get("batches") or [{"batch": 0, "rows": len(saved.points),
                                                 "added": manifest.get("created"), "source": manifest.get("source")}])
    batches.append({"batch": batch, "rows": len(new_points), "added": datetime.now(UTC).isoformat(timespec="seconds"),
                    "source": {"name": corpus.source_name, "format": corpus.format, "sha256": corpus.content_hash},
                    "novel": int(novel.sum()),
                    # Which new rows landed apart, so the map can show them ("what is new").
                    "apart_rows": new_points["row_id"].to_numpy()[
                        np.flatnonzero(new_points["embedded"].to_numpy())[novel]].tolist()})
    # A new map_id: a refinement still running on the old version then leaves this one alone (it
    # would save the rows it read), and the map's pending refinement resumes on all of its rows.
    grown = {**manifest, "map_id": uuid.uuid4().hex, "rows": len(points),
             "embedded_rows": int(points["embedded"].sum()), "batches": batches,
             **({"clusters": clusters} if clusters else {})}
    thumbnails = None
    if saved.kind == IMAGES:
        thumbnails = {**saved.thumbnails(), **dict(zip(new_points["row_id"].tolist(), corpus.images.thumbnails,
                                                       strict=True))}
    if TRUST_COLUMN in points or "trust" in grown:
        # The old rows' trust changes with their new neighbours: measured again now, or dropped (the
        # app then offers to measure it) where that would take minutes.
        points = points.drop(columns=[TRUST_COLUMN], errors="ignore")
        grown.pop("trust", None)
        if "trust" in manifest and int(points["embedded"].sum()) <= TRUST_BUILD_MAX_ROWS:
            points, grown = with_trust(points, embeddings, grown, progress=progress)
    result = save_map(workspace, saved.name, points=points, embeddings=embeddings, manifest=grown,
                      thumbnails=thumbnails, base=saved)
    progress("save", 1.0, f"Added {len(new_points):,} rows as batch {batch}")
    log.info("added %d rows to %s as batch %d (%d unlike the map)", len(new_points), name, batch, int(novel.sum()))
    return AddResult(saved=result, added=len(new_points), batch=batch, novel=int(novel.sum()),
                     seconds=time.perf_counter() - started, notes=notes)


@dataclass
class BatchSummary:
    """What a batch of added rows brought: its rows, the clusters that gained most, the rows unlike the map."""

    batch: int
    rows: int
    added: str | None
    source: str | None
    gained: list[tuple[str, int]]
    apart: list[int]


def newest_batch(saved: SavedMap, level: str | None = None) -> BatchSummary | None:
    """The newest batch of a grown map (None for a map never grown): which clusters of ``level`` (the
    coarsest by default) gained most of its rows, and which of its rows landed apart."""
    if BATCH_COLUMN not in saved.points.columns or not len(saved.points):
        return None
    newest = int(saved.points[BATCH_COLUMN].max())
    if newest == 0:
        return None
    entry = next((b for b in saved.meta.batches or [] if b.batch == newest), None)
    new = (saved.points[BATCH_COLUMN] == newest).to_numpy()
    gained: list[tuple[str, int]] = []
    levels = list(saved.meta.cluster_levels)
    if levels:
        labels = point_labels(saved, level or levels[0])[new]
        counts = labels[labels != UNCLUSTERED_LABEL].value_counts()
        gained = [(str(name), int(n)) for name, n in counts.head(5).items()]
    return BatchSummary(batch=newest, rows=int(new.sum()), added=entry.added if entry else None,
                        source=entry.source.name if entry and entry.source else None, gained=gained,
                        apart=[int(r) for r in (entry.apart_rows if entry else None) or []])


def novelty_threshold(reference: np.ndarray, *, seed: int = 0) -> float:
    """The similarity below which a new row is unlike anything on the map: the NOVEL_QUANTILE of a
    sample of mapped rows' similarity to their own nearest other row."""
    if len(reference) < 3:
        return -np.inf
    rows = np.random.default_rng(seed).choice(len(reference), size=min(NOVELTY_SAMPLE, len(reference)), replace=False)
    scores = np.asarray(reference[rows], dtype=np.float32) @ np.asarray(reference, dtype=np.float32).T
    scores[np.arange(len(rows)), rows] = -np.inf
    return float(np.quantile(scores.max(axis=1), NOVEL_QUANTILE))


def _read_like(saved: SavedMap, source, *, source_name, images, progress):
    """The new rows read as the map's own were: same kind, text columns or template."""
    if saved.kind == IMAGES:
        return read_corpus(source, kind=IMAGES, source_name=source_name, images=images,
                           path_column=saved.meta.images.path_column, progress=progress)
    columns, template = saved.meta.text_columns or None, saved.meta.template
    return read_corpus(source, kind="text", source_name=source_name,
                       text_columns=None if template else columns, template=template, progress=progress)


def _grown_points(saved: SavedMap, corpus, coords: np.ndarray, *, batch: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The old points untouched, then the new ones (row ids after the last, placed, in ``batch``)."""
    old = saved.points
    if BATCH_COLUMN not in old:
        old = old.assign(**{BATCH_COLUMN: np.zeros(len(old), dtype=np.int32)})
    frame = corpus.frame.reset_index(drop=True)
    start = int(old["row_id"].max()) + 1 if len(old) else 0
    full = np.full((len(frame), 2), np.nan, dtype=np.float32)
    full[corpus.embedded] = coords
    new = frame.assign(row_id=np.arange(start, start + len(frame), dtype=np.int64), x=full[:, 0], y=full[:, 1],
                       embedded=corpus.embedded, **{BATCH_COLUMN: np.full(len(frame), batch, dtype=np.int32)})
    for column in LEVEL_COLUMNS.values():
        if column in old:
            new[column] = np.full(len(new), UNCLUSTERED, dtype=np.int32)
    for column in [c for c in old.columns if c not in new.columns]:
        # A column the new rows lack stays what it was for the old ones: integers and booleans
        # become their nullable kind, not floats, so 2021 is not written back as 2021.0.
        kind = old[column].dtype.kind
        if kind in "iub":
            old = old.assign(**{column: old[column].astype("boolean" if kind == "b" else "Int64")})
        new[column] = pd.Series(index=new.index, dtype=old[column].dtype)  # NaN or <NA>, as the dtype has it
    new = new[list(old.columns) + [c for c in new.columns if c not in old.columns]]
    return pd.concat([old, new], ignore_index=True), new


def _assign_clusters(saved, points, new_points, neighbours, novel, clusters: dict) -> dict:
    """Each new row takes the cluster most of its neighbours are in, at every level; sizes follow."""
    levels = {**clusters["levels"]}
    mapped_rows = np.flatnonzero(saved.embedded)
    new_rows = np.flatnonzero(new_points["embedded"].to_numpy()) + len(saved.points)
    for level, section in levels.items():
        column = section["column"]
        ids = saved.points[column].to_numpy()[mapped_rows][neighbours]  # (new, K)
        chosen = np.array([_majority(row) for row in ids], dtype=np.int32)
        chosen[novel] = UNCLUSTERED
        values = points[column].to_numpy().copy()
        values[new_rows] = chosen
        points[column] = values
        counts = pd.Series(values).value_counts()
        section = {**section, "clusters": [{**c, "size": int(counts.get(c["id"], 0))} for c in section["clusters"]],
                   "unclustered": int(counts.get(UNCLUSTERED, 0))}
        levels[level] = section
    return {**clusters, "levels": levels}


def _majority(ids: np.ndarray) -> int:
    """The most common id among a row's neighbours, the nearest one's on a tie."""
    values, first, counts = np.unique(ids, return_index=True, return_counts=True)
    best = counts == counts.max()
    return int(values[best][np.argmin(first[best])])


def _region_apart(vectors: np.ndarray, reference_coords: np.ndarray) -> np.ndarray:
    """A layout of rows unlike the map, of their own, in a patch just right of the map."""
    low, high = np.nanmin(reference_coords, axis=0), np.nanmax(reference_coords, axis=0)
    span = np.maximum(high - low, 1e-6)
    if len(vectors) > 2:
        local = project_pca(vectors).astype(np.float64)
        local = (local - local.min(axis=0)) / np.maximum(np.ptp(local, axis=0), 1e-9)
    else:
        local = np.full((len(vectors), 2), 0.5)
    size = 0.15 * span.max()
    return (np.array([high[0] + 0.05 * span[0], (low[1] + high[1]) / 2 - size / 2]) + local * size).astype(np.float32)


def _spread(vectors: np.ndarray, embedded: np.ndarray) -> np.ndarray:
    """One vector per row, zeros for rows without text (as a build stores them)."""
    full = np.zeros((len(embedded), vectors.shape[1]), dtype=np.float32)
    full[embedded] = vectors
    return full

