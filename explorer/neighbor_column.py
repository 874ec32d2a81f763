"""The ``neighbors`` column of points.parquet, as Embedding Atlas reads it: per row ``{"ids", "distances"}``.

Made by explorer.map_files and written by the store beside the user's columns, so `embedding-atlas
points.parquet --neighbors neighbors` shows the same nearest rows the app does;
left out of `SavedMap.points`, which the app reads for
everything else. Given neighbours (``build_map(neighbors=)``) are kept as they came."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from .neighbours import KnnGraph

NEIGHBORS_COLUMN = "neighbors"
# Neighbours per row; UMAP's default graph has 15 too.
NEIGHBORS_K = 15
# Up to this size: taken from the build's graph (the one UMAP was given, docs/benchmarks.md "One kNN
# graph"), else computed at save (exact: 4.5-6.8 s at 20k rows on 2 cores, "The neighbours column at
# save"); bigger maps have none.
NEIGHBORS_MAX_ROWS = 20_000
NEIGHBOR_TYPE = pa.struct([("ids", pa.list_(pa.int64())), ("distances", pa.list_(pa.float32()))])


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


def given_neighbors(values: pd.Series) -> pa.Array:
    """The neighbours a table brought (dicts or None per row) as the column's type."""
    return pa.array(values.tolist(), type=NEIGHBOR_TYPE)


def kept_neighbors(folder: Path, row_ids: np.ndarray) -> pa.Array | None:
    """The neighbours column of the map saved in ``folder`` when it has the same rows (the caller knows
    whether its vectors are the same: explorer.map_files)."""
    path = folder / "points.parquet"
    if not path.is_file() or NEIGHBORS_COLUMN not in pq.read_schema(path).names:
        return None
    old = pq.read_table(path, columns=["row_id", NEIGHBORS_COLUMN])
    if not np.array_equal(old.column("row_id").to_numpy(), np.asarray(row_ids)):
        return None
    return old.column(NEIGHBORS_COLUMN).combine_chunks()


def write_points(points: pd.DataFrame, path: Path, neighbors: pa.Array | None) -> None:
    """points.parquet: the map's columns, and the neighbours when there are any."""
    if neighbors is None:
        points.to_parquet(path, index=False)
        return
    table = pa.Table.from_pandas(points, preserve_index=False)
    pq.write_table(table.append_column(NEIGHBORS_COLUMN, neighbors), path)


def read_points(path: Path) -> pd.DataFrame:
    """points.parquet without the neighbours (`read_neighbor_lists` reads those)."""
    names = pq.read_schema(path).names
    columns = [c for c in names if c != NEIGHBORS_COLUMN] if NEIGHBORS_COLUMN in names else None
    return pd.read_parquet(path, columns=columns)


def read_neighbor_lists(path: Path) -> list | None:
    """The neighbours column of points.parquet (a dict or None per row), or None when it has none."""
    if NEIGHBORS_COLUMN not in pq.read_schema(path).names:
        return None
    return pq.read_table(path, columns=[NEIGHBORS_COLUMN]).column(NEIGHBORS_COLUMN).to_pylist()
