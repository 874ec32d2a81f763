"""The ``neighbors`` column of points.parquet computed: each drawn row's NEIGHBORS_K nearest drawn rows.

Called by explorer.map_files; the column's type and file are explorer.points_file's, which the store
writes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from .points_file import NEIGHBOR_TYPE

if TYPE_CHECKING:
    from .neighbours import KnnGraph

# Neighbours per row; UMAP's default graph has 15 too.
NEIGHBORS_K = 15
# Up to this size: taken from the build's graph (the one UMAP was given, docs/benchmarks.md "One kNN
# graph"), else computed at save (exact: 4.5-6.8 s at 20k rows on 2 cores, "The neighbours column at
# save"); bigger maps have none.
NEIGHBORS_MAX_ROWS = 20_000


def computed_neighbors(embeddings: np.ndarray, embedded: np.ndarray, row_ids: np.ndarray) -> pa.Array | None:
    """Each drawn row's nearest other drawn rows by cosine distance, ids being row_ids (None for maps
    over NEIGHBORS_MAX_ROWS rows or with fewer than two drawn)."""
    from .neighbours import knn_graph

    embedded = np.asarray(embedded, dtype=bool)
    if len(embedded) > NEIGHBORS_MAX_ROWS or embedded.sum() < 2:
        return None
    return neighbors_from_graph(knn_graph(np.asarray(embeddings)[embedded], k=NEIGHBORS_K), embedded, row_ids)


def neighbors_from_graph(graph: KnnGraph, embedded: np.ndarray, row_ids: np.ndarray) -> pa.Array | None:
    """The column from a graph of the drawn rows (the build's, UMAP's own): None unless it is exact, has
    NEIGHBORS_K neighbours or more and the map is small enough, so it is the column `computed_neighbors`
    gives."""
    embedded = np.asarray(embedded, dtype=bool)
    rows = np.flatnonzero(embedded)
    if (len(embedded) > NEIGHBORS_MAX_ROWS or len(rows) < 2 or not graph.exact or len(graph.indices) != len(rows)
            or graph.k < min(NEIGHBORS_K, len(rows) - 1)):
        return None
    k = min(NEIGHBORS_K, len(rows) - 1)
    ids = np.asarray(row_ids)[rows][graph.indices[:, :k]]
    distances = graph.distances[:, :k]
    values: list[dict | None] = [None] * len(embedded)
    for position, row in enumerate(rows):
        values[row] = {"ids": ids[position].tolist(), "distances": distances[position].tolist()}
    return pa.array(values, type=NEIGHBOR_TYPE)
