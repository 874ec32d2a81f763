"""What a save stores besides the points and vectors: the neighbours column, the search index, labels.parquet.

Computed here, from the map about to be saved and the version it was derived from, so the store only
writes (`Workspace.save` takes them as a `MapFiles`): the neighbours column comes from the build's own
graph when it is the neighbours' graph, is kept from the previous version when the rows and vectors are
unchanged, and is computed only when needed; the search index is built only when the vectors changed;
the labels table is laid out from the manifest's clusters. Operations save through `save_map`.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import MapChangedError
from .index_file import VectorIndex, read_index
from .label_file import label_table
from .neighbor_column import computed_neighbors, neighbors_from_graph
from .neighbours import KnnGraph
from .points_file import NEIGHBORS_COLUMN, given_neighbors, kept_neighbors
from .store import MapFiles, SavedMap, StaleFiles, Workspace
from .vector_index import build_index, needs_index

log = logging.getLogger(__name__)

# A save that meets newer saves changing what its files derive from is derived again this often.
SAVE_TRIES = 5


def map_files(points: pd.DataFrame, embeddings: np.ndarray, manifest: dict, *, previous: SavedMap | None = None,
              graph: KnnGraph | None = None) -> MapFiles:
    """The files to store with this map: ``previous`` is the saved version it derives from (its files
    are kept where they still hold), ``graph`` the build's kNN graph of the drawn rows."""
    return MapFiles(neighbors=_neighbors(points, embeddings, manifest, previous, graph),
                    index=_index(embeddings, previous), labels=label_table(manifest))


def save_map(workspace: Workspace, name: str, *, points: pd.DataFrame, embeddings: np.ndarray, manifest: dict,
             base: SavedMap | None = None, graph: KnnGraph | None = None, **options) -> SavedMap:
    """Derive the map's files and save it once (`Workspace.save`; ``options`` are its thumbnail options).

    When another save landed on ``base`` meanwhile and the merge changed what the files derive from
    (rows, vectors, clusters), the store hands the merged map back (StaleFiles): its files are derived
    here again and it is saved on that newer version, so the store never computes."""
    files = map_files(points, embeddings, manifest, previous=base, graph=graph)
    for _ in range(SAVE_TRIES):
        try:
            return workspace.save(name, points=points, embeddings=embeddings, manifest=manifest, base=base,
                                  files=files, **options)
        except StaleFiles as stale:
            points, embeddings, manifest = stale.merged
            base, name = stale.theirs, stale.theirs.name
            files = map_files(points, embeddings, manifest, previous=base)
    raise MapChangedError(f"'{name}' kept changing while it was saved ({SAVE_TRIES} tries): open it again.")


def _neighbors(points: pd.DataFrame, embeddings: np.ndarray, manifest: dict, previous: SavedMap | None,
               graph: KnnGraph | None) -> pa.Array | None:
    """The neighbours column: given with the rows; the graph's; kept from ``previous`` when its rows
    (and, unless given, vectors) are the same; else computed for maps small enough."""
    if NEIGHBORS_COLUMN in points.columns:
        return given_neighbors(points[NEIGHBORS_COLUMN])
    row_ids = points["row_id"].to_numpy()
    embedded = points["embedded"].to_numpy(dtype=bool) if "embedded" in points.columns else np.ones(len(points), bool)
    given = bool((manifest.get("given") or {}).get("neighbors"))
    if graph is not None and not given:
        column = neighbors_from_graph(graph, embedded, row_ids)
        if column is not None:
            return column
    if previous is not None and (given or _same_vectors(previous, embeddings)):
        try:
            kept = kept_neighbors(previous.path, row_ids)
        except (OSError, ValueError) as exc:  # another save swapped the folder, or a rename moved it, mid-read
            if given:
                raise MapChangedError(f"'{previous.name}' changed while it was being saved: open it again.") from exc
            kept = None
        if kept is not None or given:
            return kept
    if given:
        return None
    return computed_neighbors(embeddings, embedded, row_ids)


def _index(embeddings: np.ndarray, previous: SavedMap | None) -> VectorIndex | None:
    """The search index of a big map: the previous version's when the vectors are the same, else built."""
    if not needs_index(len(embeddings)):
        return None
    if previous is not None and _same_vectors(previous, embeddings):
        with_previous = read_index(previous.path, embeddings)
        if with_previous is not None:
            return with_previous
    try:
        return build_index(embeddings)
    except RuntimeError as exc:  # faiss' errors: the map is searched exactly, still saved
        log.warning("saving without a search index: %s", exc)
        return None


def _same_vectors(previous: SavedMap, embeddings: np.ndarray) -> bool:
    """Whether ``embeddings`` are the previous version's vectors."""
    return previous.embeddings is embeddings or (previous.embeddings.shape == embeddings.shape
                                                 and bool(np.array_equal(previous.embeddings, embeddings)))
